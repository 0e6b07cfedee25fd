#include "io/open_file_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace outrider::io {

result<open_file_limits> raise_open_file_limit(std::uint64_t cap) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return error(errc::io_error, std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  open_file_limits out;
  out.soft_before = lim.rlim_cur;
  out.hard = lim.rlim_max;
  // RLIM_INFINITY is the largest rlim_t, so min() caps it too.
  const rlim_t target = std::min<rlim_t>(lim.rlim_max, static_cast<rlim_t>(cap));
  if (lim.rlim_cur >= target) {
    out.soft = lim.rlim_cur;
    return out;
  }
  lim.rlim_cur = target;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return error(errc::io_error, std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  out.soft = target;
  return out;
}

}  // namespace outrider::io
