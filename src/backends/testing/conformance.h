// conformance: the backend conformance suite. Every backend runs the same
// value-parameterised tests (conformance_suite.cpp) against the semantics of
// backend.h: fan-out per app id, competing consumers, stable ids and headers,
// retry-after without blocking others, attempt limits and dead letters,
// release, lease expiry, prefetch, delayed delivery with cancel, health and
// close.
//
// A test binary links conformance_suite.cpp and instantiates the suite with
// one `target` per backend:
//
//   INSTANTIATE_TEST_SUITE_P(mem, backend_conformance,
//                            ::testing::Values(conformance::mem_target()),
//                            conformance::target_name);
//
// Time: tests move time with target::advance. A backend with a virtual clock
// (mem_backend) jumps; one on real time (a broker process) sleeps, so delays
// in the suite are short (hundreds of milliseconds) and every wait for a
// delivery has a generous timeout.
//
// Topics are unique per test (the test name plus a counter), so one broker
// can serve the whole suite.
#pragma once

#include <chrono>
#include <functional>
#include <gtest/gtest.h>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"

namespace outrider::backends::conformance {

struct target {
  std::string name;
  // A fresh backend, connected to whatever the target runs against.
  std::function<std::shared_ptr<backend>()> make;
  // Moves the backend's time forward by `d` (virtual clock) or sleeps `d`.
  std::function<void(backend&, nanoseconds)> advance;
  // The backend's current time (for deliver_at).
  std::function<wall_time(backend&)> now;
  // Bodies of the messages in the dead-letter store of (topic, app id), in order.
  std::function<std::vector<std::string>(backend&, const std::string& topic,
                                         const std::string& app_id)>
      dead_letter_bodies;
  // Shortest lease the backend honours precisely (the lease-expiry test uses it).
  nanoseconds short_lease = std::chrono::seconds(1);
};

std::string target_name(const ::testing::TestParamInfo<target>& info);
// GoogleTest prints a target by its name.
void PrintTo(const target& t, std::ostream* os);

// Collects deliveries (they arrive on a backend thread), each stamped with `clock` (the
// backend's time: it must be callable from the backend's delivery thread). What fn() collects
// into outlives the sink: a delivery may still arrive after a test's sink is gone (the backend
// is closed in TearDown).
class sink {
 public:
  sink() = default;
  explicit sink(std::function<wall_time()> clock) { state_->clock = std::move(clock); }
  backend::delivery_fn fn();
  // True once at least `n` deliveries arrived within `timeout`.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::size_t size();
  delivery at(std::size_t i);
  // When delivery i arrived, by the sink's clock.
  wall_time received_at(std::size_t i);

 private:
  struct state {
    std::function<wall_time()> clock = [] { return std::chrono::system_clock::now(); };
    std::mutex mutex;
    std::vector<delivery> got;
    std::vector<wall_time> received_at;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

class backend_conformance : public ::testing::TestWithParam<target> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A topic name unique to this test ("<test>.<suffix>.<n>").
  std::string topic(const std::string& suffix = "t");

  // Synchronous wrappers (fail the test on errors where noted).
  subscription_handle subscribe(subscription_spec spec, sink& s);
  std::vector<publish_outcome> publish(std::vector<message> batch);
  status settle(const delivery& d, settle_action a);
  status cancel(const id128& id);
  status unsubscribe(subscription_handle h);
  status health();
  void advance(nanoseconds d) { GetParam().advance(*backend_, d); }
  wall_time now() { return GetParam().now(*backend_); }

  std::shared_ptr<backend> backend_;
  int topics_ = 0;
};

}  // namespace outrider::backends::conformance
