// The backend conformance suite (conformance.h): the rules of backend.h, one
// test each, run against every backend the binary instantiates it for.
#include <algorithm>
#include <future>
#include <set>

#include "backends/testing/conformance.h"

namespace outrider::backends::conformance {

using namespace std::chrono_literals;

namespace {

// Longest a synchronous wrapper waits for a callback.
constexpr auto call_timeout = 10s;
// How long "nothing arrives" is watched for (well below every delay used).
constexpr auto quiet_period = 150ms;
// A delay long enough to observe "not before" on real time, short enough to
// keep the suite fast.
constexpr nanoseconds retry_delay = 600ms;
constexpr nanoseconds schedule_delay = 1200ms;
constexpr nanoseconds schedule_margin = 500ms;

template <class T, class Call>
T call(Call c, T on_timeout) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  c([p](T v) { p->set_value(std::move(v)); });
  if (f.wait_for(call_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "backend call did not complete";
    return on_timeout;
  }
  return f.get();
}

message msg(const std::string& topic, std::string body, header_list headers = {}) {
  return message{topic, {}, std::move(headers), std::move(body), {}};
}

}  // namespace

std::string target_name(const ::testing::TestParamInfo<target>& info) {
  return info.param.name;
}

void PrintTo(const target& t, std::ostream* os) {
  *os << t.name;
}

backend::delivery_fn sink::fn() {
  return [st = state_](delivery d) {
    const wall_time arrived = st->clock();
    std::lock_guard lock(st->mutex);
    st->got.push_back(std::move(d));
    st->received_at.push_back(arrived);
  };
}

bool sink::wait_for(std::size_t n, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (size() >= n) return true;
    std::this_thread::sleep_for(1ms);
  }
  return size() >= n;
}

std::size_t sink::size() {
  std::lock_guard lock(state_->mutex);
  return state_->got.size();
}

delivery sink::at(std::size_t i) {
  std::lock_guard lock(state_->mutex);
  return state_->got.at(i);
}

wall_time sink::received_at(std::size_t i) {
  std::lock_guard lock(state_->mutex);
  return state_->received_at.at(i);
}

void backend_conformance::SetUp() {
  backend_ = GetParam().make();
  ASSERT_NE(backend_, nullptr);
}

void backend_conformance::TearDown() {
  if (backend_) backend_->close();
}

std::string backend_conformance::topic(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info->name();
  std::replace(name.begin(), name.end(), '/', '-');
  return name + "." + suffix + "." + std::to_string(++topics_);
}

subscription_handle backend_conformance::subscribe(subscription_spec spec, sink& s) {
  auto r = call<result<subscription_handle>>(
      [&](auto done) { backend_->subscribe(std::move(spec), s.fn(), done); },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.value_or(0);
}

std::vector<publish_outcome> backend_conformance::publish(std::vector<message> batch) {
  const std::size_t n = batch.size();
  auto r = call<result<std::vector<publish_outcome>>>(
      [&](auto done) { backend_->publish(std::move(batch), done); },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r) return {};
  EXPECT_EQ(r->size(), n);
  return std::move(*r);
}

status backend_conformance::settle(const delivery& d, settle_action a) {
  return call<status>([&](auto done) { backend_->settle(d.handle, a, done); },
                      error(errc::deadline_exceeded, "timeout"));
}

status backend_conformance::cancel(const id128& id) {
  return call<status>([&](auto done) { backend_->cancel_scheduled(id, done); },
                      error(errc::deadline_exceeded, "timeout"));
}

status backend_conformance::unsubscribe(subscription_handle h) {
  return call<status>([&](auto done) { backend_->unsubscribe(h, done); },
                      error(errc::deadline_exceeded, "timeout"));
}

status backend_conformance::health() {
  return call<status>([&](auto done) { backend_->health(done); },
                      error(errc::deadline_exceeded, "timeout"));
}

TEST_P(backend_conformance, fans_out_per_app_id_and_competes_within_one) {
  const std::string t = topic();
  sink a1, a2, other;
  subscribe({t, "app-a", 0, {}, 10}, a1);
  subscribe({t, "app-a", 0, {}, 10}, a2);
  subscribe({t, "app-b", 0, {}, 10}, other);
  std::vector<message> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(msg(t, "m" + std::to_string(i), {{"k", std::to_string(i)}}));
  }
  auto out = publish(batch);
  ASSERT_EQ(out.size(), 4U);
  for (auto& o : out) {
    EXPECT_TRUE(o.outcome.ok());
    EXPECT_FALSE(o.id.is_zero());
  }
  ASSERT_TRUE(other.wait_for(4));
  ASSERT_TRUE(a1.wait_for(1));
  ASSERT_TRUE(a2.wait_for(1));  // both competing consumers get work
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(a1.size() + a2.size(), 4U);  // each message once per app id
  std::set<id128> seen;
  for (std::size_t i = 0; i < a1.size(); ++i) seen.insert(a1.at(i).id);
  for (std::size_t i = 0; i < a2.size(); ++i) seen.insert(a2.at(i).id);
  EXPECT_EQ(seen.size(), 4U);
  EXPECT_EQ(other.size(), 4U);
  EXPECT_EQ(other.at(0).id, out[0].id);
  EXPECT_EQ(other.at(0).body, "m0");
  EXPECT_EQ(other.at(0).topic, t);
  EXPECT_EQ(other.at(0).attempt, 1U);
}

TEST_P(backend_conformance, headers_ids_and_bodies_travel_unchanged) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 10}, s);
  const id128 id{0x0123456789abcdefULL, 0x42};
  const std::string binary_body("\x00\x01\xff{\"x\":1}", 10);
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto out = publish({message{
      t, id, {{"traceparent", traceparent}, {"content-type", "text/x"}}, binary_body, {}}});
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].id, id);
  ASSERT_TRUE(s.wait_for(1));
  const delivery d = s.at(0);
  EXPECT_EQ(d.id, id);
  EXPECT_EQ(d.body, binary_body);
  ASSERT_NE(find_header(d.headers, "traceparent"), nullptr);
  EXPECT_EQ(*find_header(d.headers, "TraceParent"), traceparent);
  ASSERT_NE(find_header(d.headers, "content-type"), nullptr);
  EXPECT_EQ(*find_header(d.headers, "content-type"), "text/x");
  EXPECT_NE(d.published_at, wall_time{});
  // A redelivery carries the same id.
  EXPECT_TRUE(settle(d, settle_action::retry_after({})).ok());
  ASSERT_TRUE(s.wait_for(2));
  EXPECT_EQ(s.at(1).id, id);
  EXPECT_EQ(s.at(1).attempt, 2U);
}

TEST_P(backend_conformance, publishing_to_a_topic_without_subscribers_succeeds) {
  auto out = publish({msg(topic("nobody"), "lost-to-nobody")});
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].outcome.ok());
}

TEST_P(backend_conformance, subscription_is_durable_across_unsubscribe) {
  const std::string t = topic();
  sink first;
  auto h = subscribe({t, "a", 0, {}, 10}, first);
  EXPECT_TRUE(unsubscribe(h).ok());
  EXPECT_EQ(unsubscribe(h).error().code, errc::consumer_not_found);
  publish({msg(t, "while-away")});
  sink second;
  subscribe({t, "a", 0, {}, 10}, second);
  ASSERT_TRUE(second.wait_for(1));
  EXPECT_EQ(second.at(0).body, "while-away");
  EXPECT_EQ(first.size(), 0U);
}

TEST_P(backend_conformance, duplicate_pending_id_is_refused) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 1}, s);
  const id128 id{1, 2};
  auto first = publish({message{t, id, {}, "x", {}}});
  auto second = publish({message{t, id, {}, "y", {}}});
  ASSERT_EQ(first.size(), 1U);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_TRUE(first[0].outcome.ok());
  ASSERT_FALSE(second[0].outcome.ok());
  EXPECT_EQ(second[0].outcome.error().code, errc::already_exists);
}

TEST_P(backend_conformance, retry_after_waits_and_counts_attempts_then_dead_letters) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 3, {}, 5}, s);
  publish({msg(t, "poison"), msg(t, "fine")});
  ASSERT_TRUE(s.wait_for(2));
  const delivery poison = s.at(0).body == "poison" ? s.at(0) : s.at(1);
  const delivery fine = s.at(0).body == "poison" ? s.at(1) : s.at(0);
  EXPECT_TRUE(settle(fine, settle_action::ack()).ok());  // the other one is not blocked
  EXPECT_TRUE(settle(poison, settle_action::retry_after(retry_delay)).ok());
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 2U);  // not before the delay
  advance(retry_delay);
  ASSERT_TRUE(s.wait_for(3));
  EXPECT_EQ(s.at(2).attempt, 2U);
  EXPECT_EQ(s.at(2).id, poison.id);
  EXPECT_TRUE(settle(s.at(2), settle_action::retry_after(retry_delay)).ok());
  advance(retry_delay);
  ASSERT_TRUE(s.wait_for(4));
  EXPECT_EQ(s.at(3).attempt, 3U);
  EXPECT_TRUE(settle(s.at(3), settle_action::retry_after(retry_delay)).ok());  // third failure
  std::vector<std::string> dead;
  for (int i = 0; i < 100 && dead.empty(); ++i) {
    dead = GetParam().dead_letter_bodies(*backend_, t, "a");
    if (dead.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0], "poison");
  EXPECT_EQ(settle(s.at(3), settle_action::ack()).error().code, errc::delivery_not_found);
  advance(retry_delay);
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 4U);
}

TEST_P(backend_conformance, dead_letter_moves_the_message_at_once) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 10, {}, 5}, s);
  publish({msg(t, "unprocessable")});
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_TRUE(settle(s.at(0), settle_action::dead_letter()).ok());
  std::vector<std::string> dead;
  for (int i = 0; i < 100 && dead.empty(); ++i) {
    dead = GetParam().dead_letter_bodies(*backend_, t, "a");
    if (dead.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0], "unprocessable");
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 1U);
}

TEST_P(backend_conformance, settling_twice_fails_with_delivery_not_found) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 5}, s);
  publish({msg(t, "x")});
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_TRUE(settle(s.at(0), settle_action::ack()).ok());
  EXPECT_EQ(settle(s.at(0), settle_action::ack()).error().code, errc::delivery_not_found);
  EXPECT_EQ(settle(s.at(0), settle_action::release()).error().code, errc::delivery_not_found);
}

TEST_P(backend_conformance, release_redelivers_without_counting_an_attempt) {
  const std::string t = topic();
  sink s;
  auto h = subscribe({t, "a", 2, {}, 1}, s);
  publish({msg(t, "x")});
  ASSERT_TRUE(s.wait_for(1));
  // More releases than max_attempts: never dead-lettered.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(settle(s.at(i), settle_action::release()).ok());
    ASSERT_TRUE(s.wait_for(i + 2));
    EXPECT_EQ(s.at(i + 1).attempt, 1U);
  }
  // Unsubscribing releases unsettled deliveries to the next consumer.
  sink other;
  EXPECT_TRUE(unsubscribe(h).ok());
  subscribe({t, "a", 2, {}, 1}, other);
  ASSERT_TRUE(other.wait_for(1));
  EXPECT_EQ(other.at(0).attempt, 1U);
  EXPECT_EQ(other.at(0).body, "x");
}

TEST_P(backend_conformance, lease_expiry_redelivers_as_a_failed_attempt) {
  const std::string t = topic();
  const nanoseconds lease = GetParam().short_lease;
  sink s;
  subscribe({t, "a", 0, lease, 1}, s);
  publish({msg(t, "x")});
  ASSERT_TRUE(s.wait_for(1));
  advance(lease + lease / 2);
  // Too late: the message is or will be redelivered. (Settling also frees the
  // consumer's prefetch slot, which a credit-based backend needs to deliver it
  // again to this consumer.)
  EXPECT_EQ(settle(s.at(0), settle_action::ack()).error().code, errc::delivery_not_found);
  ASSERT_TRUE(s.wait_for(2));
  EXPECT_EQ(s.at(1).attempt, 2U);
  EXPECT_EQ(s.at(1).body, "x");
  EXPECT_TRUE(settle(s.at(1), settle_action::ack()).ok());
}

TEST_P(backend_conformance, prefetch_bounds_unsettled_deliveries) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 2}, s);
  publish({msg(t, "1"), msg(t, "2"), msg(t, "3")});
  ASSERT_TRUE(s.wait_for(2));
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 2U);
  EXPECT_TRUE(settle(s.at(0), settle_action::ack()).ok());
  ASSERT_TRUE(s.wait_for(3));
  EXPECT_EQ(s.at(2).body, "3");
}

TEST_P(backend_conformance, delayed_delivery_never_early_and_cancellable) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 10}, s);
  const wall_time start = now();
  auto out = publish({message{t, {}, {}, "later", start + schedule_delay},
                      message{t, {}, {}, "cancelled", start + schedule_delay}});
  ASSERT_EQ(out.size(), 2U);
  EXPECT_TRUE(cancel(out[1].id).ok());
  EXPECT_EQ(cancel(out[1].id).error().code, errc::message_not_found);
  EXPECT_EQ(cancel(id128{7, 7}).error().code, errc::message_not_found);
  advance(schedule_delay - schedule_margin);
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 0U);  // never early
  advance(schedule_margin);
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_EQ(s.at(0).body, "later");
  EXPECT_EQ(s.at(0).id, out[0].id);
  EXPECT_EQ(cancel(out[0].id).error().code, errc::message_not_scheduled);
  std::this_thread::sleep_for(quiet_period);
  EXPECT_EQ(s.size(), 1U);
}

// Due times with sub-millisecond parts: a backend that rounds a deliver_at down to whole
// milliseconds (the rabbitmq backend did) delivers up to a millisecond early.
TEST_P(backend_conformance,
       a_delayed_message_is_never_delivered_before_its_deliver_at_to_the_microsecond) {
  const std::string t = topic();
  sink s([this] { return now(); });
  subscribe({t, "a", 0, {}, 100}, s);
  constexpr int count = 20;
  const wall_time start = now();
  std::vector<message> batch;
  std::vector<wall_time> due;
  for (int i = 0; i < count; ++i) {
    // 1 µs to 951 µs past start + schedule_delay, never on a millisecond of its own.
    due.push_back(start + schedule_delay + std::chrono::microseconds(1 + 50 * i));
    batch.push_back(message{t, {}, {}, std::to_string(i), due.back()});
  }
  ASSERT_EQ(publish(std::move(batch)).size(), static_cast<std::size_t>(count));
  advance(schedule_delay);
  ASSERT_TRUE(s.wait_for(count));
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto n = static_cast<std::size_t>(std::stoi(s.at(i).body));
    ASSERT_LT(n, due.size());
    EXPECT_GE(s.received_at(i), due[n])
        << "message " << n << " arrived "
        << std::chrono::duration_cast<std::chrono::microseconds>(due[n] - s.received_at(i)).count()
        << " µs early";
  }
}

TEST_P(backend_conformance, a_past_deliver_at_delivers_at_once) {
  const std::string t = topic();
  sink s;
  subscribe({t, "a", 0, {}, 10}, s);
  publish({message{t, {}, {}, "overdue", now() - std::chrono::hours(1)}});
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_EQ(s.at(0).body, "overdue");
}

TEST_P(backend_conformance, bad_arguments_are_refused) {
  sink s;
  auto r = call<result<subscription_handle>>(
      [&](auto done) {
        backend_->subscribe({"", "a", 0, {}, 1}, s.fn(), done);
      },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  r = call<result<subscription_handle>>(
      [&](auto done) {
        backend_->subscribe({topic(), "", 0, {}, 1}, s.fn(), done);
      },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  r = call<result<subscription_handle>>(
      [&](auto done) {
        backend_->subscribe({topic(), "a", 0, {}, 0}, s.fn(), done);
      },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  auto p = call<result<std::vector<publish_outcome>>>(
      [&](auto done) { backend_->publish({}, done); }, error(errc::deadline_exceeded, "timeout"));
  EXPECT_EQ(p.error().code, errc::invalid_argument);
}

TEST_P(backend_conformance, health_is_ok_and_close_refuses_further_calls) {
  EXPECT_TRUE(health().ok());
  backend_->close();
  backend_->close();  // idempotent
  EXPECT_EQ(health().error().code, errc::shutting_down);
  auto p = call<result<std::vector<publish_outcome>>>(
      [&](auto done) { backend_->publish({msg(topic(), "x")}, done); },
      error(errc::deadline_exceeded, "timeout"));
  EXPECT_EQ(p.error().code, errc::shutting_down);
}

}  // namespace outrider::backends::conformance
