#include "sidecar/job_schedule.h"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <fmt/core.h>
#include <vector>

#include "base/time_format.h"

namespace outrider::sidecar {
namespace {

using namespace std::chrono;

// Assigns the value of a result, or returns its error.
#define JOBS_TRY_ASSIGN(lhs, expr)                           \
  do {                                                       \
    auto jobs_try_r_ = (expr);                               \
    if (!jobs_try_r_) return std::move(jobs_try_r_).error(); \
    lhs = std::move(*jobs_try_r_);                           \
  } while (0)

error bad(std::string message) {
  return error(errc::invalid_argument, std::move(message));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

struct field_spec {
  std::string_view name;
  int min;
  int max;
  const std::array<std::string_view, 12>* names;  // value min + i, or null
  int names_count;
};

constexpr std::array<std::string_view, 12> month_names = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> day_names = {"sun", "mon", "tue", "wed", "thu", "fri",
                                                        "sat", "",    "",    "",    "",    ""};

result<int> field_value(std::string_view text, const field_spec& f) {
  if (f.names != nullptr) {
    const std::string l = lower(text);
    for (int i = 0; i < f.names_count; ++i) {
      if (l == (*f.names)[static_cast<std::size_t>(i)]) return f.min + i;
    }
  }
  int v = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    return bad(fmt::format("cron {} field: '{}' is not a value", f.name, text));
  }
  // Day of week 7 is Sunday, as in most crons.
  const int max = f.name == "day-of-week" ? 7 : f.max;
  if (v < f.min || v > max) {
    return bad(fmt::format("cron {} field: {} is outside {}-{}", f.name, v, f.min, f.max));
  }
  return v;
}

// Parses one field into a bit set; `restricted` is false for "*" and "?".
result<std::uint64_t> parse_field(std::string_view text, const field_spec& f, bool& restricted) {
  std::uint64_t bits = 0;
  restricted = true;
  for (auto part : split(text, ',')) {
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      const auto s = part.substr(slash + 1);
      const auto* end = s.data() + s.size();
      auto [p, ec] = std::from_chars(s.data(), end, step);
      if (s.empty() || ec != std::errc() || p != end || step <= 0) {
        return bad(fmt::format("cron {} field: bad step in '{}'", f.name, part));
      }
      part = part.substr(0, slash);
    }
    int lo = 0, hi = 0;
    if (part == "*" || part == "?") {
      lo = f.min;
      hi = f.max;
      if (step == 1 && text.find(',') == std::string_view::npos) restricted = false;
    } else if (auto dash = part.find('-'); dash != std::string_view::npos) {
      JOBS_TRY_ASSIGN(lo, field_value(part.substr(0, dash), f));
      JOBS_TRY_ASSIGN(hi, field_value(part.substr(dash + 1), f));
      if (hi < lo) return bad(fmt::format("cron {} field: empty range '{}'", f.name, part));
    } else {
      JOBS_TRY_ASSIGN(lo, field_value(part, f));
      // "a/n" runs from a to the maximum.
      hi = text.find('/') != std::string_view::npos ? f.max : lo;
    }
    for (int v = lo; v <= hi; v += step) {
      const int value = (f.name == "day-of-week" && v == 7) ? 0 : v;
      bits |= std::uint64_t{1} << value;
    }
  }
  return bits;
}

// Days since the epoch and seconds within the day of `t` (UTC).
struct civil {
  sys_days day;
  year_month_day ymd;
  int second_of_day;
};

civil to_civil(sys_seconds t) {
  const auto day = floor<days>(t);
  return civil{day, year_month_day(day), static_cast<int>((t - day).count())};
}

}  // namespace

result<job_schedule> job_schedule::parse(std::string_view raw) {
  std::string_view text = raw;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty()) return bad("the schedule is empty");
  job_schedule s;
  if (text.front() == '@') {
    const std::string l = lower(text);
    if (l.starts_with("@every ")) {
      auto d = parse_duration(std::string_view(text).substr(7));
      if (!d || d->count() <= 0) {
        return bad(fmt::format("'{}': @every needs a positive duration such as 1h30m", raw));
      }
      s.interval_ = *d;
      return s;
    }
    static constexpr std::pair<std::string_view, std::string_view> macros[] = {
        {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"}};
    for (const auto& [name, cron] : macros) {
      if (l == name) return parse(cron);
    }
    return bad(
        fmt::format("unknown schedule '{}' (use @every <duration>, @yearly, @monthly, "
                    "@weekly, @daily or @hourly)",
                    raw));
  }
  std::vector<std::string_view> fields;
  for (auto f : split(text, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 6) {
    return bad(
        fmt::format("cron schedule '{}' has {} fields; it needs 6 (seconds minutes hours "
                    "day-of-month month day-of-week)",
                    raw, fields.size()));
  }
  bool r = false;
  JOBS_TRY_ASSIGN(s.seconds_, parse_field(fields[0], {"seconds", 0, 59, nullptr, 0}, r));
  JOBS_TRY_ASSIGN(s.minutes_, parse_field(fields[1], {"minutes", 0, 59, nullptr, 0}, r));
  std::uint64_t bits = 0;
  JOBS_TRY_ASSIGN(bits, parse_field(fields[2], {"hours", 0, 23, nullptr, 0}, r));
  s.hours_ = static_cast<std::uint32_t>(bits);
  JOBS_TRY_ASSIGN(bits, parse_field(fields[3], {"day-of-month", 1, 31, nullptr, 0}, r));
  s.days_of_month_ = static_cast<std::uint32_t>(bits);
  s.dom_restricted_ = r;
  JOBS_TRY_ASSIGN(bits, parse_field(fields[4], {"month", 1, 12, &month_names, 12}, r));
  s.months_ = static_cast<std::uint16_t>(bits);
  JOBS_TRY_ASSIGN(bits, parse_field(fields[5], {"day-of-week", 0, 6, &day_names, 7}, r));
  s.days_of_week_ = static_cast<std::uint8_t>(bits);
  s.dow_restricted_ = r;
  return s;
}

std::optional<wall_time> job_schedule::next(wall_time after) const {
  if (is_interval()) return after + interval_;
  // Cron: from the next whole second, skip non-matching days, then find the
  // first matching second of the day.
  sys_seconds t = floor<seconds>(time_point_cast<nanoseconds>(after)) + seconds(1);
  const sys_days limit = floor<days>(t) + days(366 * 8 + 2);
  civil c = to_civil(t);
  while (c.day < limit) {
    const unsigned month = static_cast<unsigned>(c.ymd.month());
    const unsigned dom = static_cast<unsigned>(c.ymd.day());
    const unsigned dow = weekday(c.day).c_encoding();
    const bool dom_ok = (days_of_month_ >> dom) & 1U;
    const bool dow_ok = (days_of_week_ >> dow) & 1U;
    const bool day_ok =
        (dom_restricted_ && dow_restricted_) ? (dom_ok || dow_ok) : (dom_ok && dow_ok);
    if (((months_ >> month) & 1U) && day_ok) {
      for (int s = c.second_of_day; s < 86400; ++s) {
        const int h = s / 3600, m = (s / 60) % 60, sec = s % 60;
        if (!((hours_ >> h) & 1U)) {
          s = (h + 1) * 3600 - 1;  // skip the rest of this hour
          continue;
        }
        if (!((minutes_ >> m) & 1U)) {
          s = h * 3600 + (m + 1) * 60 - 1;  // skip the rest of this minute
          continue;
        }
        if ((seconds_ >> sec) & 1U) {
          return wall_time(time_point_cast<wall_time::duration>(c.day + seconds(s)));
        }
      }
    }
    const sys_days next_day = c.day + days(1);
    c = civil{next_day, year_month_day(next_day), 0};
  }
  return std::nullopt;
}

result<nanoseconds> parse_iso8601_duration(std::string_view text) {
  if (text.size() < 2 || (text[0] != 'P' && text[0] != 'p')) {
    return bad(fmt::format("'{}' is not an ISO 8601 duration", text));
  }
  double total_seconds = 0;
  bool in_time = false;
  bool any = false;
  std::size_t i = 1;
  while (i < text.size()) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    if (c == 'T') {
      if (in_time) return bad(fmt::format("'{}': a second T", text));
      in_time = true;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) ||
                               text[j] == '.' || text[j] == ',')) {
      ++j;
    }
    if (j == i || j >= text.size()) {
      return bad(fmt::format("'{}' is not an ISO 8601 duration", text));
    }
    std::string number(text.substr(i, j - i));
    for (auto& ch : number) {
      if (ch == ',') ch = '.';
    }
    double v = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
    if (ec != std::errc() || p != number.data() + number.size()) {
      return bad(fmt::format("'{}' is not an ISO 8601 duration", text));
    }
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(text[j])));
    double scale = 0;
    if (!in_time && unit == 'W') scale = 7 * 86400.0;
    if (!in_time && unit == 'D') scale = 86400.0;
    if (in_time && unit == 'H') scale = 3600.0;
    if (in_time && unit == 'M') scale = 60.0;
    if (in_time && unit == 'S') scale = 1.0;
    if (scale == 0) {
      return bad(
          fmt::format("'{}': unit '{}' is not supported (years and months have no fixed "
                      "length; use days or weeks)",
                      text, text[j]));
    }
    total_seconds += v * scale;
    any = true;
    i = j + 1;
  }
  if (!any) return bad(fmt::format("'{}' is an empty ISO 8601 duration", text));
  if (total_seconds > 200.0 * 365 * 86400) return bad(fmt::format("'{}' is too long", text));
  return nanoseconds(static_cast<std::int64_t>(total_seconds * 1e9));
}

result<wall_time> parse_job_time(std::string_view text, wall_time created) {
  if (text.empty()) return bad("empty time");
  if (text[0] == 'P' || text[0] == 'p') {
    auto d = parse_iso8601_duration(text);
    if (!d) return std::move(d).error();
    return created + *d;
  }
  if (auto d = parse_duration(text)) return created + *d;
  if (auto t = parse_rfc3339(text)) return *t;
  return bad(
      fmt::format("'{}' is neither an RFC 3339 time, a Go duration (90s, 1h30m) nor an "
                  "ISO 8601 duration (PT90S)",
                  text));
}

}  // namespace outrider::sidecar
