#include "cli/dev_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/command.h"
#include "dev/config.h"
#include "dev/console.h"
#include "dev/runner.h"

namespace outrider::cli {
namespace {

struct dev_flags {
  std::string file = "outrider.yaml";
  std::string data_dir;
  bool no_build = false;
  bool json = false;
};

// The running executable, so the runner starts the same `outrider` build.
std::string self_path() {
  char buf[PATH_MAX];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "outrider";
  return std::string(buf, static_cast<std::size_t>(n));
}

result<dev::dev_config> load(const dev_flags& f) {
  auto c = dev::load_config(f.file);
  if (!c) return c;
  if (!f.data_dir.empty())
    c->state_dir = std::filesystem::absolute(f.data_dir).lexically_normal().string();
  return c;
}

int run_dev(const dev_flags& f) {
  auto c = load(f);
  if (!c) return report_failure(c.error());
  dev::runner_options o;
  o.outrider_binary = self_path();
  // The executable started as broker, collector and sidecars: this one, unless overridden
  // (a wrapper for debugging or for tests).
  if (const char* b = std::getenv("OUTRIDER_DEV_BINARY"); b != nullptr && *b != '\0')
    o.outrider_binary = b;
  o.build = !f.no_build;
  o.tty = ::isatty(STDOUT_FILENO) == 1;
  o.color = c->ui.color == dev::ui_config::colour::always ||
            (c->ui.color == dev::ui_config::colour::automatic &&
             dev::console::color_wanted(STDOUT_FILENO));
  dev::runner r(std::move(*c), o);
  return r.run();
}

int run_status(const dev_flags& f) {
  std::string state_dir;
  if (!f.data_dir.empty()) {
    state_dir = f.data_dir;
  } else {
    auto c = load(f);
    if (!c) return report_failure(c.error());
    state_dir = c->state_dir;
  }
  if (auto s = dev::print_status(state_dir, f.json, stdout); !s) return report_failure(s.error());
  return 0;
}

}  // namespace

void add_dev_command(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<dev_flags>();
  auto* cmd = app.add_subcommand(
      "dev", "Run a whole local system from outrider.yaml: broker, collector, apps and sidecars");
  cmd->add_option("-f,--file", flags->file, "the system's configuration")->capture_default_str();
  cmd->add_option("--data-dir", flags->data_dir,
                  "state folder (broker and trace data, run files) [default: .outrider next to "
                  "the file]");
  cmd->add_flag("--no-build", flags->no_build, "skip the apps' build commands");
  cmd->require_subcommand(0, 1);
  auto* status = cmd->add_subcommand("status", "Show the status of a running `outrider dev`");
  status->add_option("-f,--file", flags->file, "the system's configuration")->capture_default_str();
  status->add_option("--data-dir", flags->data_dir, "the runner's state folder");
  status->add_flag("--json", flags->json, "print the status as JSON");
  status->callback([flags, exit_code] { *exit_code = run_status(*flags); });
  cmd->callback([flags, exit_code, status] {
    if (status->parsed()) return;
    *exit_code = run_dev(*flags);
  });
}

}  // namespace outrider::cli
