// `outrider broker`: the embedded broker process, and the admin verbs that
// talk to a running broker (queues, peek, replay, cancel).
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace outrider::cli {

// Adds `broker` and the admin subcommands to `app`. Each subcommand's exit
// code is stored in `*exit_code` by its callback.
void add_broker_commands(CLI::App& app, int* exit_code);

}  // namespace outrider::cli
