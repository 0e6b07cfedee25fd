#include "sidecar/jobs.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <fmt/core.h>
#include <limits>
#include <utility>
#include <vector>

#include "base/json_values.h"
#include "base/log.h"
#include "base/time_format.h"
#include "metrics/registry.h"
#include "tracing/tracer.h"

namespace outrider::sidecar {
namespace json = boost::json;

namespace {

const log::logger logger{"jobs"};

constexpr std::string_view kind_header = "outrider-job-kind";
constexpr std::string_view name_header = "outrider-job-name";
constexpr std::size_t max_name_length = 256;
// Definitions are scheduled this far ahead: never due in practice.
constexpr auto definition_horizon = std::chrono::hours(24 * 365 * 200);

error err(errc code, std::string message) {
  return error(code, std::move(message));
}

std::int64_t to_ns(wall_time t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}
wall_time from_ns(std::int64_t ns) {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(nanoseconds(ns)));
}

bool valid_name(std::string_view name) {
  if (name.size() > max_name_length) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == ':' || c == '~';
  });
}

std::uint64_t fnv1a(std::string_view text, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A JSON field under either spelling (Dapr's docs use both camelCase and snake_case).
const json::value* field(const json::object& o, std::string_view camel, std::string_view snake) {
  if (const auto* v = o.if_contains(camel)) return v;
  if (!snake.empty()) return o.if_contains(snake);
  return nullptr;
}

result<std::string> string_field(const json::object& o, std::string_view camel,
                                 std::string_view snake) {
  const auto* v = field(o, camel, snake);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) {
    return err(errc::job_request_empty, fmt::format("'{}' must be a string", camel));
  }
  return std::string(v->get_string());
}

result<job_failure_policy> parse_policy(const json::value& v) {
  job_failure_policy p;
  const auto* o = v.if_object();
  if (o == nullptr) return err(errc::job_request_empty, "'failurePolicy' must be an object");
  if (o->contains("drop")) {
    p.drop = true;
    return p;
  }
  const auto* c = o->if_contains("constant");
  if (c == nullptr || !c->is_object()) {
    return err(errc::job_request_empty,
               "'failurePolicy' needs \"constant\": {interval, maxRetries} or \"drop\": {}");
  }
  const auto& co = c->get_object();
  p.max_retries.reset();  // unset: unlimited, as Dapr
  if (const auto* m = field(co, "maxRetries", "max_retries"); m != nullptr && !m->is_null()) {
    if (!m->is_int64() && !m->is_uint64()) {
      return err(errc::job_request_empty, "failurePolicy maxRetries must be an integer");
    }
    const auto n = m->is_int64() ? m->get_int64() : static_cast<std::int64_t>(m->get_uint64());
    if (n < 0 || n > std::numeric_limits<std::uint32_t>::max()) {
      return err(errc::job_request_empty, "failurePolicy maxRetries is out of range");
    }
    p.max_retries = static_cast<std::uint32_t>(n);
  }
  p.interval = nanoseconds(0);  // unset: retry at once, as Dapr
  if (const auto* i = co.if_contains("interval"); i != nullptr && !i->is_null()) {
    if (!i->is_string()) {
      return err(errc::job_request_empty, "failurePolicy interval must be a duration string");
    }
    auto d = parse_duration(std::string_view(i->get_string()));
    if (!d) {
      return err(errc::job_request_empty,
                 fmt::format("failurePolicy interval: {}", d.error().message));
    }
    p.interval = *d;
  }
  return p;
}

json::object policy_json(const job_failure_policy& p) {
  json::object o;
  if (p.drop) {
    o["drop"] = json::object{};
    return o;
  }
  json::object c;
  c["interval"] = format_duration(p.interval);
  if (p.max_retries) c["maxRetries"] = *p.max_retries;
  o["constant"] = std::move(c);
  return o;
}

}  // namespace

// ---------------- the job model ----------------

result<job_definition> parse_job_request(std::string_view name, std::string_view body,
                                         wall_time now, bool& overwrite) {
  overwrite = false;
  if (name.empty()) return err(errc::job_name_empty, "the job name is empty");
  if (!valid_name(name)) {
    return err(errc::job_name,
               fmt::format("job name '{}' is invalid: use at most {} letters, digits and -_.:~",
                           name, max_name_length));
  }
  if (body.empty()) return err(errc::job_request_empty, "the request body is empty");
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return err(errc::job_request_empty, "the request body must be a JSON object");
  }
  if (has_non_finite_number(doc)) {
    return err(errc::job_request_empty,
               "the request body has a number out of the range of a double");
  }
  const auto& o = doc.get_object();
  job_definition job;
  job.name = std::string(name);
  if (const auto* n = o.if_contains("name"); n != nullptr && !n->is_null()) {
    if (!n->is_string() || n->get_string() != name) {
      return err(errc::job_name, "the body names another job; set the name in the URL only");
    }
  }
  if (const auto* d = o.if_contains("data"); d != nullptr) job.data = json::serialize(*d);
  auto schedule = string_field(o, "schedule", "");
  if (!schedule) return std::move(schedule).error();
  job.schedule = std::move(*schedule);
  auto due = string_field(o, "dueTime", "due_time");
  if (!due) return std::move(due).error();
  job.due_time = std::move(*due);
  auto ttl = string_field(o, "ttl", "");
  if (!ttl) return std::move(ttl).error();
  job.ttl = std::move(*ttl);
  if (const auto* r = o.if_contains("repeats"); r != nullptr && !r->is_null()) {
    std::int64_t n = -1;
    if (r->is_int64()) n = r->get_int64();
    if (r->is_uint64() && r->get_uint64() <= std::numeric_limits<std::uint32_t>::max()) {
      n = static_cast<std::int64_t>(r->get_uint64());
    }
    if (n < 0 || n > std::numeric_limits<std::uint32_t>::max()) {
      return err(errc::job_request_empty, "'repeats' must be a non-negative integer");
    }
    if (n > 0) job.repeats = static_cast<std::uint32_t>(n);
  }
  if (const auto* ow = o.if_contains("overwrite"); ow != nullptr && !ow->is_null()) {
    if (!ow->is_bool()) return err(errc::job_request_empty, "'overwrite' must be a boolean");
    overwrite = ow->get_bool();
  }
  if (const auto* p = field(o, "failurePolicy", "failure_policy"); p != nullptr && !p->is_null()) {
    auto policy = parse_policy(*p);
    if (!policy) return std::move(policy).error();
    job.policy = *policy;
    job.policy_given = true;
  }
  if (job.schedule.empty() && job.due_time.empty()) {
    return err(errc::job_schedule_empty, "the job needs a schedule, a dueTime or both");
  }
  job.created = now;
  std::optional<job_schedule> sched;
  if (!job.schedule.empty()) {
    auto s = job_schedule::parse(job.schedule);
    if (!s) return err(errc::job_schedule_empty, "schedule: " + s.error().message);
    sched = *s;
  } else if (job.repeats && *job.repeats > 1) {
    return err(errc::job_schedule_empty,
               "'repeats' above 1 needs a schedule; a job with only a dueTime fires once");
  }
  if (!job.ttl.empty()) {
    auto t = parse_job_time(job.ttl, now);
    if (!t) return err(errc::job_request_empty, "ttl: " + t.error().message);
    job.expires = *t;
  }
  if (!job.due_time.empty()) {
    auto t = parse_job_time(job.due_time, now);
    if (!t) return err(errc::job_schedule_empty, "dueTime: " + t.error().message);
    job.first_due = std::max(*t, now);
  } else {
    auto first = sched->next(now);
    if (!first) return err(errc::job_schedule_empty, "the schedule never comes due");
    job.first_due = *first;
  }
  if (job.expires && job.first_due >= *job.expires) {
    return err(errc::job_request_empty, "the job's ttl ends before its first occurrence");
  }
  return job;
}

std::string encode_job_definition(const job_definition& job) {
  json::object o;
  o["name"] = job.name;
  if (job.data) o["data"] = *job.data;
  o["schedule"] = job.schedule;
  o["dueTime"] = job.due_time;
  o["ttl"] = job.ttl;
  if (job.repeats) o["repeats"] = *job.repeats;
  if (job.policy_given) o["failurePolicy"] = policy_json(job.policy);
  o["incarnation"] = job.incarnation.to_hex();
  o["createdNs"] = to_ns(job.created);
  o["firstDueNs"] = to_ns(job.first_due);
  if (job.expires) o["expiresNs"] = to_ns(*job.expires);
  return json::serialize(o);
}

result<job_definition> decode_job_definition(std::string_view body) {
  auto corrupt = [](std::string what) {
    return err(errc::data_corruption, "job definition: " + std::move(what));
  };
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) return corrupt("not a JSON object");
  const auto& o = doc.get_object();
  job_definition job;
  auto str = [&](std::string_view key) -> std::string {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto ns = [&](std::string_view key) -> std::optional<std::int64_t> {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_int64()) return std::nullopt;
    return v->get_int64();
  };
  job.name = str("name");
  if (job.name.empty()) return corrupt("no name");
  if (const auto* d = o.if_contains("data"); d != nullptr && d->is_string()) {
    job.data = std::string(d->get_string());
  }
  job.schedule = str("schedule");
  job.due_time = str("dueTime");
  job.ttl = str("ttl");
  if (const auto* r = o.if_contains("repeats"); r != nullptr) {
    if (r->is_int64() && r->get_int64() > 0)
      job.repeats = static_cast<std::uint32_t>(r->get_int64());
    if (r->is_uint64()) job.repeats = static_cast<std::uint32_t>(r->get_uint64());
  }
  if (const auto* p = o.if_contains("failurePolicy"); p != nullptr) {
    auto policy = parse_policy(*p);
    if (!policy) return corrupt(policy.error().message);
    job.policy = *policy;
    job.policy_given = true;
  }
  auto inc = id128::parse_hex(str("incarnation"));
  auto created = ns("createdNs");
  auto first = ns("firstDueNs");
  if (!inc || !created || !first) return corrupt("no incarnation or times");
  job.incarnation = *inc;
  job.created = from_ns(*created);
  job.first_due = from_ns(*first);
  if (auto e = ns("expiresNs")) job.expires = from_ns(*e);
  return job;
}

std::string job_to_dapr_json(const job_definition& job) {
  json::object o;
  o["name"] = job.name;
  if (!job.schedule.empty()) o["schedule"] = job.schedule;
  if (!job.due_time.empty()) o["dueTime"] = job.due_time;
  if (job.repeats) o["repeats"] = *job.repeats;
  if (!job.ttl.empty()) o["ttl"] = job.ttl;
  if (job.data) {
    boost::system::error_code ec;
    json::value d = json::parse(*job.data, ec);
    o["data"] = ec ? json::value(*job.data) : std::move(d);
  }
  if (job.policy_given) o["failurePolicy"] = policy_json(job.policy);
  return json::serialize(o);
}

id128 job_definition_id(std::string_view app_id, std::string_view name) {
  std::string key(app_id);
  key += '\0';
  key += name;
  return id128{fnv1a(key, 0xcbf29ce484222325ULL), fnv1a(key, 0x84222325cbf29ce4ULL) | 1U};
}

id128 job_firing_id(const id128& incarnation, std::uint64_t occurrence) {
  // Mix the occurrence into both halves; the low bit 0 keeps firings apart
  // from definitions (low bit 1).
  const std::uint64_t mix = (occurrence + 1) * 0x9e3779b97f4a7c15ULL;
  return id128{incarnation.high ^ mix, (incarnation.low + (mix << 1)) & ~std::uint64_t{1}};
}

std::optional<wall_time> next_job_occurrence(const job_definition& job,
                                             const job_schedule* schedule, std::uint64_t occurrence,
                                             wall_time due, wall_time now) {
  if (schedule == nullptr) return std::nullopt;
  if (job.repeats && occurrence >= *job.repeats) return std::nullopt;
  std::optional<wall_time> next;
  if (schedule->is_interval()) {
    next = schedule->next(due);
    if (*next <= now) {
      // Skip missed intervals in one step, keeping the phase.
      const auto period = *schedule->next(wall_time{}) - wall_time{};
      const auto behind = now - *next;
      next = *next + period * (behind / period + 1);
    }
  } else {
    next = schedule->next(std::max(due, now));
  }
  if (!next) return std::nullopt;
  if (job.expires && *next >= *job.expires) return std::nullopt;
  return next;
}

// ---------------- the service ----------------

struct jobs_service::counters {
  metrics::family<metrics::counter>* firings = nullptr;
  void count(std::string_view outcome) const {
    if (firings == nullptr) return;
    if (auto* c = firings->with({outcome})) c->inc();
  }
};

struct jobs_service::firing {
  backends::delivery d;
  std::string name;
  id128 incarnation;
  std::uint64_t occurrence = 0;
  wall_time due{};
  job_definition job;
  tracing::active_span span;
};

jobs_service::jobs_service(backends::backend& backend, http::client& client, http::url app_url,
                           jobs_options options, const tracing::tracer* tracer,
                           metrics::registry& metrics, clock_fn now, after_fn after)
    : backend_(backend),
      client_(client),
      app_url_(std::move(app_url)),
      opts_(std::move(options)),
      tracer_(tracer),
      now_(std::move(now)),
      after_(std::move(after)),
      topic_(topic_for(opts_.app_id)),
      counters_(std::make_shared<counters>()) {
  counters_->firings = &metrics.add_counter(
      "outrider_sidecar_job_firings_total",
      "Job firings handled, by outcome (success, retry, failed, stale, expired)", {"outcome"});
}

std::string jobs_service::topic_for(std::string_view app_id) {
  return "outrider.jobs." + std::string(app_id);
}

void jobs_service::start() {
  // Probe the backend's jobs capability once: without it every jobs call
  // answers its error (e.g. RabbitMQ), and nothing is consumed.
  backend_.peek_pending(topic_, opts_.app_id, id128{0, 1},
                        [weak = weak_from_this()](result<std::optional<backends::message>> r) {
                          auto self = weak.lock();
                          if (!self) return;
                          if (!r && r.error().code == errc::failed_precondition) {
                            logger.warn("jobs API disabled: {}", r.error().message);
                            std::lock_guard lock(self->mutex_);
                            self->unsupported_ = r.error().message;
                            return;
                          }
                          self->subscribe();
                        });
}

void jobs_service::subscribe() {
  if (stopped_) return;
  backends::subscription_spec spec{topic_, opts_.app_id, 0, opts_.lease,
                                   std::max<std::uint32_t>(1, opts_.max_in_flight)};
  std::weak_ptr<jobs_service> weak = weak_from_this();
  backend_.subscribe(
      std::move(spec),
      [weak](backends::delivery d) {
        if (auto self = weak.lock()) self->on_delivery(std::move(d));
      },
      [weak](result<backends::subscription_handle> h) {
        auto self = weak.lock();
        if (!self) return;
        if (!h) {
          logger.warn("jobs: subscribing to '{}' failed: {}; retrying", self->topic_,
                      h.error().message);
          self->after_(self->opts_.broker_retry, [weak] {
            if (auto s = weak.lock()) s->subscribe();
          });
          return;
        }
        std::lock_guard lock(self->mutex_);
        self->handle_ = *h;
        self->subscribed_ = true;
      });
}

void jobs_service::stop() {
  if (stopped_.exchange(true)) return;
  backends::subscription_handle h = 0;
  {
    std::lock_guard lock(mutex_);
    h = std::exchange(handle_, 0);
  }
  subscribed_ = false;
  if (h != 0) {
    backend_.unsubscribe(h, [](status s) {
      if (!s) logger.debug("jobs: unsubscribe: {}", s.error().message);
    });
  }
}

void jobs_service::handle(http::request&& req, const http::responder& r) {
  std::string name(req.params.get("name").value_or(""));
  {
    std::lock_guard lock(mutex_);
    if (!unsupported_.empty()) {
      const errc code = req.method == "GET"      ? errc::job_get
                        : req.method == "DELETE" ? errc::job_delete
                                                 : errc::job_schedule;
      return r.send(http::response::from_error(err(code, unsupported_)));
    }
  }
  if (req.method == "POST" || req.method == "PUT") return schedule_job(std::move(req), r);
  if (name.empty()) {
    return r.send(http::response::from_error(err(errc::job_name_empty, "the job name is empty")));
  }
  if (!subscribed_) {
    return r.send(http::response::from_error(
        err(req.method == "GET" ? errc::job_get : errc::job_delete,
            "the jobs table is not reachable yet (the sidecar is connecting to the broker)")));
  }
  if (req.method == "GET") return get_job(std::move(name), r);
  delete_job(std::move(name), r);
}

void jobs_service::schedule_job(http::request&& req, const http::responder& r) {
  bool overwrite = false;
  auto job = parse_job_request(req.params.get("name").value_or(""), req.body, now_(), overwrite);
  if (!job) return r.send(http::response::from_error(job.error()));
  if (!subscribed_) {
    return r.send(http::response::from_error(
        err(errc::job_schedule,
            "the jobs table is not reachable yet (the sidecar is connecting to the broker)")));
  }
  job->incarnation = id128::random();
  if (!overwrite) return publish_definition(std::move(*job), r);
  // Overwrite: cancel the old definition (its pending firing then finds
  // another incarnation and is dropped), then store the new one.
  const id128 id = job_definition_id(opts_.app_id, job->name);
  backend_.cancel_scheduled(
      id, [self = shared_from_this(), job = std::move(*job), r](status s) mutable {
        if (!s && s.error().code != errc::message_not_found) {
          return r.send(http::response::from_error(
              err(errc::job_schedule, "replacing the job failed: " + s.error().message)));
        }
        self->publish_definition(std::move(job), r);
      });
}

void jobs_service::publish_definition(job_definition job, const http::responder& r) {
  backends::message def;
  def.topic = topic_;
  def.id = job_definition_id(opts_.app_id, job.name);
  def.headers = {{std::string(kind_header), "definition"}, {std::string(name_header), job.name}};
  def.body = encode_job_definition(job);
  def.deliver_at = job.created + definition_horizon;
  backends::message first;
  first.topic = topic_;
  first.id = job_firing_id(job.incarnation, 1);
  first.headers = {{std::string(kind_header), "firing"}, {std::string(name_header), job.name}};
  json::object fb{{"name", job.name},
                  {"incarnation", job.incarnation.to_hex()},
                  {"occurrence", 1},
                  {"dueNs", to_ns(job.first_due)}};
  first.body = json::serialize(fb);
  first.deliver_at = job.first_due;
  std::vector<backends::message> batch;
  batch.push_back(std::move(def));
  const id128 def_id = job_definition_id(opts_.app_id, job.name);
  backend_.publish(std::move(batch), [self = shared_from_this(), first = std::move(first), def_id,
                                      name = job.name, r](auto res) mutable {
    if (!res) {
      return r.send(http::response::from_error(
          err(errc::job_schedule, "storing the job failed: " + res.error().message)));
    }
    const status& s = res->at(0).outcome;
    if (!s) {
      if (s.error().code == errc::already_exists) {
        return r.send(http::response::from_error(
            err(errc::job_schedule,
                fmt::format("a job named '{}' exists already; set \"overwrite\": true to replace "
                            "it",
                            name))));
      }
      return r.send(http::response::from_error(
          err(errc::job_schedule, "storing the job failed: " + s.error().message)));
    }
    std::vector<backends::message> b2;
    b2.push_back(std::move(first));
    self->backend_.publish(std::move(b2), [self, def_id, r](auto res2) {
      const bool ok = res2 && res2->at(0).outcome.ok();
      if (ok) return r.send(http::response::no_content());
      const std::string why = !res2 ? res2.error().message : res2->at(0).outcome.error().message;
      // Without its first firing the job would never run: take it back.
      self->backend_.cancel_scheduled(def_id, [](status) {});
      r.send(http::response::from_error(
          err(errc::job_schedule, "scheduling the job's first firing failed: " + why)));
    });
  });
}

void jobs_service::get_job(std::string name, const http::responder& r) {
  if (!valid_name(name)) {
    return r.send(http::response::from_error(err(errc::job_name, "invalid job name")));
  }
  backend_.peek_pending(
      topic_, opts_.app_id, job_definition_id(opts_.app_id, name),
      [name, r](result<std::optional<backends::message>> m) {
        if (!m) {
          return r.send(http::response::from_error(
              err(errc::job_get, "reading the job failed: " + m.error().message)));
        }
        if (!m->has_value()) {
          return r.send(http::response::from_error(
              err(errc::job_get, fmt::format("no job named '{}'", name))));
        }
        auto job = decode_job_definition((*m)->body);
        if (!job) {
          return r.send(http::response::from_error(err(errc::job_get, job.error().message)));
        }
        r.send(http::response::json(200, job_to_dapr_json(*job)));
      });
}

void jobs_service::delete_job(std::string name, const http::responder& r) {
  if (!valid_name(name)) {
    return r.send(http::response::from_error(err(errc::job_name, "invalid job name")));
  }
  // The pending firing stays in the broker until due, then finds no
  // definition and is acknowledged without calling the app.
  backend_.cancel_scheduled(job_definition_id(opts_.app_id, name), [r](status s) {
    if (!s && s.error().code != errc::message_not_found) {
      return r.send(http::response::from_error(
          err(errc::job_delete, "deleting the job failed: " + s.error().message)));
    }
    r.send(http::response::no_content());  // as Dapr: deleting a missing job succeeds
  });
}

void jobs_service::settle(const backends::delivery& d, backends::settle_action a) {
  backend_.settle(d.handle, a, [id = d.id](status s) {
    if (!s) logger.debug("jobs: settling firing {}: {}", id.to_string(), s.error().message);
  });
}

void jobs_service::on_delivery(backends::delivery d) {
  const auto* kind = backends::find_header(d.headers, kind_header);
  if (kind == nullptr || *kind != "firing") {
    // A definition came due (after ~200 years) or a foreign message: keep nothing.
    settle(d, backends::settle_action::ack());
    return;
  }
  auto f = std::make_shared<firing>();
  boost::system::error_code ec;
  json::value doc = json::parse(d.body, ec);
  const auto* o = ec ? nullptr : doc.if_object();
  const json::value* n = o ? o->if_contains("name") : nullptr;
  const json::value* inc = o ? o->if_contains("incarnation") : nullptr;
  const json::value* occ = o ? o->if_contains("occurrence") : nullptr;
  const json::value* due = o ? o->if_contains("dueNs") : nullptr;
  std::optional<id128> incarnation = inc && inc->is_string()
                                         ? id128::parse_hex(std::string_view(inc->get_string()))
                                         : std::nullopt;
  if (!n || !n->is_string() || !incarnation || !occ || !occ->is_int64() || !due ||
      !due->is_int64()) {
    logger.warn("jobs: firing {} is malformed; dropped", d.id.to_string());
    counters_->count("failed");
    settle(d, backends::settle_action::ack());
    return;
  }
  f->name = std::string(n->get_string());
  f->incarnation = *incarnation;
  f->occurrence = static_cast<std::uint64_t>(occ->get_int64());
  f->due = from_ns(due->get_int64());
  f->d = std::move(d);
  // Never early, whatever the backend's clock: wait out the rest.
  if (const auto now = now_(); now < f->due) {
    auto wait = std::chrono::duration_cast<nanoseconds>(f->due - now);
    settle(f->d, backends::settle_action::retry_after(wait));
    return;
  }
  backend_.peek_pending(
      topic_, opts_.app_id, job_definition_id(opts_.app_id, f->name),
      [self = shared_from_this(), f](result<std::optional<backends::message>> m) {
        if (!m) {
          logger.warn("jobs: reading job '{}' failed: {}; retrying the firing", f->name,
                      m.error().message);
          self->settle(f->d, backends::settle_action::retry_after(self->opts_.broker_retry));
          return;
        }
        std::optional<job_definition> job;
        if (m->has_value()) {
          if (auto j = decode_job_definition((*m)->body)) job = std::move(*j);
        }
        if (!job || job->incarnation != f->incarnation) {
          logger.debug("jobs: firing of job '{}' is stale (deleted or replaced); dropped", f->name);
          self->counters_->count("stale");
          self->settle(f->d, backends::settle_action::ack());
          return;
        }
        f->job = std::move(*job);
        if (f->job.expires && self->now_() >= *f->job.expires) {
          self->counters_->count("expired");
          self->finish_firing(f, false);
          return;
        }
        self->call_app(f);
      });
}

void jobs_service::call_app(std::shared_ptr<firing> f) {
  http::request req;
  req.method = "POST";
  req.target = "/job/" + f->name;
  req.headers.set("content-type", "application/json");
  if (!opts_.app_api_token.empty()) req.headers.set("dapr-api-token", opts_.app_api_token);
  req.body = f->job.data.value_or("");
  if (tracer_ != nullptr) {
    // CONSUMER "job <name>" with outrider.job.name, scheduled/fired times, lag and attempt.
    f->span = tracer_->start_job_span(f->name, f->due, nullptr, f->d.attempt);
    auto& s = f->span;
    if (s.recording()) {
      s.set("outrider.job.occurrence", static_cast<std::int64_t>(f->occurrence));
      s.set("messaging.message.id", f->d.id.to_string());
      s.set("messaging.consumer.group.name", opts_.app_id);
      s.set("url.full", app_url_.origin() + req.target);
    }
    req.headers.set("traceparent", s.traceparent());
    if (!s.tracestate().empty()) req.headers.set("tracestate", s.tracestate());
  }
  client_.send(app_url_, std::move(req), opts_.app_timeout,
               [self = shared_from_this(), f](result<http::response> res) {
                 const bool ok = res && res->status >= 200 && res->status < 300;
                 if (f->span.recording()) {
                   if (res) {
                     f->span.set("http.response.status_code", std::int64_t{res->status});
                   }
                   if (!ok) {
                     f->span.set_error(res ? "the app answered HTTP " + std::to_string(res->status)
                                           : res.error().message);
                   }
                 }
                 f->span.end();
                 if (ok) {
                   self->counters_->count("success");
                   self->finish_firing(f, true);
                   return;
                 }
                 const auto& p = f->job.policy;
                 const std::uint32_t retries_done = f->d.attempt - 1;
                 if (!p.drop && (!p.max_retries || retries_done < *p.max_retries)) {
                   logger.info("jobs: job '{}' failed ({}); retry {} in {}", f->name,
                               res ? "HTTP " + std::to_string(res->status) : res.error().message,
                               retries_done + 1, format_duration(p.interval));
                   self->counters_->count("retry");
                   self->settle(f->d, backends::settle_action::retry_after(p.interval));
                   return;
                 }
                 logger.warn("jobs: job '{}' occurrence {} failed and its failure policy gives up",
                             f->name, f->occurrence);
                 self->counters_->count("failed");
                 self->finish_firing(f, false);
               });
}

void jobs_service::finish_firing(std::shared_ptr<firing> f, bool succeeded) {
  (void)succeeded;
  std::optional<job_schedule> sched;
  if (!f->job.schedule.empty()) {
    if (auto s = job_schedule::parse(f->job.schedule)) sched = *s;
  }
  const auto next =
      next_job_occurrence(f->job, sched ? &*sched : nullptr, f->occurrence, f->due, now_());
  if (!next) {
    // Finished: remove the job, as Dapr does. A failed cancel leaves a
    // definition without firings, which GET still shows; DELETE removes it.
    backend_.cancel_scheduled(
        job_definition_id(opts_.app_id, f->name), [self = shared_from_this(), f](status s) {
          if (!s && s.error().code != errc::message_not_found) {
            logger.warn("jobs: removing finished job '{}': {}", f->name, s.error().message);
          }
          self->settle(f->d, backends::settle_action::ack());
        });
    return;
  }
  backends::message m;
  m.topic = topic_;
  m.id = job_firing_id(f->incarnation, f->occurrence + 1);
  m.headers = {{std::string(kind_header), "firing"}, {std::string(name_header), f->name}};
  json::object fb{{"name", f->name},
                  {"incarnation", f->incarnation.to_hex()},
                  {"occurrence", static_cast<std::int64_t>(f->occurrence + 1)},
                  {"dueNs", to_ns(*next)}};
  m.body = json::serialize(fb);
  m.deliver_at = *next;
  std::vector<backends::message> batch;
  batch.push_back(std::move(m));
  backend_.publish(std::move(batch), [self = shared_from_this(), f](auto res) {
    const bool ok =
        res && (res->at(0).outcome.ok() || res->at(0).outcome.error().code == errc::already_exists);
    if (ok) {
      self->settle(f->d, backends::settle_action::ack());
      return;
    }
    logger.warn("jobs: scheduling the next occurrence of job '{}' failed: {}; retrying", f->name,
                !res ? res.error().message : res->at(0).outcome.error().message);
    self->settle(f->d, backends::settle_action::retry_after(self->opts_.broker_retry));
  });
}

}  // namespace outrider::sidecar
