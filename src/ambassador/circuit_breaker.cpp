#include "ambassador/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace outrider::ambassador {

circuit_breaker::circuit_breaker(breaker_policy policy, mono_time now) : policy_(policy) {
  enter(state::closed, now);
}

void circuit_breaker::enter(state s, mono_time now) {
  state_ = s;
  ++generation_;
  requests_ = 0;
  total_failures_ = 0;
  consecutive_failures_ = 0;
  consecutive_successes_ = 0;
  has_expiry_ = false;
  if (s == state::closed && policy_.interval > nanoseconds::zero()) {
    expiry_ = now + policy_.interval;
    has_expiry_ = true;
  } else if (s == state::open) {
    expiry_ = now + policy_.timeout;
    has_expiry_ = true;
  }
}

void circuit_breaker::refresh(mono_time now) {
  if (!has_expiry_ || now < expiry_) return;
  if (state_ == state::closed) {
    enter(state::closed, now);  // a new counting interval
  } else if (state_ == state::open) {
    enter(state::half_open, now);
  }
}

circuit_breaker::state circuit_breaker::current(mono_time now) {
  refresh(now);
  return state_;
}

circuit_breaker::admission circuit_breaker::allow(mono_time now) {
  refresh(now);
  admission a;
  if (state_ == state::open) {
    a.retry_after = expiry_ - now;
    return a;
  }
  if (state_ == state::half_open && requests_ >= policy_.max_requests) {
    a.retry_after = nanoseconds::zero();
    return a;
  }
  ++requests_;
  a.allowed = true;
  a.generation = generation_;
  return a;
}

void circuit_breaker::on_success(std::uint64_t generation, mono_time now) {
  refresh(now);
  if (generation != generation_) return;
  if (state_ == state::closed) {
    consecutive_failures_ = 0;
  } else if (state_ == state::half_open) {
    if (++consecutive_successes_ >= policy_.max_requests) enter(state::closed, now);
  }
}

void circuit_breaker::on_failure(std::uint64_t generation, mono_time now) {
  refresh(now);
  if (generation != generation_) return;
  if (state_ == state::closed) {
    ++total_failures_;
    ++consecutive_failures_;
    consecutive_successes_ = 0;
    if (policy_.trip.tripped(consecutive_failures_, total_failures_)) enter(state::open, now);
  } else if (state_ == state::half_open) {
    enter(state::open, now);
  }
}

sharded_call_count::~sharded_call_count() {
  for (auto* s = head_.load(std::memory_order_acquire); s != nullptr;) {
    delete std::exchange(s, s->next_);
  }
}

call_count_shard& sharded_call_count::add() {
  auto* s = new call_count_shard();
  // Readers walk the list from head_ with acquire loads: they see a shard's contents.
  auto* first = head_.load(std::memory_order_relaxed);
  do {
    s->next_ = first;
  } while (
      !head_.compare_exchange_weak(first, s, std::memory_order_release, std::memory_order_relaxed));
  return *s;
}

std::uint32_t sharded_call_count::total() const noexcept {
  std::uint32_t n = 0;
  for (auto* s = head_.load(std::memory_order_acquire); s != nullptr; s = s->next_) {
    n += s->value();
  }
  return n;
}

std::uint32_t retry_budget::limit() const {
  const auto share = static_cast<std::uint32_t>(
      std::floor(policy_.budget_percent / 100.0 * static_cast<double>(active_calls())));
  return std::max(policy_.min_retry_concurrency, share);
}

bool retry_budget::try_acquire() {
  std::uint32_t held = active_retries_.load(std::memory_order_relaxed);
  do {
    if (held >= limit()) return false;
  } while (!active_retries_.compare_exchange_weak(held, held + 1, std::memory_order_relaxed));
  return true;
}

}  // namespace outrider::ambassador
