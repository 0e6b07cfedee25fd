#include "ambassador/engine.h"

#include <atomic>
#include <fmt/core.h>
#include <mutex>

#include "base/log.h"
#include "http/body_stream.h"

namespace outrider::ambassador {
namespace {

const log::logger logger{"ambassador"};

double seconds(nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

constexpr std::string_view outcome_names[] = {"success", "error", "timeout", "circuit_open"};

// Retry-After in whole seconds, at least 1.
int retry_after_seconds(nanoseconds d) {
  const auto s = std::chrono::ceil<std::chrono::seconds>(d).count();
  return static_cast<int>(std::max<std::int64_t>(1, s));
}

}  // namespace

bool idempotent_method(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

struct target_table::families {
  explicit families(metrics::registry& m)
      : calls(m.add_counter("outrider_ambassador_calls_total",
                            "Outbound calls through the ambassador, by target and outcome",
                            {"target", "outcome"})),
        attempts(m.add_counter("outrider_ambassador_attempts_total",
                               "Attempts sent upstream (first tries and retries)", {"target"})),
        retries(m.add_counter("outrider_ambassador_retries_total", "Retries sent upstream",
                              {"target"})),
        timeouts(m.add_counter("outrider_ambassador_timeouts_total",
                               "Calls that ended because their timeout passed", {"target"})),
        budget_exhausted(m.add_counter("outrider_ambassador_retry_budget_exhausted_total",
                                       "Retries not made because the retry budget was spent",
                                       {"target"})),
        circuit_opened(m.add_counter("outrider_ambassador_circuit_opened_total",
                                     "Times the target's circuit opened", {"target"})),
        circuit_state(m.add_gauge("outrider_ambassador_circuit_state",
                                  "Circuit state: 0 closed, 1 open, 2 half-open", {"target"})),
        duration(m.add_histogram("outrider_ambassador_call_duration_seconds",
                                 "Time from the app's request to the ambassador's answer",
                                 {"target"})) {}
  metrics::family<metrics::counter>& calls;
  metrics::family<metrics::counter>& attempts;
  metrics::family<metrics::counter>& retries;
  metrics::family<metrics::counter>& timeouts;
  metrics::family<metrics::counter>& budget_exhausted;
  metrics::family<metrics::counter>& circuit_opened;
  metrics::family<metrics::gauge>& circuit_state;
  metrics::family<metrics::histogram>& duration;
};

// Aligned: the lines that other threads read on every call (has_breaker, the
// series pointers) share nothing with unrelated objects written per call.
struct alignas(64) target_table::target {
  std::string name;
  std::mutex mutex;  // guards breaker
  std::optional<circuit_breaker> breaker;
  std::atomic<bool> has_breaker{false};  // set once breaker exists (it never goes away)
  retry_budget budget;                   // thread-safe itself
  metrics::family<metrics::counter>* calls = nullptr;
  metrics::counter* calls_success = nullptr;
  metrics::counter* attempts = nullptr;
  metrics::counter* retries = nullptr;
  metrics::counter* timeouts = nullptr;
  metrics::counter* budget_exhausted = nullptr;
  metrics::counter* circuit_opened = nullptr;
  metrics::gauge* circuit = nullptr;
  metrics::histogram* duration = nullptr;
};

namespace {

// Sets the target's circuit gauge only when it changes: a store to the gauge's
// line per attempt would pass that line between the cores of every engine.
void set_circuit_gauge(target_table::target& t, circuit_breaker::state s) {
  const auto v = static_cast<double>(s);
  if (t.circuit != nullptr && t.circuit->value() != v) t.circuit->set(v);
}

}  // namespace

target_table::target_table(metrics::registry& m, budget_policy budget)
    : budget_(budget), families_(std::make_unique<families>(m)) {}

target_table::~target_table() = default;

target_table::target& target_table::get(const std::string& name, const target_policy& policy,
                                        mono_time now) {
  std::lock_guard lock(mutex_);
  auto it = targets_.find(name);
  if (it == targets_.end()) {
    auto t = std::make_unique<target>();
    auto& f = *families_;
    t->name = name;
    t->budget.set_policy(budget_);
    t->calls = &f.calls;
    t->calls_success = f.calls.with({name, "success"});
    t->attempts = f.attempts.with({name});
    t->retries = f.retries.with({name});
    t->timeouts = f.timeouts.with({name});
    t->budget_exhausted = f.budget_exhausted.with({name});
    t->circuit_opened = f.circuit_opened.with({name});
    t->circuit = f.circuit_state.with({name});
    t->duration = f.duration.with({name});
    it = targets_.emplace(name, std::move(t)).first;
  }
  auto& t = *it->second;
  if (policy.breaker && !t.has_breaker.load(std::memory_order_acquire)) {
    std::lock_guard target_lock(t.mutex);
    if (!t.breaker) t.breaker.emplace(*policy.breaker, now);
    t.has_breaker.store(true, std::memory_order_release);
  }
  return t;
}

circuit_breaker::state target_table::circuit_state(const std::string& name, mono_time now) {
  target* t = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = targets_.find(name);
    if (it == targets_.end()) return circuit_breaker::state::closed;
    t = it->second.get();
  }
  std::lock_guard lock(t->mutex);
  return t->breaker ? t->breaker->current(now) : circuit_breaker::state::closed;
}

// Call deadlines without a timer per call. Calls with the same timeout end in the
// order they started, so each timeout value has a FIFO queue (an intrusive list:
// linking and unlinking allocate nothing) and one clock timer is armed for the
// earliest deadline of all queues. A call that finishes only leaves its queue; the
// timer is not moved: when it fires it times out the calls whose deadline passed
// and is armed again for the earliest remaining one. With the usual seconds-long
// timeouts and millisecond calls that is one timer operation per timeout period,
// not a timer set and cancelled (and its cancellation run) per call. The queues
// hold the calls they list, so a call is answered at its deadline even if its
// attempt's callback never comes.
struct engine::deadline_queues {
  struct queue {
    nanoseconds timeout{};
    std::shared_ptr<call_state> head;
    call_state* tail = nullptr;
  };
  std::vector<queue> queues;  // one per distinct timeout (a handful: they come from policies)
  clock::timer_id timer = 0;
  mono_time armed_for = mono_time::max();

  std::size_t index_of(nanoseconds timeout) {
    for (std::size_t i = 0; i < queues.size(); ++i) {
      if (queues[i].timeout == timeout) return i;
    }
    queues.push_back(queue{timeout, nullptr, nullptr});
    return queues.size() - 1;
  }
  void push(const std::shared_ptr<call_state>& c, std::size_t i) {
    auto& q = queues[i];
    c->queue = i;
    c->queued = true;
    c->prev = q.tail;
    if (q.tail != nullptr) {
      q.tail->next = c;
    } else {
      q.head = c;
    }
    q.tail = c.get();
  }
  void unlink(call_state& c) {
    if (!c.queued) return;
    c.queued = false;
    auto& q = queues[c.queue];
    auto next = std::move(c.next);  // may hold the last reference to the rest of the list
    if (next) {
      next->prev = c.prev;
    } else {
      q.tail = c.prev;
    }
    call_state* prev = c.prev;
    c.prev = nullptr;
    if (prev != nullptr) {
      prev->next = std::move(next);  // may release `c` itself: touch nothing after this
    } else {
      q.head = std::move(next);
    }
  }
  // The queue's reference to `c` (REQUIRES: c.queued).
  const std::shared_ptr<call_state>& owner_of(const call_state& c) const {
    return c.prev != nullptr ? c.prev->next : queues[c.queue].head;
  }
  mono_time earliest() const {
    mono_time t = mono_time::max();
    for (const auto& q : queues) {
      if (q.head && q.head->deadline < t) t = q.head->deadline;
    }
    return t;
  }
};

engine::engine(clock& clk, random_source& random, metrics::registry& m, engine_options opts)
    : engine(clk, random, std::make_shared<target_table>(m, opts.budget), opts) {}

engine::engine(clock& clk, random_source& random, std::shared_ptr<target_table> targets,
               engine_options opts)
    : clock_(clk),
      random_(random),
      opts_(opts),
      table_(std::move(targets)),
      in_flight_(table_->in_flight_.add()),
      deadlines_(std::make_unique<deadline_queues>()) {}

engine::~engine() {
  *alive_ = false;
  if (deadlines_->timer != 0) clock_.cancel(deadlines_->timer);
  // Unlink iteratively (a long list released from its head would recurse).
  for (auto& q : deadlines_->queues) {
    while (q.head) {
      auto c = q.head;
      deadlines_->unlink(*c);
    }
  }
}

void engine::watch_deadline(const std::shared_ptr<call_state>& c, nanoseconds timeout) {
  deadlines_->push(c, deadlines_->index_of(timeout));
  if (c->deadline < deadlines_->armed_for) arm_deadline_timer(c->deadline);
}

void engine::arm_deadline_timer(mono_time at) {
  auto& d = *deadlines_;
  if (d.timer != 0) clock_.cancel(d.timer);
  d.armed_for = at;
  const auto delay = std::max(nanoseconds(0),
                              std::chrono::duration_cast<nanoseconds>(at - clock_.monotonic_now()));
  d.timer = clock_.call_after(delay, [this, alive = alive_] {
    if (!*alive) return;
    on_deadline_timer();
  });
}

void engine::on_deadline_timer() {
  auto& d = *deadlines_;
  d.timer = 0;
  d.armed_for = mono_time::max();
  const mono_time now = clock_.monotonic_now();
  for (std::size_t i = 0; i < d.queues.size(); ++i) {
    // time_out() answers the app, whose code may start calls (appended at the tails).
    while (d.queues[i].head && d.queues[i].head->deadline <= now) {
      auto c = d.queues[i].head;
      d.unlink(*c);
      time_out(c);
    }
  }
  const mono_time next = d.earliest();
  if (next != mono_time::max() && next < d.armed_for) arm_deadline_timer(next);
}

void engine::time_out(const std::shared_ptr<call_state>& call) {
  if (call->finished) return;
  if (call->local->timeouts) call->local->timeouts->inc();
  finish(*call,
         http::response::from_error(error(
             errc::deadline_exceeded,
             fmt::format("{} did not answer within {} ms ({} attempts)", call->target->name,
                         std::chrono::duration_cast<std::chrono::milliseconds>(call->deadline -
                                                                               call->started)
                             .count(),
                         call->attempts))),
         outcome::timeout);
}

engine::local_target& engine::state_of(const std::string& target, const target_policy& policy) {
  auto it = targets_.find(target);
  if (it != targets_.end()) {
    // A breaker policy seen for the first time after the target was cached.
    if (policy.breaker && !it->second.shared->has_breaker.load(std::memory_order_acquire)) {
      table_->get(target, policy, clock_.monotonic_now());
    }
    return it->second;
  }
  auto& t = table_->get(target, policy, clock_.monotonic_now());
  local_target local;
  local.shared = &t;
  local.calls = &t.budget.add_shard();
  local.attempts = t.attempts != nullptr ? &t.attempts->add_shard() : nullptr;
  local.retries = t.retries != nullptr ? &t.retries->add_shard() : nullptr;
  local.timeouts = t.timeouts != nullptr ? &t.timeouts->add_shard() : nullptr;
  if (t.calls_success != nullptr) {
    local.outcomes[static_cast<std::size_t>(outcome::success)] = &t.calls_success->add_shard();
  }
  local.duration = t.duration != nullptr ? &t.duration->add_shard() : nullptr;
  return targets_.emplace(target, local).first->second;
}

metrics::counter_shard* engine::outcome_shard(local_target& t, outcome o) {
  auto& shard = t.outcomes[static_cast<std::size_t>(o)];
  if (shard == nullptr) {
    // First call of this engine with this outcome: the series (made now if it is
    // new) gets a shard; none when the family is at its series limit (retried
    // next time, as an unsharded update would be).
    auto* series =
        t.shared->calls->with({t.shared->name, outcome_names[static_cast<std::size_t>(o)]});
    if (series != nullptr) shard = &series->add_shard();
  }
  return shard;
}

circuit_breaker::state engine::circuit_state(const std::string& target) {
  return table_->circuit_state(target, clock_.monotonic_now());
}

void engine::start(std::shared_ptr<call_state> c) {
  c->owner = this;
  c->alive = alive_;
  c->local = &state_of(c->spec.target_name(), c->spec.policy);
  c->target = c->local->shared;
  c->started = clock_.monotonic_now();
  const nanoseconds timeout = c->spec.policy.timeout.value_or(opts_.default_timeout);
  c->deadline = c->started + timeout;
  c->local->calls->started();
  in_flight_.started();
  watch_deadline(c, timeout);
  attempt(c, c->started);
}

void engine::attempt(const std::shared_ptr<call_state>& c, mono_time now) {
  c->backoff_timer = 0;
  if (c->finished) return;
  auto& t = *c->target;
  std::uint64_t generation = 0;
  if (t.has_breaker.load(std::memory_order_acquire)) {
    circuit_breaker::admission a;
    {
      std::lock_guard lock(t.mutex);
      a = t.breaker->allow(now);
      set_circuit_gauge(t, t.breaker->current(now));
    }
    if (!a.allowed) {
      if (c->last_response) {
        finish(*c, std::move(*c->last_response), outcome::error, true);
      } else {
        finish(*c,
               http::response::from_error(
                   error(errc::circuit_open,
                         fmt::format("the circuit for {} is open; not calling it", t.name)),
                   retry_after_seconds(a.retry_after)),
               outcome::circuit_open);
      }
      return;
    }
    generation = a.generation;
  }
  ++c->attempts;
  auto& local = *c->local;
  if (local.attempts) local.attempts->inc();
  if (c->attempts > 1 && local.retries) local.retries->inc();
  // Each attempt sends a copy when a retry may follow; otherwise the request itself.
  // Either is lent to the upstream, which holds the call (its receiver) meanwhile: the
  // next attempt starts only after this one's answer, so the copy is not replaced while lent.
  http::request& stored = c->spec.request;
  if (stored.target.empty()) stored.target = c->spec.destination.target;
  const nanoseconds remaining = c->deadline - now;
  c->generation = generation;
  http::request* sent = &stored;
  if (c->spec.policy.retry) sent = &c->attempt_request.emplace(stored);
  if (observer_) observer_->before_attempt({t.name, c->attempts, &c->spec.destination}, *sent);
  c->spec.via->send(c->spec.destination, *sent, remaining, c);
}

void engine::on_attempt_result(call_state& call, result<http::response>&& r) {
  call_state* const c = &call;
  const std::uint64_t generation = c->generation;
  auto& t = *c->target;
  // Read only when a breaker or a retry needs it (a clock read costs a vDSO call).
  std::optional<mono_time> read;
  auto now = [&] {
    if (!read) read = clock_.monotonic_now();
    return *read;
  };
  if (observer_) observer_->after_attempt({t.name, c->attempts, &c->spec.destination}, r);
  const retry_policy* retry = c->spec.policy.retry ? &*c->spec.policy.retry : nullptr;
  const bool failed =
      !r || (retry != nullptr ? retry->retries_status(r->status) : r->status >= 500);
  if (t.has_breaker.load(std::memory_order_acquire)) {
    circuit_breaker::state before{};
    circuit_breaker::state after{};
    const mono_time at = now();
    {
      std::lock_guard lock(t.mutex);
      before = t.breaker->current(at);
      if (failed) {
        t.breaker->on_failure(generation, at);
      } else {
        t.breaker->on_success(generation, at);
      }
      after = t.breaker->current(at);
      set_circuit_gauge(t, after);
    }
    if (after == circuit_breaker::state::open && before != after) {
      logger.warn("circuit for {} opened", t.name);
      if (t.circuit_opened) t.circuit_opened->inc();
    }
  }
  if (c->finished) return;  // the deadline answered already
  if (!failed) {
    finish(*c, std::move(*r), outcome::success, true);
    return;
  }
  if (r) {
    c->last_response = std::move(*r);
    c->last_error.reset();
  } else {
    c->last_error = std::move(r).error();
    c->last_response.reset();
  }
  auto give_up = [&] {
    if (c->last_response) {
      finish(*c, std::move(*c->last_response), outcome::error, true);
    } else if (c->last_error->code == errc::deadline_exceeded) {
      if (c->local->timeouts) c->local->timeouts->inc();
      finish(*c, http::response::from_error(*c->last_error), outcome::timeout);
    } else {
      finish(*c, http::response::from_error(*c->last_error), outcome::error);
    }
  };
  // A request body that started streaming upstream cannot be sent again.
  const bool body_spent = c->spec.request.stream && c->spec.request.stream->started();
  const bool may_retry =
      retry != nullptr && !body_spent &&
      (idempotent_method(c->spec.request.method) || retry->retry_non_idempotent) &&
      (retry->max_retries < 0 || static_cast<std::int64_t>(c->attempts) <= retry->max_retries);
  if (!may_retry) {
    give_up();
    return;
  }
  if (!c->holds_retry_slot) {
    if (!t.budget.try_acquire()) {
      if (t.budget_exhausted) t.budget_exhausted->inc();
      logger.debug("retry budget for {} spent ({} retrying of {} calls); not retrying", t.name,
                   t.budget.active_retries(), t.budget.active_calls());
      give_up();
      return;
    }
    c->holds_retry_slot = true;
  }
  const nanoseconds delay = retry->backoff(c->attempts, random_.unit());
  if (now() + delay >= c->deadline) {
    give_up();  // the next attempt could not start before the deadline
    return;
  }
  // The timer owns the call while it waits (the deadline queue's reference: an unfinished
  // call is in its queue).
  c->backoff_timer =
      clock_.call_after(delay, [this, self = deadlines_->owner_of(*c), alive = alive_] {
        if (!*alive) return;
        attempt(self, clock_.monotonic_now());
      });
}

void engine::finish(call_state& call, http::response&& resp, outcome how, bool from_upstream) {
  call_state* const c = &call;
  if (c->finished) return;
  c->finished = true;
  auto& local = *c->local;
  deadlines_->unlink(*c);  // the caller's reference keeps the call alive
  if (c->backoff_timer != 0) clock_.cancel(c->backoff_timer);
  c->backoff_timer = 0;
  if (c->holds_retry_slot) local.shared->budget.release();
  local.calls->ended();
  in_flight_.ended();
  if (auto* counter = outcome_shard(local, how)) counter->inc();
  if (local.duration) local.duration->observe(seconds(clock_.monotonic_now() - c->started));
  c->deliver(std::move(resp), from_upstream);
}

}  // namespace outrider::ambassador
