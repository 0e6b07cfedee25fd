// The `outrider.yaml` of `outrider dev`: the apps of a local system and how
// the runner starts the broker, the collector and every app's sidecar.
//
// Parsed from config::node, so every error names the file, line and key:
// "outrider.yaml:7:5: key 'apps[1].comand': unknown key (did you mean 'command'?)".
// Relative paths (workdir, resources, data dirs) are resolved against the
// folder of the configuration file. docs/dev.md documents the format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/node.h"

namespace outrider::dev {

// When a process that exited on its own is started again.
enum class restart_policy {
  on_failure,  // exit code != 0 or killed by a signal (the default)
  always,      // any exit
  never,       // a one-shot job (e.g. a scenario script)
};

struct app_config {
  std::string id;  // the Dapr app id: [A-Za-z0-9._-]+, unique
  // argv. A string command in YAML becomes {"/bin/sh", "-c", text}.
  std::vector<std::string> command;
  std::string workdir;     // absolute; default: the config file's folder
  std::uint16_t port = 0;  // the app's HTTP port; 0: the runner picks one
  std::vector<std::pair<std::string, std::string>> env;  // in file order
  std::string health_path;         // passed to the sidecar's app health check; "" = none
  std::string resources;           // absolute folder for --resources-path; "" = none
  std::vector<std::string> build;  // run once before start (same form as command); empty = none
  std::vector<std::string> sidecar_args;  // extra `outrider sidecar` arguments
  bool is_public = false;                 // printed at start as the system's front door
  std::string open;                       // path ("/orders") or URL printed at start
  restart_policy restart = restart_policy::on_failure;
  config::mark where;  // of the app's entry, for messages
};

struct broker_config {
  bool enabled = true;
  std::uint16_t port = 0;  // 0: picked
  std::string data_dir;    // absolute; "" = <state dir>/broker
};

struct collector_config {
  bool enabled = true;
  std::uint16_t otlp_port = 0;   // 0: picked
  std::uint16_t query_port = 0;  // Zipkin API, query API and the UI; 0: picked
  std::string data_dir;          // absolute; "" = <state dir>/traces
};

// The runner's own console and status endpoint.
struct ui_config {
  enum class view { automatic, block, line, off };
  enum class colour { automatic, always, never };
  view status = view::automatic;  // automatic: block on a TTY, else line
  colour color = colour::automatic;
  nanoseconds refresh = std::chrono::seconds(1);            // status block refresh
  nanoseconds summary_interval = std::chrono::seconds(30);  // one-line summary (no TTY)
  std::uint16_t status_port = 0;                            // the runner's GET /status; 0: picked
};

struct restart_config {
  nanoseconds initial_delay = std::chrono::milliseconds(500);
  nanoseconds max_delay = std::chrono::seconds(30);
  double multiplier = 2.0;
  // A process that ran at least this long before exiting starts again from
  // initial_delay.
  nanoseconds reset_after = std::chrono::seconds(30);
};

struct dev_config {
  std::string file;       // as given
  std::string base_dir;   // absolute folder of the file
  std::string state_dir;  // absolute; default <base_dir>/.outrider
  std::vector<app_config> apps;
  broker_config broker;
  collector_config collector;
  ui_config ui;
  restart_config restart;
  nanoseconds start_timeout = std::chrono::seconds(60);  // broker, collector, each sidecar
  nanoseconds stop_grace = std::chrono::seconds(10);     // SIGTERM to SIGKILL per stage
};

// Parses a document. `file` names it in the config; `base_dir` (absolute)
// resolves relative paths. Errors: config_invalid naming file, line and key.
result<dev_config> parse_config(const config::node& root, std::string_view file,
                                std::string_view base_dir);
// Reads and parses `path` (not_found, io_error, config_invalid).
result<dev_config> load_config(const std::string& path);

}  // namespace outrider::dev
