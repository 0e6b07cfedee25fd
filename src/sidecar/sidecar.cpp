#include "sidecar/sidecar.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "base/json_text.h"
#include "base/json_values.h"
#include "base/log.h"
#include "base/random.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "io/asio_clock.h"
#include "io/runtime.h"
#include "sidecar/cloud_event.h"
#include "sidecar/configuration.h"
#include "sidecar/jobs.h"
#include "sidecar/outbound.h"
#include "sidecar/request_tracing.h"
#include "sidecar/statsd_listener.h"
#include "tracing/exporter.h"
#include "tracing/otlp_receiver.h"
#include "tracing/trace_context.h"
#include "tracing/tracer.h"

namespace outrider::sidecar {
namespace json = boost::json;
using tracing::attr;
namespace {

const log::logger logger{"sidecar"};

constexpr std::string_view token_header = "dapr-api-token";
constexpr std::string_view message_id_header = "outrider-message-id";
constexpr std::string_view message_ids_header = "outrider-message-ids";
constexpr std::string_view original_id_header = "outrider-original-id";
// Unix ms the publisher asked a delayed message to be delivered at (for the delivery span).
constexpr std::string_view scheduled_at_header = "outrider-scheduled-at";
constexpr std::size_t timer_context = 0;
constexpr double max_backoff_exponent = 62;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

http::response error_response(errc code, std::string message) {
  return http::response::from_error(error(code, std::move(message)));
}

std::int64_t unix_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct discard_sink final : tracing::span_sink {
  void export_span(tracing::span&&) override {}
};

}  // namespace

// The state a publish's completion uses, apart from the sidecar's impl. The delivery
// thread writes the impl's control block (a weak_ptr lock per delivery) and its delivery
// state; a publish that touched them would fetch those cache lines from the other core
// (50-300 ns each on this VM) and move them back. Its own allocation on lines of its own;
// written by the API's threads (the counters' cache) and once by the impl's destructor.
struct alignas(64) publish_completion_state {
  publish_completion_state(metrics::histogram* l, metrics::family<metrics::counter>* p,
                           std::size_t components)
      : latency(l),
        publishes(p),
        succeeded(std::make_unique<std::atomic<metrics::counter*>[]>(components)) {}

  // Counts one publish of component `index` (named `pubsub`) as a success or an error.
  void count(std::size_t index, std::string_view pubsub, bool ok) {
    if (!ok) {
      if (auto* c = publishes->with({pubsub, "error"})) c->inc();
      return;
    }
    // The series exists once used, as before; resolved once (a race resolves it twice).
    auto* c = succeeded[index].load(std::memory_order_relaxed);
    if (c == nullptr) {
      c = publishes->with({pubsub, "success"});
      succeeded[index].store(c, std::memory_order_relaxed);
    }
    if (c != nullptr) c->inc();
  }

  std::atomic<bool> stopped{false};  // the impl is gone: answer "sidecar stopped"
  metrics::histogram* latency;
  metrics::family<metrics::counter>* publishes;
  std::unique_ptr<std::atomic<metrics::counter*>[]> succeeded;  // per component
};

// Over-aligned so that the control block make_shared puts before it (written by every
// weak_ptr lock, on both threads) does not share a line with its first members.
struct alignas(64) sidecar::impl : std::enable_shared_from_this<impl> {
  struct sub_state {
    subscription sub;
    pubsub_component* component = nullptr;
    backends::subscription_handle handle = 0;
    bool active = false;
  };
  struct waiting_delivery {
    std::size_t sub_index;
    backends::delivery d;
  };
  enum class outcome { success, retry, drop };

  impl(io::runtime& runtime, sidecar_options o, std::vector<pubsub_component> c,
       metrics::registry& m, io::runtime* delivery_runtime)
      : rt(runtime),
        delivery_rt(delivery_runtime),
        opts(std::move(o)),
        components(std::move(c)),
        reg(m) {
    auto& publishes =
        reg.add_counter("outrider_sidecar_publish_total",
                        "Messages published through the API, by outcome", {"pubsub", "outcome"});
    auto& deliveries = reg.add_counter("outrider_sidecar_deliveries_total",
                                       "Deliveries to the app, by outcome", {"topic", "outcome"});
    publishes_family = &publishes;
    deliveries_family = &deliveries;
    retries = &reg.add_counter("outrider_sidecar_retries_total",
                               "Deliveries settled for a retry after backoff")
                   .get();
    dead_letters = &reg.add_counter("outrider_sidecar_dead_letters_total",
                                    "Messages sent to a dead-letter topic or store")
                        .get();
    dropped = &reg.add_counter("outrider_sidecar_dropped_total",
                               "Messages dropped (DROP/404 without dead-letter topic, expired, "
                               "no matching route)")
                   .get();
    delivery_latency = &reg.add_histogram("outrider_sidecar_delivery_duration_seconds",
                                          "Time the app took to answer a delivery")
                            .get();
    publish_latency = &reg.add_histogram("outrider_sidecar_publish_duration_seconds",
                                         "Time from publish request to durable confirmation")
                           .get();
    app_health_gauge =
        &reg.add_gauge("outrider_sidecar_app_healthy", "1 while the app passes its health checks")
             .get();
    in_flight_gauge = &reg.add_gauge("outrider_sidecar_deliveries_in_flight",
                                     "Deliveries awaiting the app's answer")
                           .get();
    publishes_in_flight_gauge =
        &reg.add_gauge("outrider_sidecar_publishes_in_flight",
                       "Published messages awaiting the backend's confirmation")
             .get();
    app_health_gauge->set(1);
    publish_completion = std::make_shared<publish_completion_state>(
        publish_latency, publishes_family, components.size());
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() { publish_completion->stopped.store(true, std::memory_order_release); }

  io::runtime& rt;
  io::runtime* delivery_rt;  // null: deliveries call the app with `client`
  sidecar_options opts;
  std::vector<pubsub_component> components;
  metrics::registry& reg;
  metrics::family<metrics::counter>* publishes_family;
  metrics::family<metrics::counter>* deliveries_family;
  metrics::counter* retries;
  metrics::counter* dead_letters;
  metrics::counter* dropped;
  metrics::histogram* delivery_latency;
  metrics::histogram* publish_latency;
  metrics::gauge* app_health_gauge;
  metrics::gauge* in_flight_gauge;
  metrics::gauge* publishes_in_flight_gauge;
  // Admission of publishes: messages handed to the backend and not yet answered.
  std::shared_ptr<std::atomic<std::uint32_t>> publishes_in_flight =
      std::make_shared<std::atomic<std::uint32_t>>(0);
  std::shared_ptr<publish_completion_state> publish_completion;

  std::unique_ptr<http::client> client;  // context 0: probes, jobs, notifications (and deliveries)
  std::unique_ptr<http::client> delivery_client;  // delivery_rt's context 0, when given
  std::unique_ptr<io::asio_clock> timers;         // touched on context 0 only
  http::router api;
  http::router metrics_router;
  std::unique_ptr<http::server> server;
  std::unique_ptr<http::server> metrics_server;
  http::url app_url;
  std::unique_ptr<metrics::statsd_sink> statsd_sink;
  std::unique_ptr<statsd_listener> statsd;
  std::unique_ptr<configuration_stores> configuration;
  std::unique_ptr<outbound> ambassador;  // invocation, bindings, forward proxy
  std::shared_ptr<jobs_service> jobs;    // on the first component's backend

  // Tracing (null when off). The tracer reads time from `timers`.
  std::shared_ptr<tracing::exporter> exporter;
  std::unique_ptr<tracing::tracer> tracer;
  std::unique_ptr<tracing::tracer> probe_tracer;  // health probes: tracing.probeSampling
  http::router otlp_router;
  std::unique_ptr<http::server> otlp_server;

  // The delivery state, written by the delivery thread: on cache lines of its own, away
  // from the members the API's threads read per publish (tracer, components, opts).
  alignas(64) mutable std::mutex mutex;
  std::condition_variable drained;
  std::vector<sub_state> subs;  // fixed once subscribed_ is true
  std::deque<waiting_delivery> waiting;
  std::size_t in_flight = 0;
  bool subscribed = false;
  bool healthy = true;
  bool stopping = false;
  bool started = false;
  std::uint32_t probe_failures = 0;
  clock::timer_id probe_timer = 0;

  pubsub_component* find_component(std::string_view name) {
    for (auto& c : components) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

  void count_publish(std::string_view pubsub, std::string_view outcome_name) {
    if (auto* c = publishes_family->with({pubsub, outcome_name})) c->inc();
  }
  void count_delivery(std::string_view topic, std::string_view outcome_name) {
    if (auto* c = deliveries_family->with({topic, outcome_name})) c->inc();
  }

  // Runs `fn` on context 0 (timers, app client) if the sidecar still exists.
  void on_timer_context(std::function<void(impl&)> fn) {
    rt.post(timer_context, [weak = weak_from_this(), fn = std::move(fn)] {
      if (auto self = weak.lock()) fn(*self);
    });
  }
  void after(nanoseconds delay, std::function<void(impl&)> fn) {
    on_timer_context([delay, fn = std::move(fn)](impl& self) mutable {
      self.timers->call_after(delay, [weak = self.weak_from_this(), fn = std::move(fn)] {
        if (auto s = weak.lock()) fn(*s);
      });
    });
  }

  // ---------------- API ----------------

  http::handler guard(http::handler h, bool open) {
    if (opts.api_token.empty() || open) return h;
    return [this, h = std::move(h)](http::request&& req, http::responder r) {
      auto got = req.headers.get(token_header);
      if (!got || *got != opts.api_token) {
        r.send(error_response(errc::unauthenticated, "missing or invalid dapr-api-token header"));
        return;
      }
      h(std::move(req), std::move(r));
    };
  }

  // ---------------- tracing ----------------

  void inject(http::fields& headers, const tracing::active_span& span) const {
    inject_context(headers, span, opts.tracing.emit_b3);
  }

  // A CLIENT span for a call the sidecar makes to its app on its own account
  // (subscription discovery, configuration updates, health probes): the root
  // of a trace of its own, whose context goes to the app in traceparent.
  tracing::active_span start_app_call(const tracing::tracer* t, http::request& req) const {
    if (t == nullptr) return {};
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    const joined_name name(req.method, path);
    auto span = t->start_span(name.view(), tracing::span_kind::client, nullptr);
    if (span.recording()) {
      span.set(attr::http_request_method, req.method);
      span.set(attr::server_address, opts.app_host);
      span.set(attr::server_port, static_cast<std::int64_t>(opts.app_port));
      span.set(attr::url_full,
               "http://" + opts.app_host + ":" + std::to_string(opts.app_port) + req.target);
    }
    inject(req.headers, span);
    return span;
  }

  static void finish_app_call(tracing::active_span& span, const result<http::response>& res) {
    if (!span.recording()) return;
    if (res) {
      set_error_from_status(span, res->status, false);
    } else {
      span.set(attr::error_type, res.error().info().name);
      span.set_error(res.error().message);
    }
    span.end();
  }

  // Tracing hook of the ambassador (invocation, bindings, proxy): one CLIENT
  // span per attempt, a child of the context the request carries (the SERVER
  // span of the inbound call), so retries are sibling CLIENT spans numbered by
  // http.request.resend_count. The engine calls both hooks on its thread;
  // attempts of one call are sequential, so the call's destination object
  // (stable for its lifetime) keys the span in flight.
  class trace_observer final : public ambassador::call_observer {
   public:
    explicit trace_observer(impl& owner) : owner_(owner) {}
    void before_attempt(const ambassador::attempt_info& info, http::request& req) override {
      auto parent = incoming_context(req.headers);
      std::string target(info.target);
      auto span =
          owner_.tracer->start_span(joined_name(req.method, target).view(),
                                    tracing::span_kind::client, parent ? &*parent : nullptr);
      if (span.recording()) {
        span.set(attr::http_request_method, req.method);
        span.set(attr::outrider_target, target);
        if (info.destination != nullptr) {
          span.set(attr::server_address, info.destination->host);
          span.set(attr::server_port, static_cast<std::int64_t>(info.destination->port));
          span.set(attr::url_full, info.destination->origin() + req.target);
        }
        if (info.attempt > 1) {
          span.set(attr::http_request_resend_count, static_cast<std::int64_t>(info.attempt - 1));
        }
      }
      owner_.inject(req.headers, span);
      std::lock_guard lock(mutex_);
      spans_[info.destination] = std::move(span);
    }
    void after_attempt(const ambassador::attempt_info& info,
                       const result<http::response>& outcome) override {
      tracing::active_span span;
      {
        std::lock_guard lock(mutex_);
        auto it = spans_.find(info.destination);
        if (it == spans_.end()) return;
        span = std::move(it->second);
        spans_.erase(it);
      }
      if (outcome) {
        set_error_from_status(span, outcome->status, false);
      } else {
        span.set(attr::error_type, outcome.error().info().name);
        span.set_error(outcome.error().message);
      }
      span.end();
    }

   private:
    impl& owner_;
    std::mutex mutex_;
    std::unordered_map<const http::url*, tracing::active_span> spans_;
  };

  // A SERVER span around every API call (health checks excepted): a child of
  // the caller's traceparent/tracestate or b3, a new trace otherwise. While
  // the handler runs, the span's context is in server_span_scope (a publish's
  // PRODUCER span is its child) and, but for publishes, which pass no headers
  // on, in the request headers (what the handler sends on continues the trace).
  http::handler traced(http::handler inner) {
    return [self = this, inner = std::move(inner)](http::request&& req, http::responder r) {
      if (!self->tracer || req.path.starts_with("/v1.0/healthz")) {
        inner(std::move(req), std::move(r));
        return;
      }
      auto span = start_server_span(*self->tracer, req, self->opts.listen_host,
                                    self->server ? self->server->port() : 0,
                                    self->opts.tracing.emit_b3, !passes_no_headers_on(req.path));
      // `span` keeps the context while the handler runs; its recording goes to the responder.
      const server_span_scope scope(span.context());
      inner(std::move(req), ending_on_response(span.take_recording(), std::move(r)));
    };
  }

  // The PRODUCER span of a publish: a child of the request's context (the
  // SERVER span's, from server_span_scope while the handler runs in traced()). Its context is the
  // message's creation context: stored in the message headers and CloudEvent once, never changed
  // afterwards.
  tracing::active_span start_producer(const http::fields& headers, const pubsub_component& comp,
                                      std::string_view topic, const wall_time* start = nullptr) {
    if (!tracer) return {};
    return start_producer_span(*tracer, headers, comp.type, comp.name, topic, start);
  }

  // Delayed messages carry the time they were scheduled for, so the delivery
  // span can record the lag.
  static void mark_scheduled(backends::message& m) {
    if (m.deliver_at > wall_time{}) {
      m.headers.emplace_back(scheduled_at_header, std::to_string(unix_ms(m.deliver_at)));
    }
  }

  // Creates the exporter and tracer when an endpoint is configured, and the
  // app's OTLP receiver route. Errors: config_invalid.
  status start_tracing() {
    const auto& t = opts.tracing;
    if (t.consumer_parent != "child" && t.consumer_parent != "link") {
      return error(errc::config_invalid,
                   "tracing.consumerParent must be child or link, not '" + t.consumer_parent + "'");
    }
    if (!(t.sampling >= 0 && t.sampling <= 1)) {
      return error(errc::config_invalid, "--trace-sampling must be between 0 and 1");
    }
    if (!(t.probe_sampling >= 0 && t.probe_sampling <= 1)) {
      return error(errc::config_invalid, "--trace-probe-sampling must be between 0 and 1");
    }
    if (!t.endpoint.empty()) {
      tracing::exporter_options eo;
      eo.endpoint = t.endpoint;
      eo.protocol = tracing::guess_export_protocol(t.endpoint);
      if (!t.protocol.empty()) {
        auto p = tracing::parse_export_protocol(t.protocol);
        if (!p) return p.error();
        eo.protocol = *p;
      }
      eo.max_queue = std::max<std::uint32_t>(1, t.max_queue);
      eo.max_batch = std::max<std::uint32_t>(1, t.max_batch);
      exporter = std::make_shared<tracing::exporter>(eo, tracing::make_http_transport(), &reg);
      OUTRIDER_TRY(exporter->start());
      tracing::tracer_options to;
      to.service_name = opts.app_id;
      to.sampling = t.sampling;
      to.scope_name = "outrider-sidecar";
      to.scope_version = opts.runtime_version;
      to.resource_attributes.push_back(
          {"outrider.component", tracing::attribute_value::of("sidecar")});
      auto probe_to = to;
      probe_to.sampling = t.probe_sampling;
      auto clk = std::make_shared<io::asio_clock>(rt.context(timer_context));
      tracer = std::make_unique<tracing::tracer>(std::move(to), exporter, clk);
      probe_tracer = std::make_unique<tracing::tracer>(std::move(probe_to), exporter, clk);
    }
    if (t.app_otlp_port != 0) {
      otlp_router.add(
          "POST", "/v1/traces", [weak = weak_from_this()](http::request&& req, http::responder r) {
            auto self = weak.lock();
            if (!self) {
              r.send(error_response(errc::shutting_down, "sidecar stopped"));
              return;
            }
            discard_sink discard;  // tracing off: accept and discard
            r.send(self->exporter ? tracing::receive_otlp_traces(std::move(req), *self->exporter)
                                  : tracing::receive_otlp_traces(std::move(req), discard));
          });
    }
    return ok_status();
  }

  void routes() {
    auto self = this;
    api.add("POST", "/v1.0/publish/{pubsub}/{topic}",
            guard([self](http::request&& q, http::responder r) { self->publish(std::move(q), r); },
                  false));
    api.add(
        "POST", "/v1.0-alpha1/publish/bulk/{pubsub}/{topic}",
        guard([self](http::request&& q, http::responder r) { self->publish_bulk(std::move(q), r); },
              false));
    api.add("DELETE", "/v1.0-alpha1/outrider/scheduled/{pubsub}/{id}",
            guard([self](http::request&& q, http::responder r) { self->cancel(std::move(q), r); },
                  false));
    api.add("GET", "/v1.0/healthz",
            guard([self](http::request&&, http::responder r) { self->healthz(r, false); }, true));
    api.add("GET", "/v1.0/healthz/outbound",
            guard([self](http::request&&, http::responder r) { self->healthz(r, true); }, true));
    api.add("GET", "/v1.0/metadata",
            guard(http::sync_handler([self](const http::request&) { return self->metadata(); }),
                  false));
    if (configuration) configuration_routes();
    if (jobs) {
      for (std::string_view base : {"/v1.0-alpha1/jobs/{name}", "/v1.0/jobs/{name}"}) {
        for (const char* method : {"POST", "GET", "DELETE"}) {
          api.add(method, std::string(base),
                  guard([j = jobs](http::request&& q,
                                   http::responder r) { j->handle(std::move(q), r); },
                        false));
        }
      }
    }
    metrics_router.add_sync("GET", "/metrics", [self](const http::request&) {
      return http::response::with_body(200, self->reg.expose(), "text/plain; version=0.0.4");
    });
  }

  // Dapr's configuration API, stable and alpha paths (see configuration.h).
  void configuration_routes() {
    auto* c = configuration.get();
    for (std::string_view base : {"/v1.0/configuration/", "/v1.0-alpha1/configuration/"}) {
      const std::string b(base);
      api.add("GET", b + "{store}",
              guard(http::sync_handler([c](const http::request& q) { return c->handle_get(q); }),
                    false));
      api.add(
          "GET", b + "{store}/subscribe",
          guard(http::sync_handler([c](const http::request& q) { return c->handle_subscribe(q); }),
                false));
      api.add("GET", b + "{store}/{id}/unsubscribe",
              guard(http::sync_handler(
                        [c](const http::request& q) { return c->handle_unsubscribe(q); }),
                    false));
    }
  }

  // Re-reads file configuration stores every configuration_poll (context 0).
  void poll_configuration() {
    configuration->poll();
    after(opts.configuration_poll, [](impl& self) {
      if (!self.stopping_now()) self.poll_configuration();
    });
  }

  // A configuration change notification to the app (context 0).
  void notify_configuration(std::string path, std::string body) {
    if (opts.app_port == 0) return;
    http::request req;
    req.method = "POST";
    req.target = std::move(path);
    req.headers.set("content-type", "application/json");
    if (!opts.app_api_token.empty()) req.headers.set(token_header, opts.app_api_token);
    req.body = std::move(body);
    const std::string target = req.target;
    auto span = std::make_shared<tracing::active_span>(start_app_call(tracer.get(), req));
    client->send(app_url, std::move(req), opts.app_timeout,
                 [target, span](result<http::response> r) {
                   finish_app_call(*span, r);
                   if (!r) {
                     logger.warn("configuration update {} not delivered to the app: {}", target,
                                 r.error().message);
                   } else if (r->status / 100 != 2) {
                     logger.warn("app answered {} to configuration update {}", r->status, target);
                   }
                 });
  }

  bool stopping_now() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  result<publish_metadata> query_metadata(const http::request& req, wall_time now) {
    auto pairs = http::parse_query(req.query);
    if (!pairs) {
      return error(errc::malformed_request, "bad query string: " + pairs.error().message);
    }
    return parse_publish_metadata(*pairs, now);
  }

  envelope_input envelope_for(const http::request& req, std::string_view pubsub,
                              std::string_view topic, wall_time now) {
    envelope_input in;
    in.app_id = opts.app_id;
    in.pubsub_name = std::string(pubsub);
    in.topic = std::string(topic);
    in.content_type = std::string(req.headers.get("content-type").value_or(""));
    in.traceparent = std::string(req.headers.get("traceparent").value_or(""));
    in.tracestate = std::string(req.headers.get("tracestate").value_or(""));
    in.message_id = id128::time_ordered(now);
    in.now = now;
    return in;
  }

  static std::string publish_failure(std::string_view topic, std::string_view pubsub,
                                     const error& e) {
    return "error when publishing to topic " + std::string(topic) + " in pubsub " +
           std::string(pubsub) + ": " + std::string(e.info().name) + ": " + e.message;
  }

  // A publish the backend refused: Dapr's 500 ERR_PUBSUB_PUBLISH_MESSAGE, but
  // 503 with Retry-After when the backend is unavailable (broker unreachable):
  // nothing was accepted, the app should retry.
  static http::response publish_error(std::string message, bool unavailable) {
    auto resp = error_response(errc::pubsub_publish_message, std::move(message));
    if (unavailable) {
      resp.status = 503;
      resp.headers.set("Retry-After", "1");
    }
    return resp;
  }

  // `n` publishes in flight until the ticket is dropped (its holder is the
  // backend's callback). Admitted while the total stays within
  // max_publishes_in_flight, or when nothing is in flight (so one bulk larger
  // than the limit still goes through alone). A single publish's PRODUCER span
  // travels to the callback in it (no allocation of its own).
  struct publish_ticket {
    publish_ticket(std::shared_ptr<std::atomic<std::uint32_t>> c, std::uint32_t k,
                   metrics::gauge* g)
        : count(std::move(c)), n(k), gauge(g) {}
    ~publish_ticket() { release(); }
    // When the backend answered (its callback object may live on).
    void release() {
      if (n == 0) return;
      count->fetch_sub(n, std::memory_order_relaxed);
      gauge->add(-static_cast<double>(n));
      n = 0;
    }
    publish_ticket(const publish_ticket&) = delete;
    publish_ticket& operator=(const publish_ticket&) = delete;
    std::shared_ptr<std::atomic<std::uint32_t>> count;
    std::uint32_t n;
    metrics::gauge* gauge;         // the registry outlives the sidecar
    tracing::span_recording span;  // ended by the callback (or with the ticket)
  };

  std::shared_ptr<publish_ticket> admit_publish(std::uint32_t n) {
    auto& count = *publishes_in_flight;
    std::uint32_t now = count.load(std::memory_order_relaxed);
    do {
      if (now != 0 && (now + n > opts.max_publishes_in_flight || now + n < now)) return nullptr;
    } while (!count.compare_exchange_weak(now, now + n, std::memory_order_relaxed));
    publishes_in_flight_gauge->add(static_cast<double>(n));
    return std::make_shared<publish_ticket>(publishes_in_flight, n, publishes_in_flight_gauge);
  }

  // 429 + Retry-After: the sidecar already holds max_publishes_in_flight
  // publishes the backend has not confirmed; nothing was accepted.
  http::response publish_refused(std::string_view pubsub) {
    count_publish(pubsub, "rejected");
    auto resp =
        error_response(errc::resource_exhausted,
                       fmt::format("too many publishes in flight (the limit is {}, "
                                   "--max-publishes-in-flight); nothing was published, retry later",
                                   opts.max_publishes_in_flight));
    resp.headers.set("Retry-After", "1");
    return resp;
  }

  void publish(http::request&& req, http::responder r) {
    const std::string pubsub(req.params.at("pubsub"));
    const std::string topic(req.params.at("topic"));
    auto* comp = find_component(pubsub);
    if (comp == nullptr) {
      r.send(error_response(errc::pubsub_not_found, "pubsub " + pubsub + " not found"));
      return;
    }
    auto ticket = admit_publish(1);
    if (!ticket) {
      r.send(publish_refused(pubsub));
      return;
    }
    const wall_time now = std::chrono::system_clock::now();
    auto meta = query_metadata(req, now);
    if (!meta) {
      r.send(http::response::from_error(meta.error()));
      return;
    }
    auto in = envelope_for(req, pubsub, topic, now);
    in.body = std::move(req.body);
    auto producer =
        start_producer(req.headers, *comp, topic, &now);  // starts as the CloudEvent's time
    if (tracer) {
      producer.traceparent_into(in.traceparent);
      in.tracestate = producer.tracestate();
    }
    message_id_text id_text;
    auto msg = build_message(std::move(in), *meta, &id_text);
    if (!msg) {
      producer.set_error(msg.error().message);
      r.send(http::response::from_error(msg.error()));
      return;
    }
    mark_scheduled(*msg);
    note_message(producer, *msg, std::string_view(id_text.data(), id_text.size()));
    const auto started_at = std::chrono::steady_clock::now();
    std::vector<backends::message> batch;
    batch.push_back(std::move(*msg));
    // The completion touches its own state, not the impl (publish_completion_state).
    if (producer.recording()) ticket->span = producer.take_recording();
    const auto index = static_cast<std::size_t>(comp - components.data());
    comp->backend->publish(
        std::move(batch), [state = publish_completion, index, r, pubsub, topic, started_at,
                           ticket](result<std::vector<backends::publish_outcome>> res) {
          ticket->release();
          tracing::span_recording& span = ticket->span;  // not recording when tracing is off
          if (state->stopped.load(std::memory_order_acquire)) {
            span.set_error("sidecar stopped");
            r.send(error_response(errc::shutting_down, "sidecar stopped"));
            return;
          }
          const status st = !res ? status(res.error()) : res->at(0).outcome;
          if (!st) {
            span.set_error(st.error().message);
            span.end();
            state->count(index, pubsub, false);
            r.send(publish_error(publish_failure(topic, pubsub, st.error()),
                                 st.error().code == errc::unavailable));
            return;
          }
          state->latency->observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count());
          state->count(index, pubsub, true);
          span.end();
          auto resp = http::response::no_content();
          resp.headers.set(message_id_header, res->at(0).id.to_string());
          r.send(std::move(resp));
        });
  }

  void publish_bulk(http::request&& req, http::responder r) {
    const std::string pubsub(req.params.at("pubsub"));
    const std::string topic(req.params.at("topic"));
    auto* comp = find_component(pubsub);
    if (comp == nullptr) {
      r.send(error_response(errc::pubsub_not_found, "pubsub " + pubsub + " not found"));
      return;
    }
    const wall_time now = std::chrono::system_clock::now();
    auto query = http::parse_query(req.query);
    if (!query) {
      r.send(error_response(errc::malformed_request, "bad query string: " + query.error().message));
      return;
    }
    boost::system::error_code ec;
    json::value doc = json::parse(req.body, ec);
    if (ec || !doc.is_array() || has_non_finite_number(doc)) {
      r.send(error_response(errc::pubsub_events_ser,
                            "error when unmarshaling the request for topic " + topic + " pubsub " +
                                pubsub + ": " +
                                (ec                ? ec.message()
                                 : !doc.is_array() ? "expected a JSON array"
                                                   : "a number is out of the range of a double")));
      return;
    }
    std::vector<backends::message> batch;
    std::vector<std::string> entry_ids;
    auto producer = start_producer(req.headers, *comp, topic);
    for (const auto& item : doc.get_array()) {
      const auto* o = item.if_object();
      const json::value* entry_id = o ? o->if_contains("entryId") : nullptr;
      const json::value* event = o ? o->if_contains("event") : nullptr;
      if (entry_id == nullptr || !entry_id->is_string() || entry_id->get_string().empty() ||
          event == nullptr) {
        r.send(error_response(errc::pubsub_events_ser,
                              "entry " + std::to_string(batch.size()) +
                                  ": each entry needs a non-empty \"entryId\" and an \"event\""));
        return;
      }
      // Query metadata applies to every entry; an entry's own metadata wins.
      std::vector<std::pair<std::string, std::string>> pairs = *query;
      if (const auto* m = o->if_contains("metadata"); m != nullptr && m->is_object()) {
        for (const auto& kv : m->get_object()) {
          pairs.emplace_back("metadata." + std::string(kv.key()),
                             kv.value().is_string() ? std::string(kv.value().get_string())
                                                    : json::serialize(kv.value()));
        }
      }
      auto meta = parse_publish_metadata(pairs, now);
      if (!meta) {
        r.send(http::response::from_error(
            error(meta.error().code,
                  "entry " + std::string(entry_id->get_string()) + ": " + meta.error().message)));
        return;
      }
      auto in = envelope_for(req, pubsub, topic, now);
      const auto* ct = o->if_contains("contentType");
      in.content_type =
          (ct != nullptr && ct->is_string()) ? std::string(ct->get_string()) : std::string();
      in.body = event->is_string() ? std::string(event->get_string()) : json::serialize(*event);
      if (in.content_type.empty()) {
        in.content_type = event->is_string() ? "text/plain" : "application/json";
      }
      if (tracer) {
        producer.traceparent_into(in.traceparent);
        in.tracestate = producer.tracestate();
      }
      auto msg = build_message(std::move(in), *meta);
      if (!msg) {
        r.send(http::response::from_error(
            error(msg.error().code,
                  "entry " + std::string(entry_id->get_string()) + ": " + msg.error().message)));
        return;
      }
      mark_scheduled(*msg);
      batch.push_back(std::move(*msg));
      entry_ids.emplace_back(entry_id->get_string());
    }
    if (producer.recording()) {
      producer.set(attr::messaging_batch_message_count, static_cast<std::int64_t>(batch.size()));
    }
    if (batch.empty()) {
      r.send(http::response::no_content());
      return;
    }
    auto ticket = admit_publish(static_cast<std::uint32_t>(batch.size()));
    if (!ticket) {
      r.send(publish_refused(pubsub));
      return;
    }
    comp->backend->publish(
        std::move(batch),
        [weak = weak_from_this(), r, pubsub, topic, entry_ids = std::move(entry_ids), ticket,
         span = std::make_shared<tracing::active_span>(std::move(producer))](
            result<std::vector<backends::publish_outcome>> res) {
          ticket->release();
          auto self = weak.lock();
          json::array failed;
          json::object ids;
          bool all_unavailable = true;  // nothing accepted, all for want of the backend
          for (std::size_t i = 0; i < entry_ids.size(); ++i) {
            status st = !res ? status(res.error()) : res->at(i).outcome;
            if (st && self) {
              ids[entry_ids[i]] = res->at(i).id.to_string();
              self->count_publish(pubsub, "success");
              all_unavailable = false;
            } else {
              const error e = st ? error(errc::shutting_down, "sidecar stopped") : st.error();
              if (e.code != errc::unavailable) all_unavailable = false;
              failed.push_back(json::object{{"entryId", entry_ids[i]},
                                            {"error", publish_failure(topic, pubsub, e)}});
              if (self) self->count_publish(pubsub, "error");
            }
          }
          if (!failed.empty()) {
            span->set_error(std::to_string(failed.size()) + " of " +
                            std::to_string(entry_ids.size()) + " entries failed");
          }
          span->end();
          if (failed.empty()) {
            auto resp = http::response::no_content();
            resp.headers.set(message_ids_header, json::serialize(ids));
            r.send(std::move(resp));
            return;
          }
          json::object body{{"failedEntries", std::move(failed)},
                            {"errorCode", "ERR_PUBSUB_PUBLISH_MESSAGE"},
                            {"messageIds", std::move(ids)}};
          // As for a single publish: 503 with Retry-After when the backend was unreachable for
          // every entry (nothing accepted; retry the whole batch), else Dapr's 500.
          auto resp = http::response::json(
              all_unavailable ? 503 : describe(errc::pubsub_publish_message).http_status,
              json::serialize(body));
          if (all_unavailable) resp.headers.set("Retry-After", "1");
          r.send(std::move(resp));
        });
  }

  void cancel(http::request&& req, http::responder r) {
    const std::string pubsub(req.params.at("pubsub"));
    auto* comp = find_component(pubsub);
    if (comp == nullptr) {
      r.send(error_response(errc::pubsub_not_found, "pubsub " + pubsub + " not found"));
      return;
    }
    auto id = id128::parse(req.params.at("id"));
    if (!id) {
      r.send(error_response(errc::invalid_argument,
                            "'" + std::string(req.params.at("id")) +
                                "' is not a message id (26 characters, as returned in "
                                "outrider-message-id)"));
      return;
    }
    comp->backend->cancel_scheduled(*id, [r](status st) {
      r.send(st ? http::response::no_content() : http::response::from_error(st.error()));
    });
  }

  void healthz(http::responder r, bool outbound) {
    // Ready when every backend answers healthy and, for the inbound check,
    // subscriptions are established and the app passes its health checks.
    struct join {
      explicit join(http::responder resp) : r(std::move(resp)) {}
      std::mutex m;
      std::size_t left = 0;
      std::string problem;
      http::responder r;
    };
    std::string local_problem;
    if (!outbound) {
      std::lock_guard lock(mutex);
      if (!subscribed)
        local_problem = "subscriptions not established (waiting for the app)";
      else if (!healthy)
        local_problem = "the app fails its health checks";
    }
    auto state = std::make_shared<join>(r);
    state->left = components.size();
    state->problem = std::move(local_problem);
    for (auto& c : components) {
      c.backend->health([state, name = c.name](status st) {
        std::lock_guard lock(state->m);
        if (!st && state->problem.empty()) {
          state->problem = "pubsub " + name + ": " + st.error().message;
        }
        if (--state->left == 0) {
          state->r.send(state->problem.empty()
                            ? http::response::no_content()
                            : error_response(errc::health_not_ready, state->problem));
        }
      });
    }
  }

  http::response metadata() {
    json::object doc;
    doc["id"] = opts.app_id;
    doc["runtimeVersion"] = opts.runtime_version;
    doc["enabledFeatures"] = json::array{"DelayedPublish", "CancelScheduled"};
    doc["actors"] = json::array{};
    json::array comps;
    for (const auto& c : components) {
      comps.push_back(json::object{{"name", c.name},
                                   {"type", "pubsub." + c.type},
                                   {"version", "v1"},
                                   {"capabilities", json::array{}}});
    }
    if (ambassador) {
      for (const auto& b : ambassador->output_bindings()) {
        comps.push_back(json::object{{"name", b.name},
                                     {"type", b.type},
                                     {"version", "v1"},
                                     {"capabilities", json::array{"OUTPUT_BINDING"}}});
      }
    }
    doc["components"] = std::move(comps);
    json::array subs_json;
    {
      std::lock_guard lock(mutex);
      for (const auto& s : subs) {
        json::array rules;
        for (const auto& rule : s.sub.rules) {
          rules.push_back(json::object{{"match", rule.match}, {"path", rule.path}});
        }
        if (!s.sub.route.empty()) {
          rules.push_back(json::object{{"match", ""}, {"path", s.sub.route}});
        }
        json::object meta;
        for (const auto& [k, v] : s.sub.metadata) meta[k] = v;
        subs_json.push_back(json::object{
            {"pubsubname", s.sub.pubsub_name},
            {"topic", s.sub.topic},
            {"metadata", std::move(meta)},
            {"rules", std::move(rules)},
            {"deadLetterTopic", s.sub.dead_letter_topic},
            {"type", lower(s.sub.kind) == "declarative" ? "DECLARATIVE" : "PROGRAMMATIC"}});
      }
    }
    doc["subscriptions"] = std::move(subs_json);
    json::array endpoints;
    if (ambassador) {
      for (const auto& name : ambassador->http_endpoints()) {
        endpoints.push_back(json::object{{"name", name}});
      }
    }
    doc["httpEndpoints"] = std::move(endpoints);
    doc["extended"] = json::object{{"appHealthy", healthy_now() ? "true" : "false"}};
    json::object app{{"port", opts.app_port},
                     {"protocol", "http"},
                     {"channelAddress", opts.app_host},
                     {"maxConcurrency", opts.max_in_flight}};
    if (opts.app_health.enabled) {
      app["health"] = json::object{
          {"healthCheckPath", opts.app_health.path},
          {"healthProbeInterval",
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(opts.app_health.interval)
                   .count()) +
               "ms"},
          {"healthThreshold", opts.app_health.threshold}};
    }
    doc["appConnectionProperties"] = std::move(app);
    return http::response::json(200, json::serialize(doc));
  }

  bool healthy_now() const {
    std::lock_guard lock(mutex);
    return healthy;
  }

  // ---------------- subscriptions ----------------

  void discover() {
    if (opts.app_port == 0) {
      subscribe_all({});
      return;
    }
    http::request req;
    req.method = "GET";
    req.target = "/dapr/subscribe";
    add_app_headers(req);
    auto span = std::make_shared<tracing::active_span>(start_app_call(tracer.get(), req));
    client->send(
        app_url, std::move(req), opts.app_timeout,
        [weak = weak_from_this(), span](result<http::response> res) {
          finish_app_call(*span, res);
          auto self = weak.lock();
          if (!self || self->is_stopping()) return;
          if (!res) {
            logger.debug("app not answering /dapr/subscribe yet: {}", res.error().message);
            self->after(self->opts.subscribe_retry_interval, [](impl& s) { s.discover(); });
            return;
          }
          std::vector<subscription> found;
          if (res->status >= 200 && res->status < 300 && !res->body.empty()) {
            auto parsed = parse_subscriptions_json(res->body);
            if (!parsed) {
              logger.error("ignoring the app's /dapr/subscribe answer: {}", parsed.error().message);
            } else {
              found = std::move(*parsed);
            }
          } else if (res->status != 404 && (res->status < 200 || res->status >= 300)) {
            logger.warn("the app answered /dapr/subscribe with {}", res->status);
          }
          self->subscribe_all(std::move(found));
        });
  }

  bool is_stopping() const {
    std::lock_guard lock(mutex);
    return stopping;
  }

  void subscribe_all(std::vector<subscription> programmatic) {
    std::vector<sub_state> all;
    auto add = [&](subscription s) {
      auto* comp = find_component(s.pubsub_name);
      if (comp == nullptr) {
        logger.error("subscription to topic '{}' names unknown pubsub '{}'; skipped", s.topic,
                     s.pubsub_name);
        return;
      }
      all.push_back(sub_state{std::move(s), comp, 0, false});
    };
    for (auto& s : programmatic) add(std::move(s));
    for (const auto& s : opts.subscriptions) add(s);
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      subs = std::move(all);
    }
    consume_all();
  }

  // Starts a consumer for every subscription not consuming yet.
  void consume_all() {
    std::vector<std::pair<std::size_t, backends::subscription_spec>> todo;
    std::vector<backends::backend*> backend_of;
    {
      std::lock_guard lock(mutex);
      if (stopping || !healthy) return;
      for (std::size_t i = 0; i < subs.size(); ++i) {
        if (subs[i].active) continue;
        subs[i].active = true;
        todo.emplace_back(i, backends::subscription_spec{
                                 subs[i].sub.topic, opts.app_id, opts.retry.max_attempts,
                                 opts.lease, std::max<std::uint32_t>(1, opts.max_in_flight)});
        backend_of.push_back(subs[i].component->backend.get());
      }
      if (todo.empty()) {
        subscribed = true;
        return;
      }
    }
    auto remaining = std::make_shared<std::atomic<std::size_t>>(todo.size());
    for (std::size_t k = 0; k < todo.size(); ++k) {
      const std::size_t index = todo[k].first;
      backend_of[k]->subscribe(
          todo[k].second,
          [weak = weak_from_this(), index](backends::delivery d) {
            if (auto self = weak.lock()) self->on_delivery(index, std::move(d));
          },
          [weak = weak_from_this(), index, remaining](result<backends::subscription_handle> h) {
            auto self = weak.lock();
            if (!self) return;
            bool last = remaining->fetch_sub(1) == 1;
            std::lock_guard lock(self->mutex);
            if (!h) {
              logger.error("subscribing to topic '{}' failed: {}; retrying",
                           self->subs[index].sub.topic, h.error().message);
              self->subs[index].active = false;
              self->after(self->opts.subscribe_retry_interval, [](impl& s) { s.consume_all(); });
              return;
            }
            self->subs[index].handle = *h;
            if (last) {
              bool all_active = true;
              for (const auto& s : self->subs) all_active = all_active && s.active;
              self->subscribed = all_active;
            }
          });
    }
  }

  // Stops every consumer; the backend releases their unsettled deliveries.
  void unsubscribe_all() {
    std::vector<std::pair<backends::backend*, backends::subscription_handle>> handles;
    {
      std::lock_guard lock(mutex);
      for (auto& s : subs) {
        if (s.active && s.handle != 0) {
          handles.emplace_back(s.component->backend.get(), s.handle);
        }
        s.active = false;
        s.handle = 0;
      }
      waiting.clear();  // their deliveries are released by the unsubscribe
    }
    for (auto& [b, h] : handles) {
      b->unsubscribe(h, [](status st) {
        if (!st) logger.debug("unsubscribe: {}", st.error().message);
      });
    }
  }

  // ---------------- delivery ----------------

  void add_app_headers(http::request& req) {
    if (!opts.app_api_token.empty()) {
      req.headers.set(token_header, opts.app_api_token);
    }
  }

  void on_delivery(std::size_t index, backends::delivery d) {
    {
      std::unique_lock lock(mutex);
      if (!stopping && healthy && in_flight < opts.max_in_flight) {
        ++in_flight;
        in_flight_gauge->set(static_cast<double>(in_flight));
      } else if (!stopping) {
        waiting.push_back({index, std::move(d)});
        return;
      } else {
        lock.unlock();
        settle(index, d, backends::settle_action::release());
        return;
      }
    }
    dispatch(index, std::move(d));
  }

  const subscription& sub_of(std::size_t index) {
    std::lock_guard lock(mutex);
    return subs[index].sub;
  }
  backends::backend& backend_of(std::size_t index) {
    std::lock_guard lock(mutex);
    return *subs[index].component->backend;
  }

  void settle(std::size_t index, const backends::delivery& d, backends::settle_action a) {
    backend_of(index).settle(d.handle, a, [id = d.id](status st) {
      if (!st) {
        logger.debug("settling message {}: {}", id.to_string(), st.error().message);
      }
    });
  }

  struct delivery_spans {
    tracing::active_span consumer;
    tracing::active_span client;
  };

  // The CONSUMER span of a delivery (a child of the message's creation
  // context, or with tracing.consumerParent=link the root of a new trace
  // linked to it) and the CLIENT span of the call to the app under it.
  std::shared_ptr<delivery_spans> start_delivery_spans(const subscription& sub,
                                                       const backends::delivery& d,
                                                       std::string_view path) {
    auto spans = std::make_shared<delivery_spans>();
    tracing::carrier_headers carrier;
    if (const auto* tp = backends::find_header(d.headers, header_traceparent)) {
      carrier.traceparent = *tp;
    }
    if (const auto* ts = backends::find_header(d.headers, header_tracestate)) {
      carrier.tracestate = *ts;
    }
    const auto creation = tracing::extract_context(carrier);
    const bool as_link = opts.tracing.consumer_parent == "link";
    const wall_time now = tracer->time_source().now();
    spans->consumer =
        tracer->start_span(joined_name("process", sub.topic).view(), tracing::span_kind::consumer,
                           creation && !as_link ? &*creation : nullptr);
    auto& c = spans->consumer;
    if (c.recording()) {
      if (creation && as_link) c.add_link(*creation);
      const auto* comp = find_component(sub.pubsub_name);
      c.set(attr::messaging_system, messaging_system(comp != nullptr ? comp->type : ""));
      c.set(attr::messaging_destination_name, sub.topic);
      c.set(attr::messaging_operation_type, "process");
      c.set(attr::messaging_operation_name, "process");
      c.set(attr::messaging_message_id, d.id);
      c.set(attr::messaging_consumer_group_name, opts.app_id);
      c.set(attr::messaging_message_body_size, static_cast<std::int64_t>(d.body.size()));
      c.set(attr::outrider_pubsub_name, sub.pubsub_name);
      c.set(attr::outrider_message_attempt, static_cast<std::int64_t>(d.attempt));
      if (d.published_at > wall_time{}) {
        c.set(attr::outrider_message_published_time_ms, unix_ms(d.published_at));
      }
      if (const auto* at = backends::find_header(d.headers, scheduled_at_header)) {
        std::int64_t scheduled = 0;
        std::from_chars(at->data(), at->data() + at->size(), scheduled);
        if (scheduled > 0) {
          c.set(attr::outrider_message_scheduled_time_ms, scheduled);
          c.set(attr::outrider_message_delivered_time_ms, unix_ms(now));
          c.set(attr::outrider_message_delivery_lag_ms, unix_ms(now) - scheduled);
        }
      }
    }
    spans->client = tracer->start_span(joined_name("POST", path).view(), tracing::span_kind::client,
                                       &c.context());
    auto& call = spans->client;
    if (call.recording()) {
      call.set(attr::http_request_method, "POST");
      call.set(attr::server_address, opts.app_host);
      call.set(attr::server_port, static_cast<std::int64_t>(opts.app_port));
      call.set(attr::url_full,
               "http://" + opts.app_host + ":" + std::to_string(opts.app_port) + std::string(path));
      call.set(attr::outrider_message_attempt, static_cast<std::int64_t>(d.attempt));
    }
    return spans;
  }

  static std::string_view outcome_name(outcome o) {
    switch (o) {
      case outcome::success: return "success";
      case outcome::retry: return "retry";
      case outcome::drop: return "drop";
    }
    return "retry";
  }

  static void finish_delivery_spans(delivery_spans& spans, const result<http::response>& res,
                                    outcome o) {
    if (res) {
      set_error_from_status(spans.client, res->status, false);
    } else {
      spans.client.set(attr::error_type, res.error().info().name);
      spans.client.set_error(res.error().message);
    }
    spans.client.end();
    spans.consumer.set(attr::outrider_delivery_outcome, outcome_name(o));
    if (o != outcome::success) {
      spans.consumer.set_error("the app answered " + std::string(outcome_name(o)));
    }
    spans.consumer.end();
  }

  void dispatch(std::size_t index, backends::delivery d) {
    const subscription& sub = sub_of(index);
    if (const auto* exp = backends::find_header(d.headers, header_expires_at)) {
      std::int64_t ms = 0;
      std::from_chars(exp->data(), exp->data() + exp->size(), ms);
      const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      if (ms > 0 && now_ms >= ms) {
        logger.info("message {} on topic '{}' expired; dropped", d.id.to_string(), sub.topic);
        dropped->inc();
        count_delivery(sub.topic, "expired");
        settle(index, d, backends::settle_action::ack());
        finish();
        return;
      }
    }
    const auto* raw_header = backends::find_header(d.headers, header_raw_payload);
    const bool raw = raw_header != nullptr && *raw_header == "true";
    const std::string path = raw ? sub.route : sub.routes.select(d.body);
    if (path.empty()) {
      logger.warn("message {} on topic '{}' matches no route; dropped", d.id.to_string(),
                  sub.topic);
      dropped->inc();
      count_delivery(sub.topic, "no_route");
      settle(index, d, backends::settle_action::ack());
      finish();
      return;
    }
    http::request req;
    req.method = "POST";
    req.target = path;
    const auto* ct = backends::find_header(d.headers, header_content_type);
    req.headers.set("content-type",
                    raw && ct != nullptr ? *ct : std::string(cloudevents_content_type));
    std::shared_ptr<delivery_spans> spans;
    if (tracer) {
      spans = start_delivery_spans(sub, d, path);
      inject(req.headers, spans->client);  // the app continues the trace under our CLIENT span
    } else {
      for (auto name : {header_traceparent, header_tracestate}) {
        if (const auto* v = backends::find_header(d.headers, name)) req.headers.set(name, *v);
      }
    }
    req.headers.set("pubsubname", sub.pubsub_name);
    req.headers.set("topic", sub.topic);
    add_app_headers(req);
    req.body = d.body;
    const auto started_at = std::chrono::steady_clock::now();
    (delivery_client ? delivery_client : client)
        ->send(app_url, std::move(req), opts.app_timeout,
               [weak = weak_from_this(), index, d = std::move(d), started_at,
                spans = std::move(spans)](result<http::response> res) mutable {
                 auto self = weak.lock();
                 if (!self) return;
                 self->delivery_latency->observe(
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at)
                         .count());
                 const outcome o = classify(res);
                 if (spans) finish_delivery_spans(*spans, res, o);
                 self->conclude(index, std::move(d), o);
               });
  }

  static outcome classify(const result<http::response>& res) {
    if (!res) return outcome::retry;
    if (res->status == 404) return outcome::drop;
    if (res->status < 200 || res->status >= 300) return outcome::retry;
    if (res->body.empty()) return outcome::success;
    boost::system::error_code ec;
    json::value v = json::parse(res->body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const json::value* st = o ? o->if_contains("status") : nullptr;
    if (st == nullptr || !st->is_string() || st->get_string().empty()) {
      return outcome::success;  // as Dapr: no status (or not JSON) with a 2xx is SUCCESS
    }
    const std::string s = lower(std::string_view(st->get_string()));
    if (s == "success") return outcome::success;
    if (s == "drop") return outcome::drop;
    return outcome::retry;  // RETRY and anything unknown
  }

  nanoseconds backoff(std::uint32_t attempt) const {
    const double exponent = std::min<double>(attempt > 0 ? attempt - 1 : 0, max_backoff_exponent);
    double ns = static_cast<double>(opts.retry.initial.count()) *
                std::pow(std::max(1.0, opts.retry.multiplier), exponent);
    ns = std::min(ns, static_cast<double>(opts.retry.max.count()));
    const double spread = std::clamp(opts.retry.jitter, 0.0, 1.0);
    ns *= 1.0 + spread * (2.0 * thread_random().unit() - 1.0);
    return nanoseconds(static_cast<std::int64_t>(std::max(0.0, ns)));
  }

  void conclude(std::size_t index, backends::delivery d, outcome o) {
    const subscription& sub = sub_of(index);
    switch (o) {
      case outcome::success:
        count_delivery(sub.topic, "success");
        settle(index, d, backends::settle_action::ack());
        break;
      case outcome::retry:
        if (opts.retry.max_attempts > 0 && d.attempt >= opts.retry.max_attempts) {
          count_delivery(sub.topic, "dead_letter");
          dead_letter(index, std::move(d));
          return;  // finish() after the dead-letter publish
        }
        count_delivery(sub.topic, "retry");
        retries->inc();
        settle(index, d, backends::settle_action::retry_after(backoff(d.attempt)));
        break;
      case outcome::drop:
        if (!sub.dead_letter_topic.empty()) {
          count_delivery(sub.topic, "dead_letter");
          dead_letter(index, std::move(d));
          return;
        }
        logger.warn("message {} on topic '{}' dropped by the app", d.id.to_string(), sub.topic);
        count_delivery(sub.topic, "drop");
        dropped->inc();
        settle(index, d, backends::settle_action::ack());
        break;
    }
    finish();
  }

  // To the subscription's dead-letter topic if it has one (then ack), else to
  // the backend's dead-letter store. A failed dead-letter publish retries the
  // delivery, so nothing is lost.
  void dead_letter(std::size_t index, backends::delivery d) {
    const subscription& sub = sub_of(index);
    dead_letters->inc();
    if (sub.dead_letter_topic.empty()) {
      settle(index, d, backends::settle_action::dead_letter());
      finish();
      return;
    }
    backends::message m;
    m.topic = sub.dead_letter_topic;
    m.headers = d.headers;
    m.headers.emplace_back(original_id_header, d.id.to_string());
    m.body = d.body;
    std::vector<backends::message> batch;
    batch.push_back(std::move(m));
    backend_of(index).publish(
        std::move(batch), [weak = weak_from_this(), index,
                           d = std::move(d)](result<std::vector<backends::publish_outcome>> res) {
          auto self = weak.lock();
          if (!self) return;
          const bool ok = res && res->at(0).outcome.ok();
          if (ok) {
            self->settle(index, d, backends::settle_action::ack());
          } else {
            logger.warn("dead-letter publish for message {} failed; retrying the delivery",
                        d.id.to_string());
            self->settle(index, d, backends::settle_action::retry_after(self->backoff(d.attempt)));
          }
          self->finish();
        });
  }

  // A delivery is done: start waiting ones while there is room.
  void finish() {
    std::vector<waiting_delivery> next;
    {
      std::lock_guard lock(mutex);
      --in_flight;
      while (!stopping && healthy && !waiting.empty() && in_flight < opts.max_in_flight) {
        next.push_back(std::move(waiting.front()));
        waiting.pop_front();
        ++in_flight;
      }
      in_flight_gauge->set(static_cast<double>(in_flight));
      if (in_flight == 0) drained.notify_all();
    }
    for (auto& w : next) dispatch(w.sub_index, std::move(w.d));
  }

  // ---------------- app health ----------------

  void probe() {
    http::request req;
    req.method = "GET";
    req.target = opts.app_health.path;
    add_app_headers(req);
    auto span = std::make_shared<tracing::active_span>(start_app_call(probe_tracer.get(), req));
    client->send(app_url, std::move(req), opts.app_health.timeout,
                 [weak = weak_from_this(), span](result<http::response> res) {
                   finish_app_call(*span, res);
                   auto self = weak.lock();
                   if (!self || self->is_stopping()) return;
                   self->probe_result(res && res->status >= 200 && res->status < 300);
                   self->probe_timer = self->timers->call_after(self->opts.app_health.interval,
                                                                [weak = self->weak_from_this()] {
                                                                  if (auto s = weak.lock())
                                                                    s->probe();
                                                                });
                 });
  }

  void probe_result(bool ok) {
    bool became_healthy = false;
    bool became_unhealthy = false;
    {
      std::lock_guard lock(mutex);
      if (ok) {
        probe_failures = 0;
        became_healthy = !healthy;
        healthy = true;
      } else if (++probe_failures >= opts.app_health.threshold && healthy) {
        healthy = false;
        became_unhealthy = true;
      }
    }
    if (became_unhealthy) {
      logger.warn("app failed {} health checks in a row; pausing deliveries", probe_failures);
      app_health_gauge->set(0);
      unsubscribe_all();
    } else if (became_healthy) {
      logger.info("app healthy again; resuming deliveries");
      app_health_gauge->set(1);
      consume_all();
    }
  }
};

sidecar::sidecar(io::runtime& rt, sidecar_options options, std::vector<pubsub_component> components,
                 metrics::registry& metrics, io::runtime* delivery_rt)
    : impl_(std::make_shared<impl>(rt, std::move(options), std::move(components), metrics,
                                   delivery_rt)) {
  OUTRIDER_ASSERT(!impl_->components.empty(), "a sidecar needs a pub/sub component");
}

sidecar::~sidecar() {
  stop();
}

status sidecar::start() {
  impl& s = *impl_;
  for (const auto& sub : s.opts.subscriptions) {
    if (s.find_component(sub.pubsub_name) == nullptr) {
      return error(errc::config_invalid, "declarative subscription to topic '" + sub.topic +
                                             "' names unknown pubsub '" + sub.pubsub_name + "'");
    }
  }
  s.app_url.scheme = "http";
  s.app_url.host = s.opts.app_host;
  s.app_url.port = s.opts.app_port;
  s.app_url.target = "/";
  s.client = std::make_unique<http::client>(s.rt.context(timer_context));
  if (s.delivery_rt != nullptr) {
    s.delivery_client = std::make_unique<http::client>(s.delivery_rt->context(0));
  }
  s.timers = std::make_unique<io::asio_clock>(s.rt.context(timer_context));
  OUTRIDER_TRY(s.start_tracing());
  if (!s.opts.configuration_stores.empty()) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
    s.configuration = std::make_unique<configuration_stores>(
        s.opts.configuration_stores, io::posix_file_system(), std::move(env),
        [weak = std::weak_ptr<impl>(impl_)](std::string path, std::string body) {
          if (auto self = weak.lock()) self->notify_configuration(std::move(path), std::move(body));
        });
    OUTRIDER_TRY(s.configuration->load());
  }
  if (!s.components.empty() && s.components.front().backend) {
    jobs_options jo;
    jo.app_id = s.opts.app_id;
    jo.app_api_token = s.opts.app_api_token;
    jo.app_timeout = s.opts.app_timeout;
    jo.lease = s.opts.lease;
    jo.max_in_flight = std::max<std::uint32_t>(1, s.opts.max_in_flight);
    s.jobs = std::make_shared<jobs_service>(
        *s.components.front().backend, *s.client, s.app_url, std::move(jo), s.tracer.get(), s.reg,
        [] { return std::chrono::system_clock::now(); },
        [weak = std::weak_ptr<impl>(impl_)](nanoseconds delay, std::function<void()> fn) {
          if (auto self = weak.lock()) self->after(delay, [fn = std::move(fn)](impl&) { fn(); });
        });
  }
  s.routes();
  if (s.opts.max_connections == 0)
    return error(errc::config_invalid, "--max-connections must be at least 1");
  if (s.opts.max_publishes_in_flight == 0)
    return error(errc::config_invalid, "--max-publishes-in-flight must be at least 1");
  http::server_options so;
  so.listen = s.opts.listen_host + ":" + std::to_string(s.opts.http_port);
  so.body_limit = s.opts.max_body.bytes;
  so.header_limit = s.opts.max_header_bytes;
  so.max_connections = s.opts.max_connections;
  so.stream_request = outbound::streams_request;  // large invocation bodies flow through
  so.stream_body_limit = s.opts.max_stream_body.bytes;
  s.ambassador =
      std::make_unique<outbound>(s.rt, outbound_options_for(s.opts, s.app_url, so), s.reg);
  if (s.tracer) s.ambassador->set_observer(std::make_shared<impl::trace_observer>(s));
  OUTRIDER_TRY(s.ambassador->start());
  s.ambassador->add_routes(s.api, [&s](http::handler h) { return s.guard(std::move(h), false); });
  s.server =
      std::make_unique<http::server>(s.rt, so, s.traced(s.ambassador->wrap(s.api.as_handler())));
  OUTRIDER_TRY(s.server->start());
  if (s.opts.serve_metrics) {
    http::server_options mo;
    mo.listen = s.opts.listen_host + ":" + std::to_string(s.opts.metrics_port);
    s.metrics_server = std::make_unique<http::server>(s.rt, mo, s.metrics_router.as_handler());
    if (auto st = s.metrics_server->start(); !st) {
      s.server->stop(nanoseconds{});
      return st;
    }
  }
  if (s.opts.tracing.app_otlp_port != 0) {
    http::server_options oo;
    oo.listen = s.opts.listen_host + ":" + std::to_string(s.opts.tracing.app_otlp_port);
    oo.body_limit = tracing::default_max_otlp_body;
    s.otlp_server = std::make_unique<http::server>(s.rt, oo, s.otlp_router.as_handler());
    if (auto st = s.otlp_server->start(); !st) {
      s.server->stop(nanoseconds{});
      if (s.metrics_server) s.metrics_server->stop(nanoseconds{});
      return st;
    }
  }
  if (s.opts.statsd.enabled) {
    s.statsd_sink = std::make_unique<metrics::statsd_sink>(
        s.reg, metrics::statsd_options{"app_", s.opts.statsd.max_metrics,
                                       s.opts.statsd.max_series_per_metric});
    s.statsd = std::make_unique<statsd_listener>(s.rt.context(timer_context), *s.statsd_sink);
    if (auto st = s.statsd->start(s.opts.listen_host, s.opts.statsd.port); !st) {
      if (s.otlp_server) s.otlp_server->stop(nanoseconds{});
      s.server->stop(nanoseconds{});
      if (s.metrics_server) s.metrics_server->stop(nanoseconds{});
      return st;
    }
  }
  s.started = true;
  if (s.jobs) s.jobs->start();
  if (s.configuration) {
    s.after(s.opts.configuration_poll, [](impl& self) { self.poll_configuration(); });
  }
  s.on_timer_context([](impl& self) {
    self.discover();
    if (self.opts.app_health.enabled && self.opts.app_port != 0) self.probe();
  });
  logger.info("sidecar for app '{}' listening on {}", s.opts.app_id, s.server->address());
  return ok_status();
}

void sidecar::stop() {
  impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.stopping) return;
    s.stopping = true;
  }
  if (!s.started) return;
  s.server->stop(s.opts.shutdown_grace);
  if (s.metrics_server) s.metrics_server->stop(nanoseconds{});
  if (s.statsd) s.statsd->stop();
  s.ambassador->stop();
  // Deliveries not started yet go back at once; those in flight get the grace period.
  std::deque<impl::waiting_delivery> waiting;
  {
    std::lock_guard lock(s.mutex);
    waiting.swap(s.waiting);
  }
  for (auto& w : waiting) s.settle(w.sub_index, w.d, backends::settle_action::release());
  {
    std::unique_lock lock(s.mutex);
    s.drained.wait_for(lock, s.opts.shutdown_grace, [&] { return s.in_flight == 0; });
  }
  s.unsubscribe_all();  // releases whatever is still unsettled
  if (s.jobs) s.jobs->stop();
  if (s.otlp_server) s.otlp_server->stop(nanoseconds{});
  if (s.exporter) s.exporter->stop();  // flushes queued spans (bounded)
  // Timers and the client live on context 0: destroy them there.
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  s.rt.post(timer_context, [&] {
    if (s.probe_timer != 0) s.timers->cancel(s.probe_timer);
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lock(m);
  cv.wait_for(lock, s.opts.shutdown_grace, [&] { return done; });
}

std::uint16_t sidecar::http_port() const {
  return impl_->server ? impl_->server->port() : 0;
}
std::uint16_t sidecar::app_otlp_port() const {
  return impl_->otlp_server ? impl_->otlp_server->port() : 0;
}
std::uint16_t sidecar::metrics_port() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : 0;
}
std::uint16_t sidecar::statsd_port() const {
  return impl_->statsd ? impl_->statsd->port() : 0;
}
bool sidecar::subscribed() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->subscribed;
}
bool sidecar::app_healthy() const {
  return impl_->healthy_now();
}

}  // namespace outrider::sidecar
