#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

#include "base/log.h"

namespace outrider::detail {

void assert_failed(const char* condition, std::string_view message, const char* file,
                   int line) noexcept {
  // stderr first: it works even if logging is broken or not initialised.
  std::fprintf(stderr, "outrider: assertion failed at %s:%d: %s (%.*s)\n", file, line, condition,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  log::flush();
  std::abort();
}

}  // namespace outrider::detail
