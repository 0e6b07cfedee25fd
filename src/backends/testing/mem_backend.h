// mem_backend: an in-memory backend with the full semantics of backend.h
// (fan-out per app id, competing consumers, leases, retry-after, attempt
// limits, dead letters, delayed delivery with cancel, release). It is the
// test double of the sidecar tests and the reference implementation for the
// backend conformance suite. Not durable: "held durably" means "held in this
// object", so it is not registered as a production backend.
//
// Time: the backend's clock is the system clock plus an offset that tests move
// with advance_for_test(), so a 7-day delay, a retry backoff or a lease expiry
// comes due at once without sleeping, while real-time waits (short backoffs
// in whole-sidecar tests) still elapse on their own.
//
// Threading: thread-safe. One worker thread moves due messages and hands out
// deliveries (on_delivery runs there, one at a time, never inside a caller's
// call). `done` callbacks run on the calling thread before the call returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "backends/backend.h"

namespace outrider::backends {

struct mem_backend_options {
  nanoseconds default_lease = std::chrono::seconds(30);
};

class mem_backend final : public backend {
 public:
  explicit mem_backend(mem_backend_options options = {});
  ~mem_backend() override;  // close()
  mem_backend(const mem_backend&) = delete;
  mem_backend& operator=(const mem_backend&) = delete;

  std::string_view type() const override { return "mem"; }
  void publish(std::vector<message> batch,
               callback<result<std::vector<publish_outcome>>> done) override;
  void cancel_scheduled(const id128& id, callback<status> done) override;
  void subscribe(subscription_spec spec, delivery_fn on_delivery,
                 callback<result<subscription_handle>> done) override;
  void unsubscribe(subscription_handle handle, callback<status> done) override;
  void settle(const settle_handle& handle, settle_action action, callback<status> done) override;
  void health(callback<status> done) override;
  void close() override;

  // The backend's current time (system clock + the test offset).
  wall_time now() const;

  // ---- test hooks ----
  // Moves the backend's time forward by `d`; what comes due is handled at once.
  void advance_for_test(nanoseconds d);
  // health() answers unavailable and publishes fail with unavailable while false.
  void set_healthy_for_test(bool healthy);
  // Called for each message of a publish; a non-ok status refuses that message.
  void set_publish_filter_for_test(std::function<status(const message&)> filter);
  // Every message stored by publish() for `topic`, in order (ids assigned).
  std::vector<message> published_for_test(std::string_view topic) const;
  // Dead letters of the subscription (topic, app id), in order.
  std::vector<message> dead_letters_for_test(std::string_view topic, std::string_view app_id) const;
  // Messages of the subscription not yet acked or dead-lettered (ready, leased, waiting).
  std::size_t pending_for_test(std::string_view topic, std::string_view app_id) const;
  // Unsettled deliveries across all consumers.
  std::size_t leased_for_test() const;
  std::size_t scheduled_for_test() const;

 private:
  struct stored {
    message msg;
    wall_time published_at;
  };
  struct entry {
    std::shared_ptr<const stored> data;
    std::uint32_t failed = 0;
  };
  struct group;
  struct consumer {
    subscription_handle id = 0;
    group* owner = nullptr;
    delivery_fn on_delivery;
    std::uint32_t prefetch = 1;
    std::uint32_t unsettled = 0;
  };
  struct lease {
    entry item;
    group* owner = nullptr;
    subscription_handle consumer_id = 0;
    wall_time expires;
  };
  struct group {
    std::string topic;
    std::string app_id;
    std::uint32_t max_attempts = 0;
    nanoseconds lease_duration{};
    std::deque<entry> ready;
    std::multimap<wall_time, entry> waiting;  // retry_after backoff
    std::vector<std::shared_ptr<const stored>> dead;
    std::vector<subscription_handle> consumers;
    std::size_t next_consumer = 0;
    std::size_t leased = 0;
  };
  struct pending_delivery {
    delivery_fn fn;
    delivery d;
  };

  wall_time now_locked() const;
  void run();
  // Moves due scheduled/waiting/expired entries; collects deliveries to hand out.
  void step_locked(wall_time now, std::vector<pending_delivery>& out);
  wall_time next_due_locked() const;
  void fan_out_locked(const std::shared_ptr<const stored>& s);
  void fail_locked(group& g, entry e, wall_time now, nanoseconds delay);
  void dead_letter_locked(group& g, const entry& e);
  void release_consumer_locked(consumer& c);
  group* find_group_locked(std::string_view topic, std::string_view app_id) const;

  mem_backend_options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  nanoseconds offset_{};
  bool closed_ = false;
  bool healthy_ = true;
  std::function<status(const message&)> filter_;

  std::map<std::pair<std::string, std::string>, std::unique_ptr<group>> groups_;
  std::map<std::string, std::vector<group*>, std::less<>> topics_;
  std::unordered_map<id128, std::shared_ptr<const stored>> scheduled_;
  std::multimap<wall_time, id128> scheduled_due_;
  std::unordered_map<id128, std::size_t> live_ids_;  // copies pending in groups
  std::map<subscription_handle, consumer> consumers_;
  std::unordered_map<std::uint64_t, lease> leases_;
  std::map<std::string, std::vector<message>, std::less<>> published_;
  subscription_handle next_consumer_id_ = 1;
  std::uint64_t next_token_ = 1;
  std::thread worker_;
};

}  // namespace outrider::backends
