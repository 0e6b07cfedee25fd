// open_file_limit: the process's limit on open file descriptors.
//
// A server process (broker, sidecar, collector) holds one descriptor per
// connection and, in the broker, per log segment and delay-index file. Linux
// starts processes with a soft RLIMIT_NOFILE of 1024 (systemd's default),
// far below the hard limit, so a sidecar at its default --max-connections
// 4096 or a broker writing a checkpoint could run out. Servers therefore
// raise the soft limit to the hard limit at start, as nginx
// (worker_rlimit_nofile) and the Go runtime do. Processes that start children
// (`outrider dev`) do not, so children see the limit they were given.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace outrider::io {

struct open_file_limits {
  std::uint64_t soft_before = 0;
  std::uint64_t soft = 0;  // after the call
  std::uint64_t hard = 0;
};

// Raises the soft limit to min(hard, cap). Never lowers it. Errors: io_error
// when getrlimit/setrlimit fail (the limit is then left as it was).
result<open_file_limits> raise_open_file_limit(std::uint64_t cap = std::uint64_t{1} << 20);

}  // namespace outrider::io
