// circuit_breaker: the state machine of one target's circuit (the gobreaker
// model Dapr uses), clock-free: every call takes `now`.
//
//   closed    --trip condition true-->  open
//   open      --timeout elapsed------>  half-open (next allow())
//   half-open --max_requests successes in a row--> closed
//   half-open --any failure--------->  open
//
// Closed: counters reset every `interval` (0: only on a state change). Each
// state change starts a new generation; results of attempts admitted in an
// older generation are ignored, so a slow attempt from before the circuit
// opened cannot close it again.
//
// Threading: the breaker is not thread-safe (the target table guards it with the
// target's lock); retry_budget and sharded_call_count are.
#pragma once

#include <atomic>
#include <cstdint>

#include "ambassador/policy.h"

namespace outrider::ambassador {

class circuit_breaker {
 public:
  enum class state { closed = 0, open = 1, half_open = 2 };

  explicit circuit_breaker(breaker_policy policy, mono_time now);

  // Admits an attempt, or refuses it (open, or half-open with max_requests
  // probes already out). On admission returns the generation to report with.
  struct admission {
    bool allowed = false;
    std::uint64_t generation = 0;
    nanoseconds retry_after{};  // when refused: time until the circuit half-opens (0 if unknown)
  };
  admission allow(mono_time now);
  void on_success(std::uint64_t generation, mono_time now);
  void on_failure(std::uint64_t generation, mono_time now);

  state current(mono_time now);  // advances open -> half-open when due
  std::uint32_t consecutive_failures() const noexcept { return consecutive_failures_; }

 private:
  void refresh(mono_time now);
  void enter(state s, mono_time now);

  breaker_policy policy_;
  state state_ = state::closed;
  std::uint64_t generation_ = 0;
  mono_time expiry_{};  // closed: counter reset (if interval > 0); open: when half-open
  bool has_expiry_ = false;
  std::uint32_t requests_ = 0;  // admitted in this generation
  std::uint32_t total_failures_ = 0;
  std::uint32_t consecutive_failures_ = 0;
  std::uint32_t consecutive_successes_ = 0;
};

// A count of calls in flight kept by one thread (an engine): started() and
// ended() are a load and a store on a cache line of the shard's own (no atomic
// read-modify-write, no line written by two cores), read from any thread.
// REQUIRES: one thread at a time calls started()/ended() on a given shard.
class alignas(64) call_count_shard {
 public:
  void started() noexcept {
    n_.store(n_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void ended() noexcept {
    n_.store(n_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  std::uint32_t value() const noexcept { return n_.load(std::memory_order_relaxed); }

 private:
  friend class sharded_call_count;
  std::atomic<std::uint32_t> n_{0};
  call_count_shard* next_ = nullptr;  // the list of its sharded_call_count (fixed once published)
};

// The calls in flight over several threads' shards. add() is thread-safe; a
// shard lives as long as the count. total() adds the shards up (a read of each
// shard's line: for the rare reader, not for every call).
class sharded_call_count {
 public:
  sharded_call_count() = default;
  ~sharded_call_count();
  sharded_call_count(const sharded_call_count&) = delete;
  sharded_call_count& operator=(const sharded_call_count&) = delete;

  call_count_shard& add();
  std::uint32_t total() const noexcept;

 private:
  std::atomic<call_count_shard*> head_{nullptr};  // newest first; never shrinks
};

// Retry budget (Envoy's retry_budget): retries in flight for a target may not
// exceed max(min_retry_concurrency, budget_percent% of its active calls), so a
// failing dependency sees a bounded retry load instead of a retry storm.
// A call holds one retry slot from its first retry until it ends.
// Thread-safe (atomic counters: the engines of every I/O context share one
// budget per target); set_policy() only before use. The active calls are
// call_started()/call_ended() plus every shard's count: each engine counts its
// own calls of the target in a shard (add_shard()), so starting and ending a call
// writes no line another thread writes; try_acquire() (a failed attempt's path)
// adds them up, so the budget still counts the calls of every thread.
class retry_budget {
 public:
  explicit retry_budget(budget_policy policy = {}) : policy_(policy) {}
  void set_policy(budget_policy policy) { policy_ = policy; }

  void call_started() noexcept { active_calls_.fetch_add(1, std::memory_order_relaxed); }
  void call_ended() noexcept { active_calls_.fetch_sub(1, std::memory_order_relaxed); }
  // A count of one thread's calls, part of active_calls(). Thread-safe.
  call_count_shard& add_shard() { return shards_.add(); }
  // Takes a retry slot if the budget allows.
  bool try_acquire();
  void release() noexcept { active_retries_.fetch_sub(1, std::memory_order_relaxed); }

  std::uint32_t active_calls() const noexcept {
    return active_calls_.load(std::memory_order_relaxed) + shards_.total();
  }
  std::uint32_t active_retries() const noexcept {
    return active_retries_.load(std::memory_order_relaxed);
  }
  std::uint32_t limit() const;

 private:
  budget_policy policy_;
  std::atomic<std::uint32_t> active_calls_{0};
  std::atomic<std::uint32_t> active_retries_{0};
  sharded_call_count shards_;
};

}  // namespace outrider::ambassador
