#pragma once

#include <string>

namespace outrider::cli {

// "outrider 0.1.0 (commit abc1234, RelWithDebInfo, GCC 12.2.0)".
std::string version_text();

}  // namespace outrider::cli
