// jobs: Dapr's jobs building block (/v1.0-alpha1/jobs/{name}, /v1.0/jobs/{name})
// on the backend's durable scheduled messages. docs/sidecar-api.md "Jobs" is
// the user's view; this is the design.
//
// Per app, one internal topic "outrider.jobs.<app id>" with one durable
// subscription (competing consumers: all replicas of the app share it, so
// each firing reaches one replica). It holds two kinds of messages:
//  - the job's *definition*: id = job_definition_id(app, name), scheduled
//    ~200 years ahead so it never fires; its body (JSON) is the job as given
//    plus its incarnation (a random id per create/overwrite), creation and
//    expiry times. It is the job table: GET peeks it by id, DELETE cancels it,
//    a create without overwrite is refused because the id is pending.
//  - *firings*: id = job_firing_id(incarnation, occurrence), scheduled at the
//    occurrence's due time (the broker never delivers early, and keeps them
//    across restarts of either process).
// A delivered firing is checked against the definition (gone or another
// incarnation: a deleted or overwritten job; acknowledged without calling the
// app), then the app gets POST /job/{name} with the job's data. 2xx: done;
// otherwise the failure policy (constant: redelivered after `interval` up to
// `maxRetries` times; drop: none). Then the next occurrence is published (its
// id is deterministic, so a redelivered firing does not schedule it twice
// while it is pending) and the firing acknowledged; after the last one the
// definition is cancelled, as Dapr deletes finished jobs. At least once: a
// firing whose acknowledgement is lost is delivered again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "backends/backend.h"
#include "base/clock.h"
#include "base/id.h"
#include "base/result.h"
#include "http/client.h"
#include "http/handler.h"
#include "sidecar/job_schedule.h"

namespace outrider::tracing {
class tracer;
}

namespace outrider::metrics {
class registry;
}

namespace outrider::sidecar {

struct job_failure_policy {
  bool drop = false;
  // Retries after the first failed call; nullopt: unlimited.
  std::optional<std::uint32_t> max_retries = 3;
  nanoseconds interval = std::chrono::seconds(1);
};

// A job as stored in its definition message.
struct job_definition {
  std::string name;
  std::optional<std::string> data;  // JSON text of "data"
  std::string schedule;             // as given ("" if none)
  std::string due_time;             // as given
  std::string ttl;                  // as given
  std::optional<std::uint32_t> repeats;
  job_failure_policy policy;
  bool policy_given = false;
  id128 incarnation;
  wall_time created{};
  wall_time first_due{};
  std::optional<wall_time> expires;
};

// Parses a schedule request (the JSON body of POST .../jobs/{name}); sets
// `overwrite`. Errors (Dapr's codes): job_name_empty, job_name (bad characters,
// or a "name" in the body that differs), job_request_empty (body not a JSON
// object, bad repeats/ttl/failurePolicy), job_schedule_empty (neither
// schedule nor dueTime, or one does not parse, or no occurrence at all).
result<job_definition> parse_job_request(std::string_view name, std::string_view body,
                                         wall_time now, bool& overwrite);

// The stored form and back. decode errors: data_corruption.
std::string encode_job_definition(const job_definition& job);
result<job_definition> decode_job_definition(std::string_view body);

// The job as Dapr's GET returns it: name, schedule, dueTime, repeats, ttl,
// data, failurePolicy (those that were given).
std::string job_to_dapr_json(const job_definition& job);

// Stable ids (FNV-1a based; the same in every build and process).
id128 job_definition_id(std::string_view app_id, std::string_view name);
id128 job_firing_id(const id128& incarnation, std::uint64_t occurrence);

// When occurrence `occurrence` (1-based) fired at `due`: the due time of the
// next one, or nullopt when the job is finished (one-shot, repeats reached,
// ttl passed). Occurrences missed while `now` ran past them are skipped (no
// burst of catch-up firings). `schedule` null: no schedule (one-shot).
std::optional<wall_time> next_job_occurrence(const job_definition& job,
                                             const job_schedule* schedule, std::uint64_t occurrence,
                                             wall_time due, wall_time now);

struct jobs_options {
  std::string app_id;
  std::string app_api_token;  // sent as dapr-api-token to the app when set
  nanoseconds app_timeout = std::chrono::seconds(60);
  nanoseconds lease = std::chrono::seconds(60);
  nanoseconds broker_retry = std::chrono::seconds(1);  // after a backend error
  std::uint32_t max_in_flight = 16;
};

// The jobs API and the firing consumer of one sidecar. Thread-safe.
class jobs_service : public std::enable_shared_from_this<jobs_service> {
 public:
  using clock_fn = std::function<wall_time()>;
  // Runs `fn` after `delay` (the sidecar's timers).
  using after_fn = std::function<void(nanoseconds delay, std::function<void()> fn)>;

  jobs_service(backends::backend& backend, http::client& client, http::url app_url,
               jobs_options options, const tracing::tracer* tracer, metrics::registry& metrics,
               clock_fn now, after_fn after);

  static std::string topic_for(std::string_view app_id);

  // Subscribes to the app's jobs topic (retrying until it works).
  void start();
  // Stops consuming; in-flight firings are released. Idempotent.
  void stop();
  bool ready() const noexcept { return subscribed_.load(); }

  // POST, GET and DELETE on .../jobs/{name}.
  void handle(http::request&& req, const http::responder& r);

 private:
  struct firing;
  void subscribe();
  void schedule_job(http::request&& req, const http::responder& r);
  void get_job(std::string name, const http::responder& r);
  void delete_job(std::string name, const http::responder& r);
  void publish_definition(job_definition job, const http::responder& r);
  void on_delivery(backends::delivery d);
  void call_app(std::shared_ptr<firing> f);
  void finish_firing(std::shared_ptr<firing> f, bool succeeded);
  void settle(const backends::delivery& d, backends::settle_action a);

  backends::backend& backend_;
  http::client& client_;
  http::url app_url_;
  jobs_options opts_;
  const tracing::tracer* tracer_;
  clock_fn now_;
  after_fn after_;
  std::string topic_;
  std::atomic<bool> subscribed_{false};
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  backends::subscription_handle handle_ = 0;
  std::string unsupported_;  // the backend has no jobs capability: why
  struct counters;
  std::shared_ptr<counters> counters_;
};

}  // namespace outrider::sidecar
