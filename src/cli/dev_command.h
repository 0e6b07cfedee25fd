// `outrider dev -f outrider.yaml`: a whole local system (broker, collector,
// every app with its sidecar) under one supervisor (src/dev); `outrider dev
// status` asks a running one for its status.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Adds `dev` (and `dev status`) to `app`; the exit code goes to `*exit_code`.
void add_dev_command(CLI::App& app, int* exit_code);

}  // namespace outrider::cli
