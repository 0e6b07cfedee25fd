#include "cli/version.h"

#include <fmt/core.h>

namespace outrider::cli {

std::string version_text() {
  return fmt::format("outrider {} (commit {}, {} build, GCC {}.{}.{})", OUTRIDER_VERSION,
                     OUTRIDER_GIT_COMMIT, OUTRIDER_BUILD_TYPE, __GNUC__, __GNUC_MINOR__,
                     __GNUC_PATCHLEVEL__);
}

}  // namespace outrider::cli
