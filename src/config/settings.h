// settings: one declaration per setting gives its YAML key, environment
// variable and command-line flag, so the three stay consistent and
// documentable.
//
// Precedence (highest first): command-line flag > environment variable >
// configuration file > built-in default (the target's initial value). Sources
// are applied lowest first: apply_file(), then apply_env(), then
// apply_flag() for each flag given; each later source overwrites.
//
// Errors are config_invalid and name the source: "outrider.yaml:4:9: key
// 'broker.listen': ...", "environment variable OUTRIDER_LOG_LEVEL: ...",
// "--listen: ...". Unknown keys in a file are errors (with a suggestion).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/result.h"
#include "config/node.h"

namespace outrider::config {

// A byte count written as "1048576", "512KiB", "1MiB", "2GiB" (or KB/MB/GB = 1000^n).
struct byte_size {
  std::uint64_t bytes = 0;
};

// Scalar parsers shared by every source. On error: invalid_argument with a message
// saying what was expected (the caller adds the source).
status parse_value(std::string_view text, std::string& out);
status parse_value(std::string_view text, bool& out);  // true/false, yes/no, on/off, 1/0
status parse_value(std::string_view text, std::int64_t& out);
status parse_value(std::string_view text, std::uint64_t& out);
status parse_value(std::string_view text, int& out);
status parse_value(std::string_view text, std::uint32_t& out);
status parse_value(std::string_view text, std::uint16_t& out);
status parse_value(std::string_view text, double& out);
status parse_value(std::string_view text, nanoseconds& out);  // "90s", "7d" (time_format.h)
status parse_value(std::string_view text, byte_size& out);
status parse_value(std::string_view text, log::level& out);
status parse_value(std::string_view text, log::format& out);

// The candidate closest to `word` (case-insensitive edit distance below 4), or
// "" when none is close: the "did you mean" of unknown-key errors.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

class settings {
 public:
  struct entry {
    std::string key;   // dotted YAML path: "broker.listen"
    std::string env;   // "OUTRIDER_BROKER_LISTEN" or ""
    std::string flag;  // "listen" (used as --listen) or ""
    std::string help;
    std::string default_text;
    std::function<status(std::string_view)> assign;
  };

  // Declares a setting bound to `*target` (whose current value is the default).
  // REQUIRES: key unique; `target` outlives this object.
  template <class T>
  void add(std::string key, T* target, std::string help, std::string env = "",
           std::string flag = "") {
    entry e;
    e.key = std::move(key);
    e.env = std::move(env);
    e.flag = std::move(flag);
    e.help = std::move(help);
    e.default_text = describe_default(*target);
    e.assign = [target](std::string_view text) { return parse_value(text, *target); };
    add_entry(std::move(e));
  }

  // Declares a structured section (lists, maps) that module code parses from
  // the node; called by apply_file() when the key is present.
  void add_section(std::string key, std::function<status(const node&)> parse, std::string help);

  status apply_file(const node& root);
  using env_lookup = std::function<std::optional<std::string>(const std::string&)>;
  status apply_env(const env_lookup& lookup = system_env);
  // `flag` without dashes, as declared.
  status apply_flag(std::string_view flag, std::string_view text);

  const std::vector<entry>& entries() const noexcept { return entries_; }
  // A Markdown table of every setting (key, env, flag, default, meaning).
  std::string markdown_table() const;

  static std::optional<std::string> system_env(const std::string& name);

 private:
  struct section {
    std::string key;
    std::function<status(const node&)> parse;
    std::string help;
  };
  void add_entry(entry e);
  status walk(const node& n);

  static std::string describe_default(const std::string& v) { return v; }
  static std::string describe_default(bool v) { return v ? "true" : "false"; }
  static std::string describe_default(nanoseconds v);
  static std::string describe_default(byte_size v);
  static std::string describe_default(log::level v);
  static std::string describe_default(log::format v);
  template <class T>
  static std::string describe_default(T v) {
    return std::to_string(v);
  }

  std::vector<entry> entries_;
  std::vector<section> sections_;
};

}  // namespace outrider::config
