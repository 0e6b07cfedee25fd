// Assertions: for broken invariants only.
//
// Policy:
//  - OUTRIDER_ASSERT checks an invariant that no input can violate (a bug if it
//    fails). It is on in every build; on failure it logs file, line, the
//    condition and the message, flushes the logs and aborts, so a core dump or
//    the log shows the bug instead of silent corruption.
//  - OUTRIDER_DEBUG_ASSERT is the same but compiled out of release builds; use
//    it on hot paths for checks that are too expensive to keep.
//  - Never assert on anything the network, a file, the command line or the
//    environment can trigger: that is an expected failure and returns an error
//    (result.h).
#pragma once

#include <string_view>

namespace outrider::detail {
[[noreturn]] void assert_failed(const char* condition, std::string_view message, const char* file,
                                int line) noexcept;
}  // namespace outrider::detail

#define OUTRIDER_ASSERT(condition, message)                                         \
  do {                                                                              \
    if (!(condition)) [[unlikely]] {                                                \
      ::outrider::detail::assert_failed(#condition, (message), __FILE__, __LINE__); \
    }                                                                               \
  } while (0)

#ifdef NDEBUG
#define OUTRIDER_DEBUG_ASSERT(condition, message) \
  do {                                            \
  } while (0)
#else
#define OUTRIDER_DEBUG_ASSERT(condition, message) OUTRIDER_ASSERT(condition, message)
#endif

#define OUTRIDER_UNREACHABLE(message) \
  ::outrider::detail::assert_failed("unreachable", (message), __FILE__, __LINE__)
