#include "tracing/collector.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/json_text.h"
#include "base/log.h"
#include "tracing/codec.h"
#include "tracing/compact_trace.h"

namespace outrider::tracing {
namespace {

const log::logger logger{"collector"};

constexpr std::string_view protobuf_type = "application/x-protobuf";
constexpr std::string_view json_type = "application/json";
constexpr std::string_view text_type = "text/plain; charset=utf-8";

// google.rpc.Code values used in OTLP error bodies.
constexpr int grpc_invalid_argument = 3;
constexpr int grpc_resource_exhausted = 8;
constexpr int grpc_unavailable = 14;
constexpr int grpc_internal = 13;

constexpr int http_ok = 200;
constexpr int http_accepted = 202;
constexpr int http_bad_request = 400;
constexpr int http_not_found = 404;
constexpr int http_payload_too_large = 413;
constexpr int http_unsupported_media_type = 415;
constexpr int http_too_many_requests = 429;
constexpr int http_unavailable = 503;

// Native trace responses: gzip (fastest level: the encoding dominates on loopback) of this size and
// more.
constexpr std::size_t min_gzip_bytes = 256;
constexpr int fastest_gzip_level = 1;
// Traces read to find the spans linking into a trace (the UI's "linked from").
constexpr std::size_t max_linking_traces = 200;

bool starts_with_media_type(std::string_view header, std::string_view type) {
  if (header.size() < type.size()) return false;
  for (std::size_t i = 0; i < type.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != type[i]) return false;
  }
  return header.size() == type.size() || header[type.size()] == ';' || header[type.size()] == ' ';
}

// google.rpc.Status {code = 1; message = 2} encoded by hand (two fields).
std::string rpc_status_protobuf(int code, std::string_view message) {
  constexpr char code_tag = 0x08;     // field 1, varint
  constexpr char message_tag = 0x12;  // field 2, length-delimited
  constexpr unsigned varint_more = 0x80;
  std::string out;
  out += code_tag;
  out += static_cast<char>(code);
  out += message_tag;
  std::size_t n = message.size();
  while (n >= varint_more) {
    out += static_cast<char>((n & (varint_more - 1)) | varint_more);
    n >>= 7;
  }
  out += static_cast<char>(n);
  out.append(message);
  return out;
}

std::string rpc_status_json(int code, std::string_view message) {
  std::string out = "{\"code\":" + std::to_string(code) + ",\"message\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

http::response text(int status, std::string body) {
  return http::response::with_body(status, std::move(body), text_type);
}

void add_retry_after(http::response& r, int seconds) {
  r.headers.set("Retry-After", std::to_string(seconds));
}

// Decompresses the body if Content-Encoding says gzip/deflate.
result<std::string> request_body(http::request& req, std::size_t limit) {
  auto encoding = req.headers.get("Content-Encoding");
  if (!encoding || encoding->empty() || http::iequals(*encoding, "identity")) {
    if (req.body.size() > limit)
      return error(errc::body_too_large, "body exceeds " + std::to_string(limit) + " bytes");
    return std::move(req.body);
  }
  if (http::iequals(*encoding, "gzip") || http::iequals(*encoding, "x-gzip") ||
      http::iequals(*encoding, "deflate")) {
    return gunzip(req.body, limit);
  }
  return error(errc::invalid_argument, "unsupported Content-Encoding " + std::string(*encoding));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// An integer query parameter; nullopt when absent or empty. Bad text is an error.
result<std::optional<std::int64_t>> int_param(const http::request& req, std::string_view name) {
  auto v = req.query_param(name);
  if (!v || v->empty()) return std::optional<std::int64_t>{};
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size()) {
    return error(errc::invalid_argument, std::string(name) + " is not an integer: " + *v);
  }
  return std::optional<std::int64_t>{out};
}

std::string json_string_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, items[i]);
  }
  out += ']';
  return out;
}

std::string traces_json(const std::vector<std::vector<span>>& traces) {
  std::string out = "[";
  for (std::size_t i = 0; i < traces.size(); ++i) {
    if (i > 0) out += ',';
    out += zipkin_json_list(traces[i]);
  }
  out += ']';
  return out;
}

// Zipkin's annotationQuery: terms joined by " and "; "key=value" or "key".
std::vector<std::pair<std::string, std::optional<std::string>>> parse_annotation_query(
    std::string_view text) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  constexpr std::string_view separator = " and ";
  while (!text.empty()) {
    const auto cut = text.find(separator);
    const std::string_view term = text.substr(0, cut);
    text = cut == std::string_view::npos ? std::string_view{} : text.substr(cut + separator.size());
    const auto eq = term.find('=');
    std::string key = trim(term.substr(0, eq));
    if (key.empty()) continue;
    if (eq == std::string_view::npos) {
      out.emplace_back(std::move(key), std::nullopt);
    } else {
      std::string value(term.substr(eq + 1));
      if (value.empty()) {
        out.emplace_back(std::move(key), std::nullopt);
      } else {
        out.emplace_back(std::move(key), std::move(value));
      }
    }
  }
  return out;
}

std::int64_t now_ms(const collector_options& o) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(o.now().time_since_epoch()).count();
}

}  // namespace

struct collector::instruments {
  explicit instruments(metrics::registry* r) {
    if (r == nullptr) return;
    auto& received = r->add_counter("outrider_collector_spans_received_total",
                                    "Spans decoded from requests", {"protocol"});
    received_otlp_protobuf = received.with({"otlp_protobuf"});
    received_otlp_json = received.with({"otlp_json"});
    received_zipkin_json = received.with({"zipkin_json"});
    received_zipkin_proto = received.with({"zipkin_proto"});
    auto& dropped =
        r->add_counter("outrider_collector_spans_dropped_total",
                       "Spans not stored: invalid, queue_full or store_error", {"reason"});
    dropped_invalid = dropped.with({"invalid"});
    dropped_queue_full = dropped.with({"queue_full"});
    dropped_store_error = dropped.with({"store_error"});
    stored = &r->add_counter("outrider_collector_spans_stored_total", "Spans stored durably").get();
    queue =
        &r->add_gauge("outrider_collector_queue_spans", "Spans waiting for the store writer").get();
    query_seconds =
        &r->add_histogram("outrider_collector_query_seconds", "Query API latency", {"endpoint"});
    store_bytes =
        &r->add_gauge("outrider_collector_store_bytes", "Bytes of the span store on disk").get();
    store_spans = &r->add_gauge("outrider_collector_store_spans", "Spans in the span store").get();
  }
  static void inc(metrics::counter* c, std::uint64_t n) {
    if (c != nullptr) c->inc(n);
  }
  metrics::counter* received_otlp_protobuf = nullptr;
  metrics::counter* received_otlp_json = nullptr;
  metrics::counter* received_zipkin_json = nullptr;
  metrics::counter* received_zipkin_proto = nullptr;
  metrics::counter* dropped_invalid = nullptr;
  metrics::counter* dropped_queue_full = nullptr;
  metrics::counter* dropped_store_error = nullptr;
  metrics::counter* stored = nullptr;
  metrics::gauge* queue = nullptr;
  metrics::family<metrics::histogram>* query_seconds = nullptr;
  metrics::gauge* store_bytes = nullptr;
  metrics::gauge* store_spans = nullptr;
};

collector::collector(span_store& store, metrics::registry* registry, collector_options opts)
    : store_(store), opts_(std::move(opts)), metrics_(std::make_unique<instruments>(registry)) {}

collector::~collector() {
  stop();
}

void collector::start() {
  std::lock_guard lock(mutex_);
  OUTRIDER_ASSERT(!started_, "collector started twice");
  started_ = true;
  writer_ = std::thread([this] { run_writer(); });
}

void collector::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  // Never started: nothing drains the queue; fail what waits.
  std::deque<batch> rest;
  {
    std::lock_guard lock(mutex_);
    rest.swap(queue_);
    queued_spans_ = 0;
  }
  for (auto& b : rest) b.done(error(errc::shutting_down, "collector stopped"));
}

std::size_t collector::queued_spans() const {
  std::lock_guard lock(mutex_);
  return queued_spans_;
}

status collector::submit(std::vector<span> spans, std::function<void(status)> done) {
  const std::size_t n = spans.size();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return error(errc::shutting_down, "collector is stopping");
    if (queued_spans_ + n > opts_.max_queued_spans && queued_spans_ > 0) {
      instruments::inc(metrics_->dropped_queue_full, n);
      return error(errc::resource_exhausted,
                   "ingest queue full (" + std::to_string(queued_spans_) + " spans waiting)");
    }
    queued_spans_ += n;
    queue_.push_back(batch{std::move(spans), std::move(done)});
    if (metrics_->queue != nullptr) metrics_->queue->set(static_cast<double>(queued_spans_));
  }
  wake_.notify_one();
  return {};
}

void collector::run_writer() {
  auto next_retention = std::chrono::steady_clock::now();
  while (true) {
    std::deque<batch> work;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [this] { return stopping_ || !queue_.empty(); });
      work.swap(queue_);
      if (work.empty() && stopping_) return;
    }
    if (!work.empty()) {
      std::vector<status> results;
      results.reserve(work.size());
      std::size_t total = 0;
      const wall_time now = opts_.now();
      for (auto& b : work) {
        results.push_back(store_.append(b.spans, now));
        total += b.spans.size();
      }
      status synced = store_.sync();
      for (std::size_t i = 0; i < work.size(); ++i) {
        status s = !results[i] ? results[i] : synced;
        if (s) {
          instruments::inc(metrics_->stored, work[i].spans.size());
        } else {
          instruments::inc(metrics_->dropped_store_error, work[i].spans.size());
          logger.warn("storing {} spans failed: {}", work[i].spans.size(), s.error().message);
        }
        work[i].done(std::move(s));
      }
      {
        std::lock_guard lock(mutex_);
        queued_spans_ -= std::min(queued_spans_, total);
        if (metrics_->queue != nullptr) metrics_->queue->set(static_cast<double>(queued_spans_));
      }
    }
    if (std::chrono::steady_clock::now() >= next_retention) {
      next_retention = std::chrono::steady_clock::now() + opts_.retention_interval;
      if (auto r = store_.enforce_retention(opts_.now()); !r)
        logger.warn("retention failed: {}", r.error().message);
      const auto st = store_.stats();
      if (metrics_->store_bytes != nullptr)
        metrics_->store_bytes->set(static_cast<double>(st.bytes_on_disk));
      if (metrics_->store_spans != nullptr)
        metrics_->store_spans->set(static_cast<double>(st.spans));
    }
  }
}

// OTLP ---------------------------------------------------------------------------

void collector::handle_otlp(http::request&& req, http::responder r) {
  const auto content_type = req.headers.get("Content-Type").value_or("");
  const bool is_protobuf = starts_with_media_type(content_type, protobuf_type);
  const bool is_json = starts_with_media_type(content_type, json_type);
  auto fail = [is_json](int http_status, int rpc_code, std::string_view message) {
    auto resp = is_json ? http::response::with_body(http_status, rpc_status_json(rpc_code, message),
                                                    json_type)
                        : http::response::with_body(
                              http_status, rpc_status_protobuf(rpc_code, message), protobuf_type);
    return resp;
  };
  if (!is_protobuf && !is_json) {
    r.send(fail(http_unsupported_media_type, grpc_invalid_argument,
                "Content-Type must be application/x-protobuf or application/json"));
    return;
  }
  auto body = request_body(req, opts_.max_decompressed_bytes);
  if (!body) {
    const bool too_large = body.error().code == errc::body_too_large;
    r.send(fail(too_large ? http_payload_too_large : http_bad_request, grpc_invalid_argument,
                body.error().message));
    return;
  }
  auto decoded = is_json ? decode_otlp_json(*body) : decode_otlp_protobuf(*body);
  if (!decoded) {
    r.send(fail(http_bad_request, grpc_invalid_argument, decoded.error().message));
    return;
  }
  instruments::inc(is_json ? metrics_->received_otlp_json : metrics_->received_otlp_protobuf,
                   decoded->spans.size() + decoded->rejected);
  instruments::inc(metrics_->dropped_invalid, decoded->rejected);
  const std::uint64_t rejected = decoded->rejected;
  std::string message = std::move(decoded->rejection_message);
  auto ok_response = [is_json, rejected, message]() {
    return is_json ? http::response::with_body(
                         http_ok, encode_otlp_response_json(rejected, message), json_type)
                   : http::response::with_body(
                         http_ok, encode_otlp_response_protobuf(rejected, message), protobuf_type);
  };
  if (decoded->spans.empty()) {
    r.send(ok_response());
    return;
  }
  const int retry_after = opts_.retry_after_seconds;
  auto submitted = submit(std::move(decoded->spans), [r, ok_response, fail, retry_after](status s) {
    if (s) {
      r.send(ok_response());
      return;
    }
    auto resp = fail(http_unavailable, grpc_unavailable, s.error().message);
    add_retry_after(resp, retry_after);
    r.send(std::move(resp));
  });
  if (!submitted) {
    const bool full = submitted.error().code == errc::resource_exhausted;
    auto resp = fail(full ? http_too_many_requests : http_unavailable,
                     full ? grpc_resource_exhausted : grpc_unavailable, submitted.error().message);
    add_retry_after(resp, retry_after);
    r.send(std::move(resp));
  }
}

void collector::add_otlp_routes(http::router& routes) {
  routes.add("POST", "/v1/traces",
             [this](http::request&& req, http::responder r) { handle_otlp(std::move(req), r); });
}

// Zipkin -------------------------------------------------------------------------

void collector::handle_zipkin_post(http::request&& req, http::responder r) {
  const auto content_type = req.headers.get("Content-Type").value_or("");
  const bool is_protobuf = starts_with_media_type(content_type, protobuf_type);
  auto body = request_body(req, opts_.max_decompressed_bytes);
  if (!body) {
    r.send(
        text(body.error().code == errc::body_too_large ? http_payload_too_large : http_bad_request,
             body.error().message));
    return;
  }
  auto decoded = is_protobuf ? decode_zipkin_proto(*body) : decode_zipkin_json(*body);
  if (!decoded) {
    r.send(text(http_bad_request, decoded.error().message));
    return;
  }
  instruments::inc(is_protobuf ? metrics_->received_zipkin_proto : metrics_->received_zipkin_json,
                   decoded->spans.size());
  if (decoded->spans.empty()) {
    r.send(http::response{http_accepted, {}, {}});
    return;
  }
  const int retry_after = opts_.retry_after_seconds;
  auto submitted = submit(std::move(decoded->spans), [r, retry_after](status s) {
    if (s) {
      r.send(http::response{http_accepted, {}, {}});
      return;
    }
    auto resp = text(http_unavailable, s.error().message);
    add_retry_after(resp, retry_after);
    r.send(std::move(resp));
  });
  if (!submitted) {
    const bool full = submitted.error().code == errc::resource_exhausted;
    auto resp = text(full ? http_too_many_requests : http_unavailable, submitted.error().message);
    add_retry_after(resp, retry_after);
    r.send(std::move(resp));
  }
}

void collector::add_zipkin_routes(http::router& routes) {
  routes.add("POST", "/api/v2/spans", [this](http::request&& req, http::responder r) {
    handle_zipkin_post(std::move(req), r);
  });

  // Wraps a query handler with the latency histogram.
  auto timed = [this](std::string endpoint,
                      std::function<http::response(const http::request&)> fn) {
    metrics::histogram* h =
        metrics_->query_seconds != nullptr ? metrics_->query_seconds->with({endpoint}) : nullptr;
    return [h, fn = std::move(fn)](const http::request& req) {
      const auto start = std::chrono::steady_clock::now();
      http::response resp = fn(req);
      if (h != nullptr) {
        h->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      return resp;
    };
  };
  auto json_ok = [](std::string body) { return http::response::json(http_ok, std::move(body)); };

  routes.add_sync("GET", "/api/v2/services",
                  timed("services", [this, json_ok](const http::request&) {
                    return json_ok(json_string_list(store_.service_names()));
                  }));
  routes.add_sync("GET", "/api/v2/spans", timed("spans", [this, json_ok](const http::request& req) {
                    auto service = req.query_param("serviceName");
                    if (!service || service->empty())
                      return text(http_bad_request, "serviceName is required");
                    return json_ok(json_string_list(store_.span_names(*service)));
                  }));
  routes.add_sync("GET", "/api/v2/remoteServices",
                  timed("remoteServices", [this, json_ok](const http::request& req) {
                    auto service = req.query_param("serviceName");
                    if (!service || service->empty())
                      return text(http_bad_request, "serviceName is required");
                    return json_ok(json_string_list(store_.remote_service_names(*service)));
                  }));
  routes.add_sync(
      "GET", "/api/v2/traces", timed("traces", [this, json_ok](const http::request& req) {
        trace_query q;
        q.service_name = lower(req.query_param("serviceName").value_or(""));
        q.remote_service_name = lower(req.query_param("remoteServiceName").value_or(""));
        q.span_name = lower(req.query_param("spanName").value_or(""));
        if (q.span_name == "all") q.span_name.clear();  // the Zipkin UI's "all"
        q.annotation_query =
            parse_annotation_query(req.query_param("annotationQuery").value_or(""));
        auto end_ts = int_param(req, "endTs");
        auto lookback = int_param(req, "lookback");
        auto limit = int_param(req, "limit");
        auto min_duration = int_param(req, "minDuration");
        auto max_duration = int_param(req, "maxDuration");
        for (const auto* p : {&end_ts, &lookback, &limit, &min_duration, &max_duration}) {
          if (!*p) return text(http_bad_request, p->error().message);
        }
        q.end_ts_ms = end_ts->value_or(now_ms(opts_));
        q.lookback_ms = lookback->value_or(opts_.default_lookback_ms);
        const std::int64_t lim = limit->value_or(static_cast<std::int64_t>(opts_.ui_query_limit));
        if (q.end_ts_ms <= 0) return text(http_bad_request, "endTs <= 0");
        if (lim <= 0) return text(http_bad_request, "limit <= 0");
        if (q.lookback_ms <= 0) return text(http_bad_request, "lookback <= 0");
        if (*min_duration) {
          if (**min_duration <= 0) return text(http_bad_request, "minDuration <= 0");
          if (*max_duration && **max_duration < **min_duration) {
            return text(http_bad_request, "maxDuration < minDuration");
          }
        } else if (*max_duration) {
          return text(http_bad_request, "maxDuration is only valid with minDuration");
        }
        q.lookback_ms = std::min(q.lookback_ms, q.end_ts_ms);
        q.limit = static_cast<std::size_t>(lim);
        q.min_duration_us = *min_duration;
        q.max_duration_us = *max_duration;
        auto traces = store_.find_traces(q);
        if (!traces) return http::response::from_error(traces.error());
        return json_ok(traces_json(*traces));
      }));
  routes.add_sync(
      "GET", "/api/v2/trace/{traceId}", timed("trace", [this, json_ok](const http::request& req) {
        const auto raw = req.params.at("traceId");
        auto id = parse_trace_id(raw);
        if (!id) {
          return text(
              http_bad_request,
              std::string(raw) + " should be a 1 to 32 character lower-hex string with no prefix");
        }
        auto spans = store_.get_trace(*id);
        if (!spans) return http::response::from_error(spans.error());
        if (spans->empty()) return text(http_not_found, trace_id_hex(*id) + " not found");
        return json_ok(zipkin_json_list(*spans));
      }));
  routes.add_sync(
      "GET", "/api/v2/traceMany", timed("traceMany", [this, json_ok](const http::request& req) {
        const std::string ids = req.query_param("traceIds").value_or("");
        if (trim(ids).empty()) return text(http_bad_request, "traceIds parameter is empty");
        std::vector<std::vector<span>> traces;
        std::vector<id128> seen;
        std::string_view rest = ids;
        while (!rest.empty()) {
          const auto comma = rest.find(',');
          const std::string item = trim(rest.substr(0, comma));
          rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
          if (item.empty()) continue;
          auto id = parse_trace_id(item);
          if (!id) {
            return text(http_bad_request,
                        item + " should be a 1 to 32 character lower-hex string with no prefix");
          }
          if (std::find(seen.begin(), seen.end(), *id) != seen.end()) continue;
          seen.push_back(*id);
          auto spans = store_.get_trace(*id);
          if (!spans) return http::response::from_error(spans.error());
          if (!spans->empty()) traces.push_back(std::move(*spans));
        }
        return json_ok(traces_json(traces));
      }));
  routes.add_sync("GET", "/api/v2/dependencies",
                  timed("dependencies", [this, json_ok](const http::request& req) {
                    auto end_ts = int_param(req, "endTs");
                    auto lookback = int_param(req, "lookback");
                    if (!end_ts) return text(http_bad_request, end_ts.error().message);
                    if (!lookback) return text(http_bad_request, lookback.error().message);
                    if (!*end_ts) return text(http_bad_request, "endTs is required");
                    if (**end_ts <= 0) return text(http_bad_request, "endTs <= 0");
                    const std::int64_t lb = lookback->value_or(opts_.default_lookback_ms);
                    if (lb <= 0) return text(http_bad_request, "lookback <= 0");
                    auto links = store_.dependencies(**end_ts, std::min(lb, **end_ts));
                    if (!links) return http::response::from_error(links.error());
                    std::string out = "[";
                    for (std::size_t i = 0; i < links->size(); ++i) {
                      const auto& l = (*links)[i];
                      if (i > 0) out += ',';
                      out += "{\"parent\":";
                      append_json_string(out, l.parent);
                      out += ",\"child\":";
                      append_json_string(out, l.child);
                      out += ",\"callCount\":" + std::to_string(l.call_count);
                      if (l.error_count > 0)
                        out += ",\"errorCount\":" + std::to_string(l.error_count);
                      out += '}';
                    }
                    out += ']';
                    return json_ok(std::move(out));
                  }));
  routes.add_sync("GET", "/api/v2/autocompleteKeys",
                  timed("autocompleteKeys", [this, json_ok](const http::request&) {
                    return json_ok(json_string_list(store_.autocomplete_keys()));
                  }));
  routes.add_sync("GET", "/api/v2/autocompleteValues",
                  timed("autocompleteValues", [this, json_ok](const http::request& req) {
                    auto key = req.query_param("key");
                    if (!key || key->empty()) return text(http_bad_request, "key is required");
                    return json_ok(json_string_list(store_.autocomplete_values(*key)));
                  }));
  auto config_json = [this](const http::request&) {
    std::string out =
        "{\"environment\":\"\",\"queryLimit\":" + std::to_string(opts_.ui_query_limit) +
        ",\"defaultLookback\":" + std::to_string(opts_.ui_default_lookback_ms) +
        ",\"searchEnabled\":true,\"logsUrl\":null,\"supportUrl\":null,\"archivePostUrl\":null,"
        "\"archiveUrl\":null,\"dependency\":{\"enabled\":true,\"lowErrorRate\":0.5,"
        "\"highErrorRate\":0.75}}";
    return http::response::json(http_ok, std::move(out));
  };
  routes.add_sync("GET", "/zipkin/config.json", config_json);
  routes.add_sync("GET", "/config.json", config_json);

  routes.add_sync(
      "GET", "/api/outrider/v1/trace/{traceId}",
      timed("native_trace", [this](const http::request& req) {
        const auto raw = req.params.at("traceId");
        auto id = parse_trace_id(raw);
        if (!id) {
          return http::response::from_error(error(
              errc::invalid_argument, "trace id must be 1 to 32 hex digits: " + std::string(raw)));
        }
        auto spans = store_.get_trace(*id);
        if (!spans) return http::response::from_error(spans.error());
        if (spans->empty()) {
          return http::response::from_error(
              error(errc::not_found, "trace " + trace_id_hex(*id) + " not found"));
        }
        const std::string format = req.query_param("format").value_or("native");
        std::string out;
        if (format == "compact") {
          // Spans of other traces linking into this one (store index; a bounded number of
          // traces is read).
          std::vector<incoming_link> incoming;
          auto sources = store_.traces_linking_to(*id);
          if (sources.size() > max_linking_traces) sources.resize(max_linking_traces);
          for (const id128& source : sources) {
            auto other = store_.get_trace(source);
            if (other) collect_incoming_links(*id, *other, incoming);
          }
          out = encode_compact_trace(*id, *spans, incoming);
        } else if (format == "native") {
          out = "{\"traceId\":\"" + to_hex16(id->high) + to_hex16(id->low) + "\",\"spans\":[";
          for (std::size_t i = 0; i < spans->size(); ++i) {
            if (i > 0) out += ',';
            append_native_json(out, (*spans)[i]);
          }
          out += "]}";
        } else {
          return http::response::from_error(
              error(errc::invalid_argument, "format must be native or compact, not " + format));
        }
        auto resp = http::response::json(http_ok, std::move(out));
        resp.headers.set("Vary", "Accept-Encoding");
        const auto accept = req.headers.get("Accept-Encoding");
        if (accept && accept->find("gzip") != std::string_view::npos &&
            resp.body.size() >= min_gzip_bytes) {
          resp.body = gzip(resp.body, fastest_gzip_level);
          resp.headers.set("Content-Encoding", "gzip");
        }
        return resp;
      }));
  routes.add_sync("GET", "/healthz",
                  [](const http::request&) { return http::response::no_content(); });
}

}  // namespace outrider::tracing
