// `outrider sidecar`: the Dapr-compatible sidecar next to one app instance
// (src/sidecar), with its pub/sub component built from the backend registry.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Adds `sidecar` to `app`. The subcommand's exit code is stored in
// `*exit_code` by its callback.
void add_sidecar_command(CLI::App& app, int* exit_code);

}  // namespace outrider::cli
