// runner: `outrider dev`. Starts a whole local system from a dev_config and
// supervises it until SIGINT/SIGTERM:
//
//   1. ports: every process gets its ports here (configured or picked free);
//      the name-resolution file (<state>/resolve.yaml) maps app ids to sidecars;
//   2. each app's `build:` command, once, in order;
//   3. `outrider broker`, then `outrider collector` (ready files);
//   4. every app's `outrider sidecar` (ready when /v1.0/healthz/outbound is 204);
//   5. the apps, with DAPR_HTTP_PORT, DAPR_HOST, APP_PORT, APP_ID,
//      OTEL_EXPORTER_OTLP_ENDPOINT and their own env.
//
// While running: output of every process prefixed and coloured (console.h),
// a status view, GET /status (JSON) and /status.txt on the runner's status
// port (its address in <state>/dev.json for `outrider dev status`), restarts
// of crashed processes with exponential backoff. Stop: apps, then sidecars,
// then collector, then broker, each stage SIGTERM then SIGKILL after
// stopGrace; a second signal kills everything at once.
//
// Threading: run() on the main thread, which also spawns every child (their
// PR_SET_PDEATHSIG is tied to it). Health probes, queue polling and the status
// endpoint run on one I/O thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "dev/config.h"

namespace outrider::dev {

struct runner_options {
  std::string outrider_binary;  // the `outrider` executable for broker, collector, sidecars
  bool build = true;            // run the apps' build commands
  bool color = false;
  bool tty = false;  // stdout is a terminal (the status block)
  std::FILE* out = stdout;
};

class runner {
 public:
  runner(dev_config config, runner_options options);
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  // Blocks SIGINT and SIGTERM in the calling thread (call before starting
  // other threads), starts the system, supervises it until a signal, stops it.
  // Returns 0 after a clean stop, 1 when the system could not start, 130 or
  // 143 when stopped during start-up.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Reads <state_dir>/dev.json written by a running `outrider dev` and prints
// its status (`json`: the raw JSON) to `out`. Errors: not_found (no runner),
// unavailable (the runner does not answer).
status print_status(const std::string& state_dir, bool json, std::FILE* out);

}  // namespace outrider::dev
