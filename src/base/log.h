// Logging: a thin, cheap-to-include front over spdlog (only log.cpp includes
// spdlog). Formatting happens only when the level is enabled.
//
//   static const outrider::log::logger log{"broker"};
//   log.info("recovered {} segments in {} ms", n, ms);
//
// Process-wide configuration (level, human or JSON lines, colour) is set once at
// start-up by init(); the CLI maps --log-level/--log-format and the
// OUTRIDER_LOG_LEVEL/OUTRIDER_LOG_FORMAT environment variables onto it.
// Thread-safe.
#pragma once

#include <fmt/core.h>
#include <string_view>

#include "base/result.h"

namespace outrider::log {

enum class level { trace = 0, debug, info, warn, error, critical, off };
enum class format { human, json };

struct options {
  level min_level = level::info;
  format output = format::human;
  bool color = false;  // human format only
};

// Parses "trace|debug|info|warn|error|critical|off" (case-insensitive).
result<level> parse_level(std::string_view text);
// Parses "human|text|json".
result<format> parse_format(std::string_view text);

// Configures the process-wide sink (stderr). Safe to call more than once.
void init(const options& opts);
void set_level(level l);
bool enabled(level l) noexcept;
// Writes one record. `component` names the subsystem ("http", "broker").
void write(level l, std::string_view component, std::string_view message);
void flush() noexcept;

class logger {
 public:
  constexpr explicit logger(std::string_view component) : component_(component) {}

  template <class... Args>
  void log(level l, fmt::format_string<Args...> f, Args&&... args) const {
    if (enabled(l)) {
      write(l, component_, fmt::vformat(f, fmt::make_format_args(args...)));
    }
  }
  template <class... Args>
  void trace(fmt::format_string<Args...> f, Args&&... args) const {
    log(level::trace, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const {
    log(level::debug, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    log(level::info, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    log(level::warn, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const {
    log(level::error, f, std::forward<Args>(args)...);
  }

  std::string_view component() const noexcept { return component_; }

 private:
  std::string_view component_;
};

}  // namespace outrider::log
