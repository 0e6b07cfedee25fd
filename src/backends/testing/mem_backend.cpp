#include "backends/testing/mem_backend.h"

#include <algorithm>

namespace outrider::backends {

mem_backend::mem_backend(mem_backend_options options) : options_(options) {
  worker_ = std::thread([this] { run(); });
}

mem_backend::~mem_backend() {
  close();
}

wall_time mem_backend::now() const {
  std::lock_guard lock(mutex_);
  return now_locked();
}

wall_time mem_backend::now_locked() const {
  return std::chrono::time_point_cast<wall_time::duration>(std::chrono::system_clock::now() +
                                                           offset_);
}

void mem_backend::publish(std::vector<message> batch,
                          callback<result<std::vector<publish_outcome>>> done) {
  if (batch.empty()) {
    done(error(errc::invalid_argument, "empty publish batch"));
    return;
  }
  std::vector<publish_outcome> outcomes;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      done(error(errc::shutting_down, "backend closed"));
      return;
    }
    const wall_time now = now_locked();
    outcomes.reserve(batch.size());
    for (auto& m : batch) {
      if (m.id.is_zero()) {
        m.id = id128::time_ordered(now);
      }
      publish_outcome out{m.id, ok_status()};
      if (!healthy_) {
        out.outcome = error(errc::unavailable, "backend unavailable (test)");
      } else if (m.topic.empty()) {
        out.outcome = error(errc::invalid_argument, "empty topic");
      } else if (scheduled_.contains(m.id) || live_ids_.contains(m.id)) {
        out.outcome = error(errc::already_exists, "message id " + m.id.to_string() + " is pending");
      } else if (filter_) {
        out.outcome = filter_(m);
      }
      if (out.outcome) {
        auto s = std::make_shared<stored>(stored{m, now});
        published_[m.topic].push_back(m);
        if (m.deliver_at > now) {
          scheduled_.emplace(m.id, s);
          scheduled_due_.emplace(m.deliver_at, m.id);
        } else {
          fan_out_locked(s);
        }
      }
      outcomes.push_back(std::move(out));
    }
  }
  wake_.notify_all();
  done(std::move(outcomes));
}

void mem_backend::fan_out_locked(const std::shared_ptr<const stored>& s) {
  auto it = topics_.find(s->msg.topic);
  if (it == topics_.end()) {
    return;  // no subscription yet: a topic keeps nothing for future subscribers
  }
  for (group* g : it->second) {
    g->ready.push_back(entry{s, 0});
    ++live_ids_[s->msg.id];
  }
}

void mem_backend::cancel_scheduled(const id128& id, callback<status> done) {
  status st;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      st = error(errc::shutting_down, "backend closed");
    } else if (scheduled_.erase(id) > 0) {
      st = ok_status();  // its due entry is skipped when it comes up
    } else if (live_ids_.contains(id)) {
      st = error(errc::message_not_scheduled, "message " + id.to_string() + " is already due");
    } else {
      st = error(errc::message_not_found, "no scheduled message " + id.to_string());
    }
  }
  done(std::move(st));
}

void mem_backend::subscribe(subscription_spec spec, delivery_fn on_delivery,
                            callback<result<subscription_handle>> done) {
  if (spec.topic.empty() || spec.app_id.empty() || spec.prefetch == 0 || !on_delivery) {
    done(error(errc::invalid_argument, "subscribe needs a topic, an app id and prefetch > 0"));
    return;
  }
  subscription_handle id = 0;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      done(error(errc::shutting_down, "backend closed"));
      return;
    }
    auto& slot = groups_[{spec.topic, spec.app_id}];
    if (!slot) {
      slot = std::make_unique<group>();
      slot->topic = spec.topic;
      slot->app_id = spec.app_id;
      topics_[spec.topic].push_back(slot.get());
    }
    slot->max_attempts = spec.max_attempts;
    slot->lease_duration = spec.lease.count() > 0 ? spec.lease : options_.default_lease;
    id = next_consumer_id_++;
    consumers_.emplace(id, consumer{id, slot.get(), std::move(on_delivery), spec.prefetch, 0});
    slot->consumers.push_back(id);
  }
  wake_.notify_all();
  done(id);
}

void mem_backend::release_consumer_locked(consumer& c) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.consumer_id == c.id) {
      it->second.owner->ready.push_front(std::move(it->second.item));
      --it->second.owner->leased;
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  auto& list = c.owner->consumers;
  list.erase(std::remove(list.begin(), list.end(), c.id), list.end());
}

void mem_backend::unsubscribe(subscription_handle handle, callback<status> done) {
  status st;
  {
    std::unique_lock lock(mutex_);
    auto it = consumers_.find(handle);
    if (it == consumers_.end()) {
      st = error(errc::consumer_not_found, "no consumer " + std::to_string(handle));
    } else {
      release_consumer_locked(it->second);
      consumers_.erase(it);
    }
  }
  wake_.notify_all();
  if (done) {
    done(std::move(st));
  }
}

void mem_backend::fail_locked(group& g, entry e, wall_time now, nanoseconds delay) {
  ++e.failed;
  if (g.max_attempts > 0 && e.failed >= g.max_attempts) {
    dead_letter_locked(g, e);
    return;
  }
  if (delay.count() <= 0) {
    g.ready.push_back(std::move(e));
  } else {
    g.waiting.emplace(now + std::chrono::duration_cast<wall_time::duration>(delay), std::move(e));
  }
}

void mem_backend::dead_letter_locked(group& g, const entry& e) {
  g.dead.push_back(e.data);
  auto it = live_ids_.find(e.data->msg.id);
  if (it != live_ids_.end() && --it->second == 0) {
    live_ids_.erase(it);
  }
}

void mem_backend::settle(const settle_handle& handle, settle_action action, callback<status> done) {
  status st;
  {
    std::lock_guard lock(mutex_);
    auto it = leases_.find(handle.token);
    if (closed_) {
      st = error(errc::shutting_down, "backend closed");
    } else if (it == leases_.end() || it->second.consumer_id != handle.subscription ||
               it->second.expires <= now_locked()) {
      // An expired lease not yet collected by the worker counts as expired.
      st = error(errc::delivery_not_found, "unknown delivery or lease expired");
    } else {
      lease l = std::move(it->second);
      leases_.erase(it);
      group& g = *l.owner;
      --g.leased;
      if (auto c = consumers_.find(l.consumer_id); c != consumers_.end()) {
        --c->second.unsettled;
      }
      switch (action.type) {
        case settle_action::kind::ack: {
          auto live = live_ids_.find(l.item.data->msg.id);
          if (live != live_ids_.end() && --live->second == 0) {
            live_ids_.erase(live);
          }
          break;
        }
        case settle_action::kind::retry:
          fail_locked(g, std::move(l.item), now_locked(), action.delay);
          break;
        case settle_action::kind::dead_letter: dead_letter_locked(g, l.item); break;
        case settle_action::kind::release: g.ready.push_front(std::move(l.item)); break;
      }
    }
  }
  wake_.notify_all();
  if (done) {
    done(std::move(st));
  }
}

void mem_backend::health(callback<status> done) {
  status st;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      st = error(errc::shutting_down, "backend closed");
    } else if (!healthy_) {
      st = error(errc::unavailable, "backend unavailable (test)");
    }
  }
  done(std::move(st));
}

void mem_backend::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) {
    worker_.join();
  }
}

mem_backend::group* mem_backend::find_group_locked(std::string_view topic,
                                                   std::string_view app_id) const {
  auto it = groups_.find({std::string(topic), std::string(app_id)});
  return it == groups_.end() ? nullptr : it->second.get();
}

void mem_backend::step_locked(wall_time now, std::vector<pending_delivery>& out) {
  while (!scheduled_due_.empty() && scheduled_due_.begin()->first <= now) {
    const id128 id = scheduled_due_.begin()->second;
    scheduled_due_.erase(scheduled_due_.begin());
    auto it = scheduled_.find(id);
    if (it != scheduled_.end()) {  // absent: cancelled
      auto s = it->second;
      scheduled_.erase(it);
      fan_out_locked(s);
    }
  }
  for (auto& [key, g] : groups_) {
    while (!g->waiting.empty() && g->waiting.begin()->first <= now) {
      g->ready.push_back(std::move(g->waiting.begin()->second));
      g->waiting.erase(g->waiting.begin());
    }
  }
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires <= now) {
      group& g = *it->second.owner;
      --g.leased;
      if (auto c = consumers_.find(it->second.consumer_id); c != consumers_.end()) {
        --c->second.unsettled;
      }
      fail_locked(g, std::move(it->second.item), now, nanoseconds{});
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [key, g] : groups_) {
    // Round-robin over consumers with free credit.
    while (!g->ready.empty() && !g->consumers.empty()) {
      consumer* chosen = nullptr;
      for (std::size_t i = 0; i < g->consumers.size(); ++i) {
        auto& c = consumers_.at(g->consumers[(g->next_consumer + i) % g->consumers.size()]);
        if (c.unsettled < c.prefetch) {
          chosen = &c;
          g->next_consumer = (g->next_consumer + i + 1) % g->consumers.size();
          break;
        }
      }
      if (chosen == nullptr) {
        break;
      }
      entry e = std::move(g->ready.front());
      g->ready.pop_front();
      const std::uint64_t token = next_token_++;
      delivery d;
      d.handle = settle_handle{chosen->id, token};
      d.topic = g->topic;
      d.id = e.data->msg.id;
      d.attempt = e.failed + 1;
      d.headers = e.data->msg.headers;
      d.body = e.data->msg.body;
      d.published_at = e.data->published_at;
      ++chosen->unsettled;
      ++g->leased;
      leases_.emplace(
          token, lease{std::move(e), g.get(), chosen->id,
                       now + std::chrono::duration_cast<wall_time::duration>(g->lease_duration)});
      out.push_back(pending_delivery{chosen->on_delivery, std::move(d)});
    }
  }
}

wall_time mem_backend::next_due_locked() const {
  wall_time next = wall_time::max();
  if (!scheduled_due_.empty()) {
    next = std::min(next, scheduled_due_.begin()->first);
  }
  for (const auto& [key, g] : groups_) {
    if (!g->waiting.empty()) {
      next = std::min(next, g->waiting.begin()->first);
    }
  }
  for (const auto& [token, l] : leases_) {
    next = std::min(next, l.expires);
  }
  return next;
}

void mem_backend::run() {
  std::unique_lock lock(mutex_);
  while (!closed_) {
    std::vector<pending_delivery> out;
    const wall_time now = now_locked();
    step_locked(now, out);
    if (!out.empty()) {
      lock.unlock();
      for (auto& p : out) {
        p.fn(std::move(p.d));
      }
      lock.lock();
      continue;
    }
    const wall_time next = next_due_locked();
    if (next == wall_time::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_for(lock, next - now);
    }
  }
}

void mem_backend::advance_for_test(nanoseconds d) {
  {
    std::lock_guard lock(mutex_);
    offset_ += d;
  }
  wake_.notify_all();
}

void mem_backend::set_healthy_for_test(bool healthy) {
  std::lock_guard lock(mutex_);
  healthy_ = healthy;
}

void mem_backend::set_publish_filter_for_test(std::function<status(const message&)> filter) {
  std::lock_guard lock(mutex_);
  filter_ = std::move(filter);
}

std::vector<message> mem_backend::published_for_test(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  auto it = published_.find(topic);
  return it == published_.end() ? std::vector<message>{} : it->second;
}

std::vector<message> mem_backend::dead_letters_for_test(std::string_view topic,
                                                        std::string_view app_id) const {
  std::lock_guard lock(mutex_);
  std::vector<message> out;
  if (const group* g = find_group_locked(topic, app_id)) {
    for (const auto& s : g->dead) {
      out.push_back(s->msg);
    }
  }
  return out;
}

std::size_t mem_backend::pending_for_test(std::string_view topic, std::string_view app_id) const {
  std::lock_guard lock(mutex_);
  const group* g = find_group_locked(topic, app_id);
  return g == nullptr ? 0 : g->ready.size() + g->waiting.size() + g->leased;
}

std::size_t mem_backend::leased_for_test() const {
  std::lock_guard lock(mutex_);
  return leases_.size();
}

std::size_t mem_backend::scheduled_for_test() const {
  std::lock_guard lock(mutex_);
  return scheduled_.size();
}

}  // namespace outrider::backends
