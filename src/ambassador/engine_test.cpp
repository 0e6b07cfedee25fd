#include "ambassador/engine.h"

#include <deque>
#include <gtest/gtest.h>

namespace outrider::ambassador {
namespace {

using namespace std::chrono_literals;

// One scripted answer: a status, a transport error, or a stall (no answer
// until the attempt's own timeout, as http::client does).
struct step {
  int status = 200;
  std::optional<errc> failure;
  bool stall = false;
  nanoseconds delay{};  // answer after this long
};

// An upstream driven by the simulated clock.
class scripted_upstream final : public upstream {
 public:
  explicit scripted_upstream(simulated_clock& c) : clk_(c) {}
  std::deque<step> script;
  step fallback;  // when the script is empty
  std::vector<http::request> seen;
  std::vector<nanoseconds> timeouts;

  void send(const http::url&, const http::request& req, nanoseconds timeout,
            std::shared_ptr<receiver> to) override {
    seen.push_back(req);
    timeouts.push_back(timeout);
    step s = script.empty() ? fallback : script.front();
    if (!script.empty()) script.pop_front();
    if (s.stall) {
      clk_.call_after(timeout, [to] {
        to->on_response(
            error(errc::deadline_exceeded, "request timed out waiting for the response"));
      });
      return;
    }
    auto answer = [s, to] {
      if (s.failure) {
        to->on_response(error(*s.failure, "scripted failure"));
      } else {
        http::response r;
        r.status = s.status;
        r.body = "from upstream";
        to->on_response(std::move(r));
      }
    };
    if (s.delay > nanoseconds::zero()) {
      clk_.call_after(s.delay, answer);
    } else {
      answer();
    }
  }

 private:
  simulated_clock& clk_;
};

class engine_test : public ::testing::Test {
 protected:
  simulated_clock clk;
  xoshiro_random random{42};
  std::unique_ptr<metrics::registry> reg;
  scripted_upstream up{clk};
  std::unique_ptr<engine> eng;

  void SetUp() override { make_engine({}); }
  void make_engine(engine_options o) {
    eng.reset();
    reg = std::make_unique<metrics::registry>();
    eng = std::make_unique<engine>(clk, random, *reg, o);
  }

  static retry_policy constant_retry(std::int64_t max_retries, nanoseconds every = 100ms) {
    retry_policy p;
    p.type = retry_policy::kind::constant;
    p.duration = every;
    p.max_retries = max_retries;
    return p;
  }

  call_spec spec(target_policy policy, std::string method = "GET",
                 std::string target = "app:orders") {
    call_spec s;
    s.target = std::move(target);
    s.policy = std::move(policy);
    s.via = &up;
    s.destination = *http::url::parse("http://127.0.0.1:1/x");
    s.request.method = std::move(method);
    return s;
  }

  // Starts a call; the answer lands in the returned slot.
  std::shared_ptr<std::optional<http::response>> start(call_spec s) {
    auto slot = std::make_shared<std::optional<http::response>>();
    eng->call(std::move(s), [slot](http::response r, bool) { *slot = std::move(r); });
    return slot;
  }

  std::string metric(const std::string& line) {
    auto text = reg->expose();
    auto pos = text.find(line + " ");
    if (pos == std::string::npos) return "";
    auto end = text.find('\n', pos);
    return text.substr(pos + line.size() + 1, end - pos - line.size() - 1);
  }
};

TEST_F(engine_test, passes_the_upstream_answer_through) {
  auto r = start(spec({}));
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->status, 200);
  EXPECT_EQ((*r)->body, "from upstream");
  EXPECT_EQ(metric("outrider_ambassador_attempts_total{target=\"app:orders\"}"), "1");
}

TEST_F(engine_test, succeeds_after_transient_failures) {
  up.script = {{503}, {0, errc::unavailable}, {503}, {200}};
  target_policy p;
  p.retry = constant_retry(5);
  auto r = start(spec(p));
  EXPECT_FALSE(r->has_value());
  clk.advance(1s);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->status, 200);
  EXPECT_EQ(up.seen.size(), 4u);
  EXPECT_EQ(metric("outrider_ambassador_retries_total{target=\"app:orders\"}"), "3");
}

TEST_F(engine_test, gives_up_after_max_retries_with_the_last_answer) {
  up.fallback = {503};
  target_policy p;
  p.retry = constant_retry(2);
  auto r = start(spec(p));
  clk.advance(10s);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->status, 503);
  EXPECT_EQ((*r)->body, "from upstream");
  EXPECT_EQ(up.seen.size(), 3u);
}

TEST_F(engine_test, exponential_backoff_waits_between_attempts) {
  up.fallback = {500};
  target_policy p;
  retry_policy rp;
  rp.type = retry_policy::kind::exponential;
  rp.initial_interval = 100ms;
  rp.multiplier = 2;
  rp.randomization_factor = 0;
  rp.max_retries = 3;
  p.retry = rp;
  auto r = start(spec(p));
  EXPECT_EQ(up.seen.size(), 1u);
  clk.advance(99ms);
  EXPECT_EQ(up.seen.size(), 1u);
  clk.advance(1ms);
  EXPECT_EQ(up.seen.size(), 2u);  // +100 ms
  clk.advance(199ms);
  EXPECT_EQ(up.seen.size(), 2u);
  clk.advance(1ms);
  EXPECT_EQ(up.seen.size(), 3u);  // +200 ms
  clk.advance(400ms);
  EXPECT_EQ(up.seen.size(), 4u);  // +400 ms
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->status, 500);
}

TEST_F(engine_test, timeout_covers_every_attempt_and_answers_504) {
  up.fallback = {0, std::nullopt, true};  // every attempt stalls
  target_policy p;
  p.timeout = 2s;
  p.retry = constant_retry(-1, 10ms);
  auto r = start(spec(p));
  clk.advance(1999ms);
  EXPECT_FALSE(r->has_value());
  clk.advance(1ms);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->status, 504);
  EXPECT_NE((*r)->body.find("ERR_TIMEOUT"), std::string::npos);
  // The first attempt got the whole budget: a stalled attempt never outlives the call.
  EXPECT_EQ(up.timeouts.front(), nanoseconds(2s));
  clk.advance(10s);
  EXPECT_LE(up.seen.size(), 2u);
  EXPECT_EQ(metric("outrider_ambassador_timeouts_total{target=\"app:orders\"}"), "1");
  EXPECT_EQ(eng->calls_in_flight(), 0u);
}

TEST_F(engine_test, slow_answers_count_against_the_overall_timeout) {
  up.fallback = {503, std::nullopt, false, 400ms};
  target_policy p;
  p.timeout = 1s;
  p.retry = constant_retry(-1, 100ms);
  auto r = start(spec(p));
  clk.advance(1s);
  ASSERT_TRUE(r->has_value());
  // 400 ms + 100 ms + 400 ms: the third attempt would start at 1000 ms.
  EXPECT_EQ(up.seen.size(), 2u);
  EXPECT_TRUE((*r)->status == 503 || (*r)->status == 504);
  // Each attempt's own timeout is what is left of the call's.
  EXPECT_EQ(up.timeouts[1], nanoseconds(500ms));
}

TEST_F(engine_test, non_idempotent_requests_are_not_retried_unless_allowed) {
  up.fallback = {503};
  target_policy p;
  p.retry = constant_retry(3);
  auto r = start(spec(p, "POST"));
  clk.advance(5s);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(up.seen.size(), 1u);

  p.retry->retry_non_idempotent = true;
  r = start(spec(p, "POST"));
  clk.advance(5s);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(up.seen.size(), 5u);
}

TEST_F(engine_test, four_hundreds_are_final_by_default_and_retryable_when_listed) {
  up.fallback = {429};
  target_policy p;
  p.retry = constant_retry(2);
  auto r = start(spec(p));
  clk.advance(5s);
  EXPECT_EQ(up.seen.size(), 1u);
  p.retry->retry_on = {{429, 429}};
  r = start(spec(p));
  clk.advance(5s);
  EXPECT_EQ(up.seen.size(), 4u);
  EXPECT_EQ((*r)->status, 429);
}

TEST_F(engine_test, circuit_opens_answers_503_fast_then_half_opens) {
  up.fallback = {500};
  target_policy p;
  breaker_policy b;
  b.trip.threshold = 2;  // consecutiveFailures > 2
  b.timeout = 30s;
  p.breaker = b;
  for (int i = 0; i < 3; ++i) {
    auto r = start(spec(p));
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->status, 500);
  }
  EXPECT_EQ(eng->circuit_state("app:orders"), circuit_breaker::state::open);
  EXPECT_EQ(metric("outrider_ambassador_circuit_state{target=\"app:orders\"}"), "1");
  clk.advance(10s);
  auto fast = start(spec(p));
  ASSERT_TRUE(fast->has_value());
  EXPECT_EQ((*fast)->status, 503);
  EXPECT_NE((*fast)->body.find("ERR_CIRCUIT_OPEN"), std::string::npos);
  EXPECT_EQ((*fast)->headers.get("Retry-After"), "20");
  EXPECT_EQ(up.seen.size(), 3u);  // never reached the upstream

  clk.advance(20s);
  EXPECT_EQ(eng->circuit_state("app:orders"), circuit_breaker::state::half_open);
  up.fallback = {200, std::nullopt, false, 50ms};
  auto probe = start(spec(p));
  auto second = start(spec(p));  // while the one probe is out
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->status, 503);
  clk.advance(50ms);
  ASSERT_TRUE(probe->has_value());
  EXPECT_EQ((*probe)->status, 200);
  EXPECT_EQ(eng->circuit_state("app:orders"), circuit_breaker::state::closed);
  EXPECT_EQ(metric("outrider_ambassador_circuit_opened_total{target=\"app:orders\"}"), "1");
}

TEST_F(engine_test, retry_budget_caps_retries_across_calls) {
  engine_options o;
  o.budget = {20.0, 2};
  make_engine(o);
  up.fallback = {503, std::nullopt, false, 10ms};
  target_policy p;
  p.retry = constant_retry(3, 100ms);
  std::vector<std::shared_ptr<std::optional<http::response>>> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(start(spec(p)));
  clk.advance(5s);
  for (auto& c : calls) ASSERT_TRUE(c->has_value());
  // 5 first attempts; only 2 calls (max(2, 20% of 5)) may retry, 3 times each.
  EXPECT_EQ(up.seen.size(), 5u + 2u * 3u);
  EXPECT_EQ(metric("outrider_ambassador_retry_budget_exhausted_total{target=\"app:orders\"}"), "3");
}

// Engines of different I/O contexts share one target table: a circuit opened
// by one engine's calls is open for the other's, the retry budget counts both
// engines' calls, and metrics are declared once.
TEST_F(engine_test, engines_sharing_a_target_table_share_breakers_and_budgets) {
  reg = std::make_unique<metrics::registry>();
  auto table = std::make_shared<target_table>(*reg, budget_policy{20.0, 1});
  eng = std::make_unique<engine>(clk, random, table);
  engine other(clk, random, table);
  up.fallback = {500};
  target_policy p;
  breaker_policy b;
  b.trip.threshold = 1;  // consecutiveFailures > 1
  b.timeout = 30s;
  p.breaker = b;
  start(spec(p));
  other.call(spec(p), [](http::response, bool) {});
  EXPECT_EQ(up.seen.size(), 2u);
  EXPECT_EQ(other.circuit_state("app:orders"), circuit_breaker::state::open);
  auto fast = start(spec(p));
  ASSERT_TRUE(fast->has_value());
  EXPECT_EQ((*fast)->status, 503);
  EXPECT_EQ(up.seen.size(), 2u);
  EXPECT_EQ(metric("outrider_ambassador_attempts_total{target=\"app:orders\"}"), "2");

  // Budget: one retry slot (min 1, 20% of 2 calls) over both engines.
  up.fallback = {503, std::nullopt, false, 10ms};
  up.seen.clear();
  target_policy r;
  r.retry = constant_retry(2, 100ms);
  auto first = start(spec(r, "GET", "app:budget"));
  std::optional<http::response> second;
  other.call(spec(r, "GET", "app:budget"),
             [&second](http::response resp, bool) { second = std::move(resp); });
  EXPECT_EQ(table->calls_in_flight(), 2u);
  clk.advance(5s);
  ASSERT_TRUE(first->has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(up.seen.size(), 2u + 2u);  // only one of the two calls retried (twice)
  EXPECT_EQ(metric("outrider_ambassador_retry_budget_exhausted_total{target=\"app:budget\"}"), "1");
  EXPECT_EQ(table->calls_in_flight(), 0u);
}

TEST_F(engine_test, transport_errors_map_to_catalog_statuses) {
  up.script = {{0, errc::unavailable}, {0, errc::upstream_error}};
  auto r = start(spec({}));
  EXPECT_EQ((*r)->status, 503);
  r = start(spec({}));
  EXPECT_EQ((*r)->status, 502);
}

class header_observer final : public call_observer {
 public:
  int before = 0;
  int after = 0;
  void before_attempt(const attempt_info& info, http::request& req) override {
    ++before;
    req.headers.set("x-attempt", std::to_string(info.attempt));
  }
  void after_attempt(const attempt_info&, const result<http::response>&) override { ++after; }
};

TEST_F(engine_test, observer_sees_every_attempt_and_may_add_headers) {
  auto obs = std::make_shared<header_observer>();
  eng->set_observer(obs);
  up.script = {{503}, {200}};
  target_policy p;
  p.retry = constant_retry(3);
  auto r = start(spec(p));
  clk.advance(1s);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(obs->before, 2);
  EXPECT_EQ(obs->after, 2);
  EXPECT_EQ(up.seen[1].headers.get("x-attempt"), "2");
}

}  // namespace
}  // namespace outrider::ambassador
