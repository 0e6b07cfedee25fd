// main() only wires: everything else lives in libraries the tests link.
#include "cli/app.h"

int main(int argc, char** argv) {
  return outrider::cli::run(argc, argv);
}
