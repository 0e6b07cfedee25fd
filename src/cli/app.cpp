#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/analyze_command.h"
#include "cli/broker_command.h"
#include "cli/collector_command.h"
#include "cli/dev_command.h"
#include "cli/sidecar_command.h"
#include "cli/version.h"

namespace outrider::cli {

int run(int argc, char** argv) {
  CLI::App app{"Outrider: a sidecar runtime for message-driven services", "outrider"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());

  int exit_code = 0;
  auto* version = app.add_subcommand("version", "Print the version and build information");
  version->callback([] { std::printf("%s\n", version_text().c_str()); });
  add_broker_commands(app, &exit_code);
  add_collector_commands(app, &exit_code);
  add_analyze_command(app, &exit_code);
  add_sidecar_command(app, &exit_code);
  add_dev_command(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace outrider::cli
