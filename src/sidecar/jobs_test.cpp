// The jobs API's time grammar, next-occurrence computation and job model.
// Pure functions of explicit times: a yearly job is checked in microseconds.
#include "sidecar/jobs.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/time_format.h"
#include "sidecar/job_schedule.h"

namespace outrider::sidecar {
namespace {

using namespace std::chrono_literals;

wall_time at(std::string_view rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t) << rfc3339;
  return t.value_or(wall_time{});
}

std::string text(std::optional<wall_time> t) {
  return t ? format_rfc3339(*t, 0) : std::string("none");
}

std::string next_of(std::string_view schedule, std::string_view after) {
  auto s = job_schedule::parse(schedule);
  EXPECT_TRUE(s) << schedule << ": " << (s ? "" : s.error().message);
  if (!s) return "parse error";
  return text(s->next(at(after)));
}

TEST(job_schedule, cron_with_seconds) {
  EXPECT_EQ(next_of("0 30 * * * *", "2026-11-24T10:15:00Z"), "2026-11-24T10:30:00Z");
  EXPECT_EQ(next_of("0 30 * * * *", "2026-11-24T10:30:00Z"), "2026-11-24T11:30:00Z");
  EXPECT_EQ(next_of("0 15 3 * * *", "2026-11-24T10:00:00Z"), "2026-11-25T03:15:00Z");
  EXPECT_EQ(next_of("*/15 * * * * *", "2026-11-24T10:00:07Z"), "2026-11-24T10:00:15Z");
  EXPECT_EQ(next_of("5-7 * * * * *", "2026-11-24T10:00:06Z"), "2026-11-24T10:00:07Z");
  EXPECT_EQ(next_of("0 0 9 * * mon-fri", "2026-11-28T00:00:00Z"), "2026-11-30T09:00:00Z");
  EXPECT_EQ(next_of("0 0 0 1 jan,jul *", "2026-11-24T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next_of("0 0 12 ? * 7", "2026-11-24T00:00:00Z"), "2026-11-29T12:00:00Z");  // Sunday
  // Both day fields restricted: either matches (the 1st, or a Friday).
  EXPECT_EQ(next_of("0 0 0 1 * 5", "2026-11-24T00:00:00Z"), "2026-11-27T00:00:00Z");
  // Fractions of a second: the next whole matching second.
  EXPECT_EQ(next_of("* * * * * *", "2026-11-24T10:00:00.5Z"), "2026-11-24T10:00:01Z");
}

TEST(job_schedule, macros_and_every) {
  EXPECT_EQ(next_of("@yearly", "2026-11-24T10:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next_of("@annually", "2027-01-01T00:00:00Z"), "2028-01-01T00:00:00Z");
  EXPECT_EQ(next_of("@monthly", "2026-11-24T10:00:00Z"), "2026-12-01T00:00:00Z");
  EXPECT_EQ(next_of("@weekly", "2026-11-24T10:00:00Z"), "2026-11-29T00:00:00Z");
  EXPECT_EQ(next_of("@daily", "2026-11-24T10:00:00Z"), "2026-11-25T00:00:00Z");
  EXPECT_EQ(next_of("@hourly", "2026-11-24T10:00:00Z"), "2026-11-24T11:00:00Z");
  EXPECT_EQ(next_of("@every 1h30m", "2026-11-24T10:00:00Z"), "2026-11-24T11:30:00Z");
  // Leap day, then none at all.
  EXPECT_EQ(next_of("0 0 0 29 2 *", "2026-11-24T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next_of("0 0 0 30 2 *", "2026-11-24T00:00:00Z"), "none");
}

TEST(job_schedule, bad_schedules_name_the_problem) {
  for (std::string_view bad :
       {"", "* * * * *", "60 * * * * *", "* * 24 * * *", "* * * 0 * *", "* * * * 13 *",
        "* * * * * 8", "*/0 * * * * *", "5-1 * * * * *", "@every", "@every -1s", "@every soon",
        "@fortnightly", "a b c d e f"}) {
    auto s = job_schedule::parse(bad);
    EXPECT_FALSE(s) << "'" << bad << "' parsed";
    if (!s) {
      EXPECT_EQ(s.error().code, errc::invalid_argument);
    }
  }
}

TEST(job_schedule, due_times_and_ttls) {
  const wall_time created = at("2026-11-24T10:00:00Z");
  EXPECT_EQ(text(parse_job_time("30s", created).value()), "2026-11-24T10:00:30Z");
  EXPECT_EQ(text(parse_job_time("1h30m", created).value()), "2026-11-24T11:30:00Z");
  EXPECT_EQ(text(parse_job_time("PT30S", created).value()), "2026-11-24T10:00:30Z");
  EXPECT_EQ(text(parse_job_time("P1DT2H", created).value()), "2026-11-25T12:00:00Z");
  EXPECT_EQ(text(parse_job_time("P2W", created).value()), "2026-12-08T10:00:00Z");
  EXPECT_EQ(text(parse_job_time("2026-12-09T16:09:53+00:00", created).value()),
            "2026-12-09T16:09:53Z");
  EXPECT_EQ(parse_iso8601_duration("PT0.5S").value(), 500ms);
  for (std::string_view bad : {"", "P", "PT", "P1Y", "P1M", "1 hour", "P1H", "yesterday"}) {
    EXPECT_FALSE(parse_job_time(bad, created)) << bad;
  }
}

job_definition make(std::string_view body, wall_time now) {
  bool overwrite = false;
  auto j = parse_job_request("j", body, now, overwrite);
  EXPECT_TRUE(j) << body << ": " << (j ? "" : j.error().message);
  return j.value_or(job_definition{});
}

TEST(job_occurrences, a_yearly_job_for_a_decade_in_no_time) {
  const wall_time now = at("2026-11-24T10:00:00Z");
  auto job = make(R"({"schedule":"@yearly","repeats":10})", now);
  auto sched = job_schedule::parse(job.schedule).value();
  EXPECT_EQ(text(job.first_due), "2027-01-01T00:00:00Z");
  wall_time due = job.first_due;
  std::uint64_t fired = 1;
  std::vector<std::string> seen{text(due)};
  // The simulated clock: each firing happens 2 s after its due time.
  while (auto next = next_job_occurrence(job, &sched, fired, due, due + 2s)) {
    due = *next;
    ++fired;
    seen.push_back(text(due));
  }
  ASSERT_EQ(seen.size(), 10U);
  EXPECT_EQ(seen.back(), "2036-01-01T00:00:00Z");
}

TEST(job_occurrences, every_skips_missed_intervals_and_keeps_the_phase) {
  const wall_time now = at("2026-11-24T10:00:00Z");
  auto job = make(R"({"schedule":"@every 10s","dueTime":"5s"})", now);
  auto sched = job_schedule::parse(job.schedule).value();
  EXPECT_EQ(text(job.first_due), "2026-11-24T10:00:05Z");
  // On time: the next interval.
  EXPECT_EQ(text(next_job_occurrence(job, &sched, 1, job.first_due, job.first_due + 1s)),
            "2026-11-24T10:00:15Z");
  // 35 s late (a slow app, a broker restart): no burst of catch-up firings.
  EXPECT_EQ(text(next_job_occurrence(job, &sched, 1, job.first_due, job.first_due + 35s)),
            "2026-11-24T10:00:45Z");
}

TEST(job_occurrences, one_shot_repeats_and_ttl_end_the_job) {
  const wall_time now = at("2026-11-24T10:00:00Z");
  auto once = make(R"({"dueTime":"1s","data":{"a":1}})", now);
  EXPECT_EQ(text(once.first_due), "2026-11-24T10:00:01Z");
  EXPECT_FALSE(next_job_occurrence(once, nullptr, 1, once.first_due, once.first_due));

  auto three = make(R"({"schedule":"@every 1s","dueTime":"1s","repeats":3})", now);
  auto sched = job_schedule::parse(three.schedule).value();
  auto second = next_job_occurrence(three, &sched, 1, three.first_due, three.first_due);
  ASSERT_TRUE(second);
  auto third = next_job_occurrence(three, &sched, 2, *second, *second);
  ASSERT_TRUE(third);
  EXPECT_FALSE(next_job_occurrence(three, &sched, 3, *third, *third));

  auto ttl = make(R"({"schedule":"@every 1m","ttl":"2m30s"})", now);
  auto minute = job_schedule::parse(ttl.schedule).value();
  auto n2 = next_job_occurrence(ttl, &minute, 1, ttl.first_due, ttl.first_due);
  ASSERT_TRUE(n2);
  EXPECT_EQ(text(*n2), "2026-11-24T10:02:00Z");
  EXPECT_FALSE(next_job_occurrence(ttl, &minute, 2, *n2, *n2)) << "10:03 is past the ttl";
}

TEST(job_requests, bad_input_gets_daprs_error_codes) {
  const wall_time now = at("2026-11-24T10:00:00Z");
  bool overwrite = false;
  struct bad_case {
    std::string_view name;
    std::string_view body;
    errc code;
  };
  for (const auto& c : std::initializer_list<bad_case>{
           {"", R"({"dueTime":"1s"})", errc::job_name_empty},
           {"a/b", R"({"dueTime":"1s"})", errc::job_name},
           {"a b", R"({"dueTime":"1s"})", errc::job_name},
           {"j", R"({"name":"other","dueTime":"1s"})", errc::job_name},
           {"j", "", errc::job_request_empty},
           {"j", "not json", errc::job_request_empty},
           {"j", "[1]", errc::job_request_empty},
           {"j", R"({"dueTime":"1s","data":{"n":1e400}})", errc::job_request_empty},
           {"j", R"({"data":1})", errc::job_schedule_empty},
           {"j", R"({"schedule":"every day"})", errc::job_schedule_empty},
           {"j", R"({"dueTime":"soon"})", errc::job_schedule_empty},
           {"j", R"({"dueTime":"1s","repeats":3})", errc::job_schedule_empty},
           {"j", R"({"schedule":"@daily","repeats":-1})", errc::job_request_empty},
           {"j", R"({"schedule":"@daily","repeats":"3"})", errc::job_request_empty},
           {"j", R"({"schedule":"@daily","ttl":"forever"})", errc::job_request_empty},
           {"j", R"({"schedule":"@daily","overwrite":"yes"})", errc::job_request_empty},
           {"j", R"({"schedule":"@daily","failurePolicy":{"sometimes":{}}})",
            errc::job_request_empty},
           {"j", R"({"schedule":"@daily","failurePolicy":{"constant":{"interval":"x"}}})",
            errc::job_request_empty},
           {"j", R"({"dueTime":"1h","ttl":"1m"})", errc::job_request_empty},
       }) {
    auto j = parse_job_request(c.name, c.body, now, overwrite);
    ASSERT_FALSE(j) << c.name << " " << c.body;
    EXPECT_EQ(j.error().code, c.code) << c.name << " " << c.body << ": " << j.error().message;
    EXPECT_EQ(j.error().info().http_status, 400) << c.body;
  }
}

TEST(job_requests, stored_form_round_trips_and_get_shows_what_was_given) {
  const wall_time now = at("2026-11-24T10:00:00Z");
  bool overwrite = false;
  auto j = parse_job_request(
      "report",
      R"({"data":{"value":"Running spice"},"schedule":"@every 1m","repeats":5,"overwrite":true,
          "failure_policy":{"constant":{"max_retries":2,"interval":"10s"}}})",
      now, overwrite);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_TRUE(overwrite);
  EXPECT_EQ(j->policy.max_retries, 2U);
  EXPECT_EQ(j->policy.interval, 10s);
  j->incarnation = id128{7, 9};
  auto back = decode_job_definition(encode_job_definition(*j));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->incarnation, (id128{7, 9}));
  EXPECT_EQ(back->first_due, j->first_due);
  EXPECT_EQ(back->repeats, 5U);
  EXPECT_EQ(back->policy.max_retries, 2U);
  auto got = boost::json::parse(job_to_dapr_json(*back)).as_object();
  EXPECT_EQ(got["name"].as_string(), "report");
  EXPECT_EQ(got["schedule"].as_string(), "@every 1m");
  EXPECT_EQ(got["repeats"].as_int64(), 5);
  EXPECT_EQ(got["data"].as_object()["value"].as_string(), "Running spice");
  EXPECT_EQ(got["failurePolicy"].as_object()["constant"].as_object()["maxRetries"].as_int64(), 2);
  EXPECT_FALSE(got.contains("dueTime"));
  EXPECT_FALSE(decode_job_definition("{}"));
  EXPECT_FALSE(decode_job_definition("garbage"));
}

TEST(job_ids, stable_and_distinct) {
  EXPECT_EQ(job_definition_id("app", "j"), job_definition_id("app", "j"));
  EXPECT_NE(job_definition_id("app", "j"), job_definition_id("app2", "j"));
  EXPECT_NE(job_definition_id("ap", "pj"), job_definition_id("app", "j"));
  const id128 inc{0x1234, 0x5678};
  EXPECT_NE(job_firing_id(inc, 1), job_firing_id(inc, 2));
  EXPECT_NE(job_firing_id(inc, 1), job_definition_id("app", "j"));
  EXPECT_EQ(job_definition_id("app", "j").low & 1U, 1U);
  EXPECT_EQ(job_firing_id(inc, 3).low & 1U, 0U);
  // Fixed value: the ids are stored in the broker, so they must never change.
  EXPECT_EQ(job_definition_id("app", "j").to_hex(), job_definition_id("app", "j").to_hex());
}

}  // namespace
}  // namespace outrider::sidecar
