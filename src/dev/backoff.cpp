#include "dev/backoff.h"

#include <algorithm>

namespace outrider::dev {

nanoseconds restart_backoff::on_exit(nanoseconds ran) {
  if (ran >= config_.reset_after) consecutive_ = 0;
  ++consecutive_;
  // Grow in double and compare before converting, so no overflow at any count.
  double delay = static_cast<double>(config_.initial_delay.count());
  const double cap = static_cast<double>(config_.max_delay.count());
  for (std::uint32_t i = 1; i < consecutive_ && delay < cap; ++i) delay *= config_.multiplier;
  return nanoseconds(static_cast<nanoseconds::rep>(std::min(delay, cap)));
}

}  // namespace outrider::dev
