#include "base/time_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <fmt/core.h>
#include <limits>

namespace outrider {
namespace {

struct unit {
  std::string_view suffix;
  std::int64_t nanos;
};

// Longer suffixes first so "ms" is not read as "m".
constexpr unit units[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // µs
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60LL * 1'000'000'000},
    {"h", 3600LL * 1'000'000'000},
    {"d", 86400LL * 1'000'000'000},
    {"w", 7 * 86400LL * 1'000'000'000},
};

error bad_duration(std::string_view text, std::string_view why) {
  return error(
      errc::invalid_argument,
      fmt::format("invalid duration '{}': {} (examples: 90s, 1h30m, 7d, 250ms)", text, why));
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int parse_digits(std::string_view s, std::size_t pos, std::size_t count, bool& ok) {
  if (pos + count > s.size()) {
    ok = false;
    return 0;
  }
  int v = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (!is_digit(c)) {
      ok = false;
      return 0;
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

result<nanoseconds> parse_duration(std::string_view text) {
  if (text.empty()) return bad_duration(text, "empty");
  if (text == "0") return nanoseconds::zero();
  if (text.front() == '-') return bad_duration(text, "negative");
  if (text.front() == '+') text.remove_prefix(1);
  long double total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t start = pos;
    while (pos < text.size() && (is_digit(text[pos]) || text[pos] == '.')) ++pos;
    if (pos == start) return bad_duration(text, "expected a number");
    std::string_view number = text.substr(start, pos - start);
    if (number.find('.') != number.rfind('.') || number == ".") {
      return bad_duration(text, "malformed number");
    }
    long double value = 0;
    {
      // from_chars for long double is not in libstdc++ 12 for all types; parse by hand.
      long double frac_scale = 0;
      for (char c : number) {
        if (c == '.') {
          frac_scale = 1;
          continue;
        }
        if (frac_scale == 0) {
          value = value * 10 + (c - '0');
        } else {
          frac_scale /= 10;
          value += (c - '0') * frac_scale;
        }
      }
    }
    const unit* matched = nullptr;
    for (const auto& u : units) {
      if (text.substr(pos, u.suffix.size()) == u.suffix) {
        matched = &u;
        break;
      }
    }
    if (matched == nullptr) return bad_duration(text, "missing or unknown unit");
    pos += matched->suffix.size();
    total += value * static_cast<long double>(matched->nanos);
    if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) {
      return bad_duration(text, "too large");
    }
  }
  return nanoseconds(static_cast<std::int64_t>(std::llround(total)));
}

std::string format_duration(nanoseconds d) {
  if (d == nanoseconds::zero()) return "0s";
  std::string out;
  auto n = d.count();
  if (n < 0) {
    out.push_back('-');
    n = -n;  // durations we format are never INT64_MIN
  }
  // Whole days and above use d/h/m/s; sub-second remainders use ms/us/ns.
  const std::int64_t day = 86400LL * 1'000'000'000;
  const std::int64_t hour = 3600LL * 1'000'000'000;
  const std::int64_t minute = 60LL * 1'000'000'000;
  const std::int64_t second = 1'000'000'000;
  auto take = [&](std::int64_t size, std::string_view suffix) {
    if (n >= size) {
      out += fmt::format("{}{}", n / size, suffix);
      n %= size;
    }
  };
  take(day, "d");
  take(hour, "h");
  take(minute, "m");
  take(second, "s");
  take(1'000'000, "ms");
  take(1'000, "us");
  take(1, "ns");
  return out;
}

result<wall_time> parse_rfc3339(std::string_view s) {
  auto fail = [&](std::string_view why) {
    return error(
        errc::invalid_argument,
        fmt::format("invalid RFC 3339 time '{}': {} (example: 2026-01-02T15:04:05Z)", s, why));
  };
  bool ok = true;
  int year = parse_digits(s, 0, 4, ok);
  if (!ok || s.size() < 20 || s[4] != '-' || s[7] != '-') return fail("bad date");
  int month = parse_digits(s, 5, 2, ok);
  int day = parse_digits(s, 8, 2, ok);
  char sep = s[10];
  if (!ok || (sep != 'T' && sep != 't' && sep != ' ')) return fail("bad date or separator");
  int hour = parse_digits(s, 11, 2, ok);
  int minute = parse_digits(s, 14, 2, ok);
  int second = parse_digits(s, 17, 2, ok);
  if (!ok || s[13] != ':' || s[16] != ':') return fail("bad time of day");
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) {
    return fail("field out of range");
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return fail("no such date");
  std::size_t pos = 19;
  std::int64_t fraction_nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    std::int64_t scale = 100'000'000;
    while (pos < s.size() && is_digit(s[pos])) {
      if (scale > 0) {
        fraction_nanos += (s[pos] - '0') * scale;
        scale /= 10;
      }
      ++pos;
    }
    if (pos == start) return fail("empty fraction");
  }
  if (pos >= s.size()) return fail("missing time zone (Z or +hh:mm)");
  std::int64_t offset_seconds = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int sign = s[pos] == '-' ? -1 : 1;
    int oh = parse_digits(s, pos + 1, 2, ok);
    int om = parse_digits(s, pos + 4, 2, ok);
    if (!ok || pos + 3 >= s.size() || s[pos + 3] != ':' || oh > 23 || om > 59) {
      return fail("bad offset");
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return fail("bad time zone");
  }
  if (pos != s.size()) return fail("trailing characters");
  auto days = sys_days{ymd};
  auto t = time_point_cast<system_clock::duration>(days) + hours(hour) + minutes(minute) +
           seconds(second) - seconds(offset_seconds) +
           duration_cast<system_clock::duration>(nanoseconds(fraction_nanos));
  return t;
}

namespace {

// `count` decimal digits of `v` (zero-padded) at `out`.
void put_digits(char* out, std::uint64_t v, int count) {
  for (int i = count - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

// Written digit by digit into a buffer (every CloudEvent the sidecar builds
// carries one): fmt::format's runtime format strings cost ~5k instructions per
// call, this ~200. Years outside 0000-9999 keep fmt's formatting.
std::string format_rfc3339(wall_time t, int fraction_digits) {
  using namespace std::chrono;
  auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  auto secs = ns / 1'000'000'000;
  auto frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  auto days = sys_days{std::chrono::days{secs >= 0 ? secs / 86400 : (secs - 86399) / 86400}};
  auto sod = secs - days.time_since_epoch().count() * 86400;
  year_month_day ymd{days};
  const int year = static_cast<int>(ymd.year());
  std::string out;
  if (year < 0 || year > 9999) {
    out =
        fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", year, static_cast<unsigned>(ymd.month()),
                    static_cast<unsigned>(ymd.day()), sod / 3600, (sod / 60) % 60, sod % 60);
  } else {
    char head[19] = {0, 0, 0, 0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0, ':', 0, 0};
    put_digits(head, static_cast<std::uint64_t>(year), 4);
    put_digits(head + 5, static_cast<unsigned>(ymd.month()), 2);
    put_digits(head + 8, static_cast<unsigned>(ymd.day()), 2);
    put_digits(head + 11, static_cast<std::uint64_t>(sod / 3600), 2);
    put_digits(head + 14, static_cast<std::uint64_t>((sod / 60) % 60), 2);
    put_digits(head + 17, static_cast<std::uint64_t>(sod % 60), 2);
    out.reserve(sizeof head + 11);
    out.assign(head, sizeof head);
  }
  int digits = 0;
  std::uint64_t value = 0;
  if (fraction_digits == 3) {
    digits = 3;
    value = static_cast<std::uint64_t>(frac / 1'000'000);
  } else if (fraction_digits == 6) {
    digits = 6;
    value = static_cast<std::uint64_t>(frac / 1'000);
  } else if (fraction_digits == 9) {
    digits = 9;
    value = static_cast<std::uint64_t>(frac);
  }
  if (digits > 0) {
    char fraction[10] = {'.'};
    put_digits(fraction + 1, value, digits);
    out.append(fraction, static_cast<std::size_t>(digits) + 1);
  }
  out.push_back('Z');
  return out;
}

}  // namespace outrider
