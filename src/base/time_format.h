// Text forms of times and durations used on every interface.
#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace outrider {

// Parses a duration: a sequence of <number><unit> with units ns, us (or µs), ms,
// s, m, h, d (24 h) and w (7 d), e.g. "90s", "1h30m", "1.5h", "7d", "250ms" (Go's
// time.ParseDuration plus d and w). Also "0". Negative or overflowing values
// (beyond ±292 years) are errors (invalid_argument).
result<nanoseconds> parse_duration(std::string_view text);

// Formats as the shortest exact Go-style text: "1h30m0s"-like but omitting zero
// parts ("1h30m", "7d", "250ms", "0s").
std::string format_duration(nanoseconds d);

// Parses an RFC 3339 timestamp ("2026-01-02T03:04:05.123Z", "...+02:00"); 't',
// 'z' and ' ' as separator accepted, fractional seconds up to nanoseconds.
result<wall_time> parse_rfc3339(std::string_view text);

// Formats as RFC 3339 in UTC with `fraction_digits` (0, 3, 6 or 9) digits.
std::string format_rfc3339(wall_time t, int fraction_digits = 3);

}  // namespace outrider
