// job_schedule: the time grammar of Dapr's jobs API and the next-occurrence
// computation. Pure functions of their arguments (no clock), so a yearly job
// is tested in microseconds.
//
//  - schedule: a 6-field cron expression with seconds ("0 30 * * * *"), or
//    "@every <duration>", or @yearly/@annually, @monthly, @weekly,
//    @daily/@midnight, @hourly. Cron fields: seconds 0-59, minutes 0-59,
//    hours 0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-6
//    (7 = Sunday too) or sun-sat; each a list of "*", "?", "a", "a-b",
//    with an optional "/step". When both day fields are restricted a day
//    matching either one matches (classic cron). Times are UTC.
//  - dueTime and ttl: an RFC 3339 timestamp, a Go duration ("90s", "1h30m")
//    or an ISO 8601 duration ("PT30S", "P1DT2H", "P2W"), the durations
//    counted from the job's creation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace outrider::sidecar {

class job_schedule {
 public:
  // Errors: invalid_argument naming the bad field or value.
  static result<job_schedule> parse(std::string_view text);

  // The first occurrence strictly after `after`; nullopt when none exists
  // within the next 8 years (e.g. "0 0 0 30 2 *": February the 30th).
  std::optional<wall_time> next(wall_time after) const;

  bool is_interval() const noexcept { return interval_.count() > 0; }

 private:
  nanoseconds interval_{};  // @every
  // Cron fields as bit sets: bit v set when value v matches.
  std::uint64_t seconds_ = 0;
  std::uint64_t minutes_ = 0;
  std::uint32_t hours_ = 0;
  std::uint32_t days_of_month_ = 0;
  std::uint16_t months_ = 0;
  std::uint8_t days_of_week_ = 0;
  bool dom_restricted_ = false;
  bool dow_restricted_ = false;
};

// A "point in time" (RFC 3339) or a duration (Go or ISO 8601) added to
// `created`. Errors: invalid_argument.
result<wall_time> parse_job_time(std::string_view text, wall_time created);

// An ISO 8601 duration without years or months ("P1DT2H30M", "PT0.5S", "P2W").
// Errors: invalid_argument (years and months have no fixed length: refused).
result<nanoseconds> parse_iso8601_duration(std::string_view text);

}  // namespace outrider::sidecar
