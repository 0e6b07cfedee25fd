// The `outrider` command line: subcommands registered in app.cpp.
#pragma once

namespace outrider::cli {

// Parses argv, runs the chosen subcommand and returns the exit code.
int run(int argc, char** argv);

}  // namespace outrider::cli
