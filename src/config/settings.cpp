#include "config/settings.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fmt/core.h>
#include <limits>

#include "base/assert.h"
#include "base/time_format.h"

namespace outrider::config {
namespace {

error expected(std::string_view what, std::string_view text) {
  return error(errc::invalid_argument, fmt::format("expected {}, got '{}'", what, text));
}

template <class Int>
status parse_integer(std::string_view text, Int& out, std::string_view what) {
  Int value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size())
    return expected(what, text);
  out = value;
  return {};
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = 4;
  for (const auto& c : candidates) {
    const auto d = edit_distance(lower(c), lower(word));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

status parse_value(std::string_view text, std::string& out) {
  out.assign(text);
  return {};
}

status parse_value(std::string_view text, bool& out) {
  auto t = lower(text);
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    out = true;
  } else if (t == "false" || t == "no" || t == "off" || t == "0") {
    out = false;
  } else {
    return expected("true or false", text);
  }
  return {};
}

status parse_value(std::string_view text, std::int64_t& out) {
  return parse_integer(text, out, "an integer");
}
status parse_value(std::string_view text, std::uint64_t& out) {
  return parse_integer(text, out, "a non-negative integer");
}
status parse_value(std::string_view text, int& out) {
  return parse_integer(text, out, "an integer");
}
status parse_value(std::string_view text, std::uint32_t& out) {
  return parse_integer(text, out, "a non-negative integer below 2^32");
}
status parse_value(std::string_view text, std::uint16_t& out) {
  return parse_integer(text, out, "a port number (0-65535)");
}

status parse_value(std::string_view text, double& out) {
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || errno == ERANGE)
    return expected("a number", text);
  out = v;
  return {};
}

status parse_value(std::string_view text, nanoseconds& out) {
  auto d = parse_duration(text);
  if (!d) return std::move(d).error();
  out = *d;
  return {};
}

status parse_value(std::string_view text, byte_size& out) {
  struct suffix {
    std::string_view text;
    std::uint64_t factor;
  };
  static constexpr suffix suffixes[] = {
      {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},   {"TiB", 1ULL << 40},
      {"KB", 1000ULL},     {"MB", 1000000ULL},  {"GB", 1000000000ULL}, {"B", 1ULL}};
  std::uint64_t factor = 1;
  std::string_view number = text;
  for (const auto& s : suffixes) {
    if (text.size() > s.text.size() && text.ends_with(s.text)) {
      factor = s.factor;
      number = text.substr(0, text.size() - s.text.size());
      break;
    }
  }
  std::uint64_t n = 0;
  if (!parse_integer(number, n, ""))
    return expected("a size such as 1048576, 512KiB or 1MiB", text);
  if (n > std::numeric_limits<std::uint64_t>::max() / factor)
    return expected("a smaller size", text);
  out.bytes = n * factor;
  return {};
}

status parse_value(std::string_view text, log::level& out) {
  auto l = log::parse_level(text);
  if (!l) return std::move(l).error();
  out = *l;
  return {};
}

status parse_value(std::string_view text, log::format& out) {
  auto f = log::parse_format(text);
  if (!f) return std::move(f).error();
  out = *f;
  return {};
}

std::string settings::describe_default(nanoseconds v) {
  return format_duration(v);
}
std::string settings::describe_default(byte_size v) {
  return std::to_string(v.bytes);
}
std::string settings::describe_default(log::level v) {
  static constexpr std::string_view names[] = {"trace", "debug",    "info", "warn",
                                               "error", "critical", "off"};
  return std::string(names[static_cast<int>(v)]);
}
std::string settings::describe_default(log::format v) {
  return v == log::format::json ? "json" : "human";
}

void settings::add_entry(entry e) {
  for (const auto& existing : entries_) {
    OUTRIDER_ASSERT(existing.key != e.key, "setting declared twice");
  }
  entries_.push_back(std::move(e));
}

void settings::add_section(std::string key, std::function<status(const node&)> parse,
                           std::string help) {
  sections_.push_back(section{std::move(key), std::move(parse), std::move(help)});
}

status settings::walk(const node& n) {
  for (const auto& [key, child] : n.entries()) {
    const auto& path = child.path();
    auto setting = std::find_if(entries_.begin(), entries_.end(),
                                [&](const entry& e) { return e.key == path; });
    if (setting != entries_.end()) {
      if (child.is_null()) continue;  // "key:" with no value keeps the default
      if (!child.is_scalar()) return child.fail("expected a single value");
      auto s = setting->assign(child.scalar());
      if (!s) return child.fail(s.error().message);
      continue;
    }
    auto sec = std::find_if(sections_.begin(), sections_.end(),
                            [&](const section& s) { return s.key == path; });
    if (sec != sections_.end()) {
      OUTRIDER_TRY(sec->parse(child));
      continue;
    }
    const std::string prefix = path + ".";
    bool is_group = std::any_of(entries_.begin(), entries_.end(),
                                [&](const entry& e) { return e.key.starts_with(prefix); }) ||
                    std::any_of(sections_.begin(), sections_.end(),
                                [&](const section& s) { return s.key.starts_with(prefix); });
    if (is_group) {
      if (child.is_null()) continue;
      if (!child.is_map()) return child.fail("expected a map of settings");
      OUTRIDER_TRY(walk(child));
      continue;
    }
    // Unknown: suggest the closest known key.
    std::string best;
    std::size_t best_distance = 4;
    auto consider = [&](const std::string& known) {
      auto d = edit_distance(lower(known), lower(path));
      if (d < best_distance) {
        best_distance = d;
        best = known;
      }
    };
    for (const auto& e : entries_) consider(e.key);
    for (const auto& s : sections_) consider(s.key);
    return child.fail(best.empty() ? "unknown key"
                                   : fmt::format("unknown key (did you mean '{}'?)", best));
  }
  return {};
}

status settings::apply_file(const node& root) {
  if (root.is_null()) return {};  // an empty file
  if (!root.is_map()) return root.fail("the configuration file must be a map of settings");
  return walk(root);
}

std::optional<std::string> settings::system_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

status settings::apply_env(const env_lookup& lookup) {
  for (const auto& e : entries_) {
    if (e.env.empty()) continue;
    auto v = lookup(e.env);
    if (!v) continue;
    auto s = e.assign(*v);
    if (!s) {
      return error(errc::config_invalid,
                   fmt::format("environment variable {}: {}", e.env, s.error().message));
    }
  }
  return {};
}

status settings::apply_flag(std::string_view flag, std::string_view text) {
  for (const auto& e : entries_) {
    if (e.flag == flag) {
      auto s = e.assign(text);
      if (!s) return error(errc::config_invalid, fmt::format("--{}: {}", flag, s.error().message));
      return {};
    }
  }
  return error(errc::config_invalid, fmt::format("unknown flag --{}", flag));
}

std::string settings::markdown_table() const {
  std::string out = "| key | environment | flag | default | meaning |\n|---|---|---|---|---|\n";
  for (const auto& e : entries_) {
    out += fmt::format("| `{}` | {} | {} | `{}` | {} |\n", e.key,
                       e.env.empty() ? "" : "`" + e.env + "`",
                       e.flag.empty() ? "" : "`--" + e.flag + "`", e.default_text, e.help);
  }
  for (const auto& s : sections_) {
    out += fmt::format("| `{}` | | | | {} |\n", s.key, s.help);
  }
  return out;
}

}  // namespace outrider::config
