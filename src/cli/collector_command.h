// `outrider collector`: the trace collector process (OTLP/HTTP and Zipkin
// receivers, the embedded span store, the Zipkin v2 query API).
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Adds the `collector` subcommand to `app`; its exit code goes to `*exit_code`.
void add_collector_commands(CLI::App& app, int* exit_code);

}  // namespace outrider::cli
