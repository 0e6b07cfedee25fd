// `outrider analyze`: the distributed-monolith report over stored traces.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Registers `analyze` on `app`; its exit code goes to *exit_code.
void add_analyze_command(CLI::App& app, int* exit_code);

}  // namespace outrider::cli
