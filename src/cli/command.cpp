#include "cli/command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "config/node.h"
#include "io/open_file_limit.h"

namespace outrider::cli {

std::shared_ptr<bound_settings> bound_settings::bind(CLI::App& command, config::settings& s) {
  auto b = std::make_shared<bound_settings>();
  b->settings_ = &s;
  b->command_ = &command;
  command.add_option("-c,--config", b->common_.config_file, "YAML configuration file");
  // Logging is configured through the same settings so file/env/flag all work.
  s.add("log.level", &b->common_.log_level, "log level: trace, debug, info, warn, error, off",
        "OUTRIDER_LOG_LEVEL", "log-level");
  s.add("log.format", &b->common_.log_format, "log format: human or json", "OUTRIDER_LOG_FORMAT",
        "log-format");
  b->flag_values_.reserve(s.entries().size());
  for (const auto& e : s.entries()) {
    if (e.flag.empty()) continue;
    b->flag_values_.emplace_back(e.flag, std::string());
    auto* text = &b->flag_values_.back().second;
    command.add_option("--" + e.flag, *text,
                       e.help + " [default: " + e.default_text + "]" +
                           (e.env.empty() ? "" : " [env: " + e.env + "]"));
  }
  return b;
}

status bound_settings::resolve() {
  if (!common_.config_file.empty()) {
    auto doc = config::load_yaml_file(common_.config_file);
    if (!doc) return std::move(doc).error();
    OUTRIDER_TRY(settings_->apply_file(*doc));
  }
  OUTRIDER_TRY(settings_->apply_env());
  for (const auto& [flag, text] : flag_values_) {
    if (command_->count("--" + flag) > 0) {
      OUTRIDER_TRY(settings_->apply_flag(flag, text));
    }
  }
  log::init({.min_level = common_.log_level, .output = common_.log_format, .color = false});
  return {};
}

status write_file_atomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return error(errc::io_error, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return error(errc::io_error, "cannot rename " + tmp + " to " + path);
  }
  return {};
}

int report_failure(const error& e) {
  std::fprintf(stderr, "outrider: %s\n", e.message.c_str());
  return e.code == errc::config_invalid || e.code == errc::invalid_argument ||
                 e.code == errc::not_found
             ? 2
             : 1;
}

void raise_open_file_limit(const log::logger& logger, std::uint64_t wanted, std::string_view what) {
  auto r = io::raise_open_file_limit();
  if (!r) {
    logger.warn("could not raise the open-file limit: {}", r.error().message);
    return;
  }
  if (r->soft != r->soft_before) {
    logger.debug("open-file limit raised from {} to {} (hard limit {})", r->soft_before, r->soft,
                 r->hard);
  }
  if (wanted > r->soft) {
    logger.warn(
        "the open-file limit is {} (hard limit {}) but {} needs about {}; raise it (ulimit -n, "
        "systemd LimitNOFILE=) or lower the setting",
        r->soft, r->hard, what, wanted);
  }
}

}  // namespace outrider::cli
