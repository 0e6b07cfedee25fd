// fake_service: an in-memory broker::service for protocol server and client
// tests (test code only; no durability, no timers). Thread-safe (one mutex).
//
// Publish completions run at once, or, with hold_publishes(true), wait until
// release_publishes() so tests can keep batches "awaiting durability".
// Deliveries respect each subscription's credit; max_outstanding() records the
// most unacknowledged deliveries a subscription ever had.
#pragma once

#include <deque>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <set>

#include "broker/service.h"

namespace outrider::broker {

class fake_service final : public service {
 public:
  static constexpr std::size_t max_body = 1024;

  void hold_publishes(bool hold) {
    std::lock_guard lock(mutex_);
    hold_ = hold;
  }
  // Completes held publishes in arrival order; returns how many.
  std::size_t release_publishes() {
    std::deque<std::function<void()>> ready;
    {
      std::lock_guard lock(mutex_);
      ready.swap(held_);
    }
    for (auto& fn : ready) fn();
    return ready.size();
  }
  std::size_t held_publishes() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  std::size_t max_outstanding() {
    std::lock_guard lock(mutex_);
    return max_outstanding_;
  }
  // ack() calls so far, and deliveries acked by them.
  std::pair<std::size_t, std::size_t> acks() {
    std::lock_guard lock(mutex_);
    return {ack_calls_, acked_};
  }
  std::size_t subscriptions() {
    std::lock_guard lock(mutex_);
    return subs_.size();
  }

  void publish(std::shared_ptr<const bc::publish_batch> batch,
               completion<std::vector<bc::publish_result>> done) override {
    std::vector<bc::publish_result> results;
    results.reserve(batch->messages.size());
    std::unique_lock lock(mutex_);
    for (const auto& m : batch->messages) {
      bc::publish_result r;
      r.id = m.id.is_zero() ? id128{0, ++next_id_} : m.id;
      auto q = queues_.find(std::string(m.destination));
      if (q == queues_.end()) {
        r.outcome =
            error(errc::queue_not_found, fmt::format("queue '{}' not found", m.destination));
      } else if (m.body.size() > max_body) {
        r.outcome = error(errc::message_too_large, "body too large");
      } else {
        bc::delivery d;
        d.id = r.id;
        d.body = std::string(m.body);
        for (const auto& h : batch->headers_of(m)) d.headers.emplace_back(h.name, h.value);
        d.deliver_at = m.deliver_at;
        d.published_at = wall_time(std::chrono::seconds(1));
        if (m.deliver_at != wall_time{}) {
          scheduled_[r.id] = {q->first, std::move(d)};
        } else {
          q->second.ready.push_back(std::move(d));
        }
        ++published_;
      }
      results.push_back(std::move(r));
    }
    dispatch_locked();
    if (hold_) {
      held_.push_back([done = std::move(done), results = std::move(results)]() { done(results); });
      return;
    }
    lock.unlock();
    done(std::move(results));
  }

  void subscribe(const bc::subscribe_request& request, std::shared_ptr<delivery_sink> sink,
                 completion<result<bc::subscription_id>> done) override {
    std::unique_lock lock(mutex_);
    if (!queues_.contains(request.queue)) {
      lock.unlock();
      return done(error(errc::queue_not_found, "no such queue"));
    }
    const auto id = next_sub_++;
    subs_[id] = sub_state{request.queue, std::move(sink), request.credit, 0};
    lock.unlock();
    done(id);
    lock.lock();
    dispatch_locked();
  }

  void unsubscribe(bc::subscription_id subscription, completion<status> done) override {
    std::unique_lock lock(mutex_);
    if (subs_.erase(subscription) == 0) {
      lock.unlock();
      return done(error(errc::consumer_not_found, "no such subscription"));
    }
    for (auto it = leased_.begin(); it != leased_.end();) {
      if (it->second.sub == subscription) {
        queues_[it->second.queue].ready.push_front(std::move(it->second.d));
        it = leased_.erase(it);
      } else {
        ++it;
      }
    }
    dispatch_locked();
    lock.unlock();
    done({});
  }

  void add_credit(bc::subscription_id subscription, std::uint32_t credit,
                  completion<status> done) override {
    std::unique_lock lock(mutex_);
    auto it = subs_.find(subscription);
    if (it == subs_.end()) {
      lock.unlock();
      return done(error(errc::consumer_not_found, "no such subscription"));
    }
    it->second.credit += credit;
    dispatch_locked();
    lock.unlock();
    done({});
  }

  void ack(std::vector<bc::delivery_tag> tags,
           completion<std::vector<bc::settle_failure>> done) override {
    std::vector<bc::settle_failure> failures;
    std::unique_lock lock(mutex_);
    ++ack_calls_;
    for (auto tag : tags) {
      auto it = leased_.find(tag);
      if (it == leased_.end()) {
        failures.push_back({tag, error(errc::delivery_not_found, "unknown tag")});
        continue;
      }
      release_locked(it->second.sub);
      leased_.erase(it);
      ++acked_;
    }
    dispatch_locked();
    lock.unlock();
    done(std::move(failures));
  }

  void nack(std::vector<bc::nack_entry> entries,
            completion<std::vector<bc::settle_failure>> done) override {
    std::vector<bc::settle_failure> failures;
    std::unique_lock lock(mutex_);
    for (const auto& e : entries) {
      auto it = leased_.find(e.tag);
      if (it == leased_.end()) {
        failures.push_back({e.tag, error(errc::delivery_not_found, "unknown tag")});
        continue;
      }
      release_locked(it->second.sub);
      auto d = std::move(it->second.d);
      const auto queue = it->second.queue;
      leased_.erase(it);
      d.attempt += 1;
      if (e.dead_letter) {
        queues_[queue + ".dlq"].ready.push_back(std::move(d));
        queues_[queue + ".dlq"].origin = queue;
      } else {
        queues_[queue].ready.push_back(std::move(d));
      }
    }
    dispatch_locked();
    lock.unlock();
    done(std::move(failures));
  }

  void cancel_scheduled(const id128& id, completion<status> done) override {
    std::unique_lock lock(mutex_);
    const bool found = scheduled_.erase(id) > 0;
    lock.unlock();
    done(found ? status{} : status(error(errc::message_not_found, "no scheduled message")));
  }

  void declare(const bc::declare_request& request, completion<status> done) override {
    std::unique_lock lock(mutex_);
    if (request.name.empty()) {
      lock.unlock();
      return done(error(errc::invalid_argument, "empty name"));
    }
    if (request.kind == bc::wire::declare_kind::queue) {
      queues_[request.name];
      queues_[request.name + ".dlq"].origin = request.name;
    } else if (request.kind == bc::wire::declare_kind::topic) {
      topics_.insert(request.name);
    } else if (!topics_.contains(request.name)) {
      lock.unlock();
      return done(error(errc::topic_not_found, "no such topic"));
    }
    lock.unlock();
    done({});
  }

  void list_queues(completion<result<std::vector<bc::queue_info>>> done) override {
    std::vector<bc::queue_info> out;
    std::unique_lock lock(mutex_);
    for (const auto& [name, q] : queues_) {
      bc::queue_info info;
      info.name = name;
      info.ready = q.ready.size();
      for (const auto& [tag, l] : leased_) info.in_flight += l.queue == name ? 1 : 0;
      for (const auto& [id, s] : scheduled_) info.scheduled += s.first == name ? 1 : 0;
      auto dlq = queues_.find(name + ".dlq");
      info.dead_letters = dlq == queues_.end() ? 0 : dlq->second.ready.size();
      out.push_back(std::move(info));
    }
    lock.unlock();
    done(std::move(out));
  }

  void peek(const bc::peek_request& request,
            completion<result<std::vector<bc::peeked_message>>> done) override {
    std::unique_lock lock(mutex_);
    auto q = queues_.find(request.queue);
    if (q == queues_.end()) {
      lock.unlock();
      return done(error(errc::queue_not_found, "no such queue"));
    }
    std::vector<bc::peeked_message> out;
    for (const auto& d : q->second.ready) {
      if (out.size() >= request.max) break;
      out.push_back({d.id, bc::peeked_state::ready, d.attempt - 1, d.headers, d.body, d.deliver_at,
                     d.published_at});
    }
    lock.unlock();
    done(std::move(out));
  }

  void replay_dead_letters(const bc::replay_request& request,
                           completion<result<std::uint64_t>> done) override {
    std::unique_lock lock(mutex_);
    auto q = queues_.find(request.dead_letter_queue);
    if (q == queues_.end() || q->second.origin.empty()) {
      lock.unlock();
      return done(error(errc::queue_not_found, "no such dead-letter queue"));
    }
    std::uint64_t moved = 0;
    auto& target = queues_[q->second.origin];
    while (!q->second.ready.empty() && (request.max == 0 || moved < request.max)) {
      auto d = std::move(q->second.ready.front());
      q->second.ready.pop_front();
      d.attempt = 1;
      target.ready.push_back(std::move(d));
      ++moved;
    }
    dispatch_locked();
    lock.unlock();
    done(moved);
  }

  void stats(completion<result<bc::stat_list>> done) override {
    std::unique_lock lock(mutex_);
    bc::stat_list out{{"messages_published", published_}, {"deliveries", deliveries_}};
    lock.unlock();
    done(std::move(out));
  }

 private:
  struct queue_state {
    std::deque<bc::delivery> ready;
    std::string origin;  // dead-letter queues
  };
  struct sub_state {
    std::string queue;
    std::shared_ptr<delivery_sink> sink;
    std::uint64_t credit = 0;
    std::uint64_t outstanding = 0;
  };
  struct lease {
    bc::subscription_id sub = 0;
    std::string queue;
    bc::delivery d;
  };

  void release_locked(bc::subscription_id sub) {
    auto it = subs_.find(sub);
    if (it != subs_.end() && it->second.outstanding > 0) --it->second.outstanding;
  }

  void dispatch_locked() {
    for (auto& [id, s] : subs_) {
      auto& q = queues_[s.queue];
      std::vector<bc::delivery> batch;
      while (s.credit > 0 && !q.ready.empty()) {
        auto d = std::move(q.ready.front());
        q.ready.pop_front();
        d.subscription = id;
        d.tag = next_tag_++;
        leased_[d.tag] = lease{id, s.queue, d};
        batch.push_back(std::move(d));
        --s.credit;
        ++s.outstanding;
        ++deliveries_;
        max_outstanding_ = std::max<std::size_t>(max_outstanding_, s.outstanding);
      }
      if (!batch.empty()) s.sink->deliver(std::move(batch));
    }
  }

  std::mutex mutex_;
  bool hold_ = false;
  std::deque<std::function<void()>> held_;
  std::map<std::string, queue_state> queues_;
  std::set<std::string> topics_;
  std::map<id128, std::pair<std::string, bc::delivery>> scheduled_;
  std::map<bc::subscription_id, sub_state> subs_;
  std::map<bc::delivery_tag, lease> leased_;
  std::uint64_t next_id_ = 0;
  bc::subscription_id next_sub_ = 1;
  bc::delivery_tag next_tag_ = 1;
  std::uint64_t published_ = 0;
  std::uint64_t deliveries_ = 0;
  std::size_t ack_calls_ = 0;
  std::size_t acked_ = 0;
  std::size_t max_outstanding_ = 0;
};

}  // namespace outrider::broker
