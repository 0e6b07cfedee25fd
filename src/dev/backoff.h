// restart_backoff: how long the runner waits before starting a crashed
// process again. Exponential (initial * multiplier^(n-1), capped at max) and
// deterministic (no jitter: one developer's machine, a handful of processes);
// a process that ran at least `reset_after` before exiting counts as healthy
// again, so its next crash waits `initial` only. Pure: the caller passes how
// long the process ran, so tests need no clock.
#pragma once

#include <cstdint>

#include "base/clock.h"
#include "dev/config.h"

namespace outrider::dev {

class restart_backoff {
 public:
  explicit restart_backoff(restart_config c = {}) : config_(c) {}

  // The process exited after running for `ran`: the delay before its next start.
  nanoseconds on_exit(nanoseconds ran);
  // Crashes in a row (since the last run of at least reset_after).
  std::uint32_t consecutive() const noexcept { return consecutive_; }

 private:
  restart_config config_;
  std::uint32_t consecutive_ = 0;
};

}  // namespace outrider::dev
