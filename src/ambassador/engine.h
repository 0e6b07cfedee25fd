// engine: runs one logical outbound call under its target's policies —
// overall timeout, retries with backoff and jitter, retry budget, circuit
// breaker — and turns the outcome into the response the app sees:
//   - the upstream's answer (also a failed one once retries are exhausted);
//   - 504 ERR_TIMEOUT when the call's timeout passes (it covers every attempt
//     and the backoff between them);
//   - 503 ERR_CIRCUIT_OPEN with Retry-After, at once, while the circuit is open;
//   - the transport's error otherwise (503 ERR_UNAVAILABLE: cannot connect;
//     502 ERR_UPSTREAM: a broken response or a connection reset mid-answer).
//
// An attempt fails when the transport fails or the status is retryable for the
// policy (default: 5xx except 501/505; `matching.httpStatusCodes`). Only
// idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) are retried
// unless the policy says `retryNonIdempotent: true`.
//
// Seams: time and timers come from a `clock`, jitter from a `random_source`,
// the network from an `upstream`, so unit tests drive everything with a
// simulated clock and a scripted upstream.
//
// Threading: an engine belongs to its clock's thread (for io::asio_clock, that
// context's thread). call() must be made there; `done` runs there; upstream
// callbacks must come back there. The sidecar runs one engine per I/O context;
// they share a `target_table` (circuit breakers, retry budgets and metrics per
// target), which is thread-safe, so a circuit opened by calls on one thread is
// open for every thread and the budget counts every thread's calls. A call
// without a breaker policy writes nothing another engine's thread writes: each
// engine keeps its own shards of the target's metric series, of its retry
// budget's call count and of the table's calls in flight (summed when read), so
// engines on two cores do not pass cache lines back and forth per call.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "ambassador/circuit_breaker.h"
#include "ambassador/policy.h"
#include "base/clock.h"
#include "base/random.h"
#include "http/client.h"
#include "http/message.h"
#include "metrics/registry.h"

namespace outrider::ambassador {

// Where attempts go. The production one wraps an http::client.
class upstream {
 public:
  // What an attempt's answer goes to (the engine's call state).
  using receiver = http::client::receiver;
  virtual ~upstream() = default;
  // Sends one attempt; `timeout` bounds the whole exchange; `to->on_response` runs
  // once. `req` is borrowed (not moved: a move of it costs ~280 instructions): it
  // stays valid and unchanged while the upstream holds `to` (it is a member of *to).
  virtual void send(const http::url& destination, const http::request& req, nanoseconds timeout,
                    std::shared_ptr<receiver> to) = 0;
};

// An upstream over an http::client (the client must outlive it).
class client_upstream final : public upstream {
 public:
  explicit client_upstream(http::client& c) : client_(c) {}
  void send(const http::url& destination, const http::request& req, nanoseconds timeout,
            std::shared_ptr<receiver> to) override {
    client_.send(destination, req, timeout, std::move(to));
  }

 private:
  http::client& client_;
};

// What the observer sees of one attempt.
struct attempt_info {
  std::string_view target;    // "app:orders", "endpoint:api.example.com", "component:payments"
  std::uint32_t attempt = 1;  // 1 = first try
  const http::url* destination = nullptr;
};

// Hooks for tracing (a CLIENT span per attempt) and logging. Called on the
// engine's thread; must not block.
class call_observer {
 public:
  virtual ~call_observer() = default;
  // Before an attempt is sent; may add headers (traceparent).
  virtual void before_attempt(const attempt_info& info, http::request& req) = 0;
  // After it ended (the result before policy classification).
  virtual void after_attempt(const attempt_info& info, const result<http::response>& outcome) = 0;
};

struct call_spec {
  std::string target;  // policy/metrics key, "kind:name"
  target_policy policy;
  upstream* via = nullptr;  // must outlive the call
  http::url destination;
  http::request request;  // target (path and query) empty: destination.target
  // Instead of `target` (left empty): a key that outlives the call (e.g. an
  // HTTPEndpoint's "endpoint:<name>", built once), so a call copies no string.
  const std::string* stable_target = nullptr;

  const std::string& target_name() const { return stable_target ? *stable_target : target; }
};

struct engine_options {
  // Deadline of a call whose target has no timeout policy.
  nanoseconds default_timeout = std::chrono::seconds(60);
  budget_policy budget;
};

// Per-target state shared by the engines of several threads: the circuit
// breaker, the retry budget and the metric series. Finding a target takes the
// table's lock (an engine caches what it found, with its own shards of the
// target's series and call counts); breaker updates take the target's own lock,
// retry slots are atomic. Thread-safe.
class target_table {
 public:
  // `metrics` must outlive the table (the families are declared here, once).
  explicit target_table(metrics::registry& metrics, budget_policy budget = {});
  ~target_table();
  target_table(const target_table&) = delete;
  target_table& operator=(const target_table&) = delete;

  struct target;
  // The target `name`, created on first use; its breaker is made from the
  // first policy that has one. The reference stays valid as long as the table.
  target& get(const std::string& name, const target_policy& policy, mono_time now);
  // The circuit state of `name` (closed if unknown or without a breaker).
  circuit_breaker::state circuit_state(const std::string& name, mono_time now);
  // Calls in flight over every engine (the sum of their shards).
  std::uint32_t calls_in_flight() const noexcept { return in_flight_.total(); }

  struct families;

 private:
  friend class engine;
  budget_policy budget_;
  std::unique_ptr<families> families_;
  std::mutex mutex_;  // guards targets_ (not the targets themselves)
  std::map<std::string, std::unique_ptr<target>, std::less<>> targets_;
  sharded_call_count in_flight_;  // a shard per engine
};

class engine {
 public:
  // `from_upstream`: the response is the upstream's answer (not one the
  // engine made: timeout, open circuit, transport error).
  // (The response by rvalue reference: each hop of the answer moves it at most once.)
  using done_fn = std::function<void(http::response&&, bool from_upstream)>;

  // `clock`, `random` and `metrics` must outlive the engine. The engine has a
  // target table of its own (with opts.budget).
  engine(clock& clk, random_source& random, metrics::registry& metrics, engine_options opts = {});
  // An engine sharing `targets` with others (opts.budget is ignored: the
  // table's applies).
  engine(clock& clk, random_source& random, std::shared_ptr<target_table> targets,
         engine_options opts = {});
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Runs the call; `done(http::response&&, bool from_upstream)` runs once, on the
  // engine's thread. Any callable (a done_fn too): it is kept in the call's own
  // state, one allocation for both (a std::function holding captures that are not
  // trivially copyable, such as a responder, would allocate again).
  template <class Done>
  void call(call_spec&& spec, Done done);

  struct call_state;
  // The same in two steps, so that the caller builds the spec in place (no call_spec
  // moved into the state: its request and URL cost ~400 instructions to move): make a
  // call's state for `done` (any thread), fill its `spec`, then start() it.
  template <class Done>
  static std::shared_ptr<call_state> make_call(Done done);
  // REQUIRES: `c` made by make_call, not started; on the engine's thread.
  void start(std::shared_ptr<call_state> c);

  // Optional tracing/logging hooks (set before the first call).
  void set_observer(std::shared_ptr<call_observer> observer) { observer_ = std::move(observer); }

  // For tests and /v1.0/metadata: the circuit state of `target` (closed if unknown).
  circuit_breaker::state circuit_state(const std::string& target);
  // Calls in flight on this engine.
  std::uint32_t calls_in_flight() const noexcept { return in_flight_.value(); }

 private:
  template <class Done>
  struct call_with;
  using target_state = target_table::target;
  // How a call ended (the `outcome` label of outrider_ambassador_calls_total).
  enum class outcome : std::uint8_t { success, error, timeout, circuit_open };
  static constexpr std::size_t outcome_count = 4;
  // This engine's part of a target: its shards of the target's metric series and
  // of the retry budget's call count, written only on this engine's thread.
  struct local_target {
    target_state* shared = nullptr;
    call_count_shard* calls = nullptr;  // this engine's calls of the target (retry budget)
    metrics::counter_shard* attempts = nullptr;
    metrics::counter_shard* retries = nullptr;
    metrics::counter_shard* timeouts = nullptr;
    std::array<metrics::counter_shard*, outcome_count> outcomes{};  // made on first use
    metrics::histogram_shard* duration = nullptr;
  };
  local_target& state_of(const std::string& target, const target_policy& policy);
  metrics::counter_shard* outcome_shard(local_target& t, outcome o);
  // `now`: the clock's reading (start()'s for the first attempt: one read fewer).
  void attempt(const std::shared_ptr<call_state>& c, mono_time now);
  // REQUIRES (both): the caller holds a reference to `c`.
  void on_attempt_result(call_state& c, result<http::response>&& r);
  void finish(call_state& c, http::response&& resp, outcome how, bool from_upstream = false);
  // Call deadlines: calls in deadline order per timeout value, one clock timer
  // for the earliest (see engine.cpp).
  struct deadline_queues;
  void watch_deadline(const std::shared_ptr<call_state>& c, nanoseconds timeout);
  void arm_deadline_timer(mono_time at);
  void on_deadline_timer();
  void time_out(const std::shared_ptr<call_state>& c);

  clock& clock_;
  random_source& random_;
  engine_options opts_;
  std::shared_ptr<call_observer> observer_;
  std::shared_ptr<target_table> table_;
  std::unordered_map<std::string, local_target> targets_;  // table_ lookups and shards
  call_count_shard& in_flight_;                            // this engine's in table_
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<deadline_queues> deadlines_;
};

// One call's state, on its engine's thread. The deadline queues, the upstream
// (while an attempt is out: this is the attempt's receiver) and the backoff timer
// hold it.
struct engine::call_state : upstream::receiver {
  call_state() = default;
  explicit call_state(call_spec&& s) : spec(std::move(s)) {}
  call_state(const call_state&) = delete;
  call_state& operator=(const call_state&) = delete;
  ~call_state() override = default;
  // Answers the caller (finish() calls it once; the owner of a call that is never
  // started may call it instead).
  virtual void deliver(http::response&& r, bool from_upstream) = 0;
  // The attempt's answer (upstream::receiver).
  void on_response(result<http::response>&& r) final {
    if (owner == nullptr || !*alive) return;  // the engine is gone
    owner->on_attempt_result(*this, std::move(r));
  }

  call_spec spec;
  engine* owner = nullptr;       // set by start()
  std::shared_ptr<bool> alive;   // the owner's
  std::uint64_t generation = 0;  // the circuit breaker's, of the attempt out
  // The request of the attempt out when a retry may follow (a copy: the observer's
  // per-attempt headers stay out of spec.request); else spec.request is sent.
  std::optional<http::request> attempt_request;
  target_state* target = nullptr;
  local_target* local = nullptr;  // this engine's shards of the target
  mono_time started{};
  mono_time deadline{};
  // Links in the deadline queue of the call's timeout (while it has not finished).
  std::shared_ptr<call_state> next;
  call_state* prev = nullptr;
  std::size_t queue = 0;
  bool queued = false;
  clock::timer_id backoff_timer = 0;
  std::uint32_t attempts = 0;
  bool holds_retry_slot = false;
  bool finished = false;
  std::optional<http::response> last_response;  // the latest failed upstream answer
  std::optional<error> last_error;
};

template <class Done>
struct engine::call_with final : engine::call_state {
  explicit call_with(Done&& d) : done(std::move(d)) {}
  call_with(call_spec&& s, Done&& d) : call_state(std::move(s)), done(std::move(d)) {}
  void deliver(http::response&& r, bool from_upstream) override {
    // Moved out first: what it holds goes once it has run (the call's state may
    // live on while a timed-out attempt is still out).
    Done d = std::move(done);
    d(std::move(r), from_upstream);
  }
  Done done;
};

template <class Done>
void engine::call(call_spec&& spec, Done done) {
  start(std::make_shared<call_with<Done>>(std::move(spec), std::move(done)));
}

template <class Done>
std::shared_ptr<engine::call_state> engine::make_call(Done done) {
  return std::make_shared<call_with<Done>>(std::move(done));
}

// True for methods that may be repeated without changing the outcome (RFC 9110).
bool idempotent_method(std::string_view method) noexcept;

}  // namespace outrider::ambassador
