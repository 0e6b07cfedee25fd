// Building blocks shared by the subcommands of `outrider`.
//
// A server subcommand declares its settings once (config::settings); this
// file turns them into flags, reads `--config FILE` and the environment, and
// applies them in the documented precedence (flag > env > file > default).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "config/settings.h"

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Options every subcommand has.
struct common_options {
  std::string config_file;  // --config / -c
  log::level log_level = log::level::info;
  log::format log_format = log::format::human;
};

// A subcommand's settings bound to CLI11 options. Create with bind(), then
// call resolve() after CLI11 parsed the command line.
class bound_settings {
 public:
  // Adds --config, --log-level, --log-format and one --FLAG per setting that
  // declares a flag. `s` must outlive this object.
  static std::shared_ptr<bound_settings> bind(CLI::App& command, config::settings& s);

  // Applies file, environment and flags; initialises logging. Errors are
  // config_invalid (or not_found for a missing --config file).
  status resolve();

  const common_options& common() const noexcept { return common_; }

 private:
  config::settings* settings_ = nullptr;
  common_options common_;
  std::vector<std::pair<std::string, std::string>>
      flag_values_;  // (flag, text) in declaration order
  std::vector<std::pair<std::string, bool>> flag_given_;
  CLI::App* command_ = nullptr;
};

// Writes `text` to `path` through a temporary file and a rename, so a reader
// (a test harness, `outrider dev`) never sees a half-written ready file.
// Errors: io_error naming the path.
status write_file_atomically(const std::string& path, std::string_view text);

// Prints "outrider: <message>" to stderr and returns the process exit code
// for an error (2 for configuration and usage errors, 1 otherwise).
int report_failure(const error& e);

// Server subcommands call this at start: raises the soft limit on open files
// to the hard limit (io/open_file_limit.h) and logs a warning naming the
// setting when the result is still below `wanted` descriptors (0: no need
// stated). Never fails the command: a low limit is the operator's choice.
void raise_open_file_limit(const log::logger& logger, std::uint64_t wanted, std::string_view what);

}  // namespace outrider::cli
