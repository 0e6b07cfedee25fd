#include "tracing/exporter.h"

#include <pthread.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <charconv>
#include <ctime>
#include <optional>

#include "base/log.h"
#include "http/body_stream.h"
#include "tracing/codec.h"

namespace outrider::tracing {
namespace {

const log::logger logger{"tracing"};

constexpr std::string_view zipkin_path_suffix = "/api/v2/spans";
constexpr int status_too_many_requests = 429;
constexpr int status_bad_gateway = 502;
constexpr int status_unavailable = 503;
constexpr int status_gateway_timeout = 504;

bool retryable_status(int s) {
  return s == status_too_many_requests || s == status_bad_gateway || s == status_unavailable ||
         s == status_gateway_timeout;
}

// The request body read in place from the exporter's buffer: one piece, then the end.
class view_body final : public http::body_stream {
 public:
  view_body(boost::asio::io_context& context, std::string_view data)
      : context_(context), data_(data) {}
  void read(read_fn done) override {
    started_ = true;
    piece p;
    if (given_) {
      p.end = true;
    } else {
      p.data = data_;
      given_ = true;
    }
    // body_stream's contract: `done` never runs inside read().
    boost::asio::post(context_, [done = std::move(done), p] { done(p); });
  }
  std::optional<std::uint64_t> content_length() const override { return data_.size(); }

 private:
  boost::asio::io_context& context_;
  std::string_view data_;
  bool given_ = false;
};

// http::clients on io_contexts of their own that run only inside post(), on the
// calling thread: no I/O thread and no hand-over. One slot (context, client,
// keep-alive connection) per concurrent caller, reused: a sender thread takes a
// free slot for a POST and puts it back.
class http_transport final : public export_transport {
 public:
  result<http::response> post(const http::url& to, std::string_view body,
                              std::string_view content_type, nanoseconds timeout) override {
    std::unique_ptr<slot> s = take();
    auto answer = s->post(to, body, content_type, timeout);
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(s));
    return answer;
  }

 private:
  struct slot {
    boost::asio::io_context context{1};
    http::client client{context};

    result<http::response> post(const http::url& to, std::string_view body,
                                std::string_view content_type, nanoseconds timeout) {
      http::request req;
      req.method = "POST";
      req.target = to.target;
      req.headers.set("content-type", content_type);
      req.stream = std::make_shared<view_body>(context, body);
      std::optional<result<http::response>> answer;
      client.send(to, std::move(req), timeout,
                  [&answer](result<http::response> r) { answer = std::move(r); });
      context.restart();
      while (!answer) {
        // The client's deadline bounds the exchange; running out of work
        // without an answer would be a client bug.
        if (context.run_one() == 0 && !answer) {
          return error(errc::internal, "the HTTP client finished without an answer");
        }
      }
      context.poll();  // what the exchange left ready (its coroutine's end)
      return std::move(*answer);
    }
  };

  std::unique_ptr<slot> take() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        auto s = std::move(free_.back());
        free_.pop_back();
        return s;
      }
    }
    return std::make_unique<slot>();
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<slot>> free_;
};

}  // namespace

result<export_protocol> parse_export_protocol(std::string_view text) {
  if (text == "otlp" || text == "otlp-proto" || text == "http/protobuf") {
    return export_protocol::otlp_protobuf;
  }
  if (text == "otlp-json" || text == "http/json") return export_protocol::otlp_json;
  if (text == "zipkin") return export_protocol::zipkin_json;
  return error(errc::config_invalid,
               "trace protocol '" + std::string(text) + "' is not one of otlp, otlp-json, zipkin");
}

export_protocol guess_export_protocol(std::string_view url) {
  const auto q = url.find('?');
  const std::string_view path = url.substr(0, q);
  if (path.size() >= zipkin_path_suffix.size() &&
      path.substr(path.size() - zipkin_path_suffix.size()) == zipkin_path_suffix) {
    return export_protocol::zipkin_json;
  }
  return export_protocol::otlp_protobuf;
}

std::string_view content_type_of(export_protocol p) noexcept {
  switch (p) {
    case export_protocol::otlp_protobuf: return "application/x-protobuf";
    case export_protocol::otlp_json:
    case export_protocol::zipkin_json: return "application/json";
  }
  return "application/json";
}

std::string encode_batch(export_protocol p, const std::vector<span>& spans) {
  switch (p) {
    case export_protocol::otlp_protobuf: return encode_otlp_protobuf(spans);
    case export_protocol::otlp_json: return encode_otlp_json(spans);
    case export_protocol::zipkin_json: return zipkin_json_list(spans);
  }
  return {};
}

namespace {

// Appends `p`'s encoding of records and full spans (either may be empty) to `out`.
void append_batch(std::string& out, export_protocol p, std::span<const recorded_span_ptr> recorded,
                  const std::vector<span>& spans) {
  switch (p) {
    case export_protocol::otlp_protobuf:
      // Serialized messages concatenate into one: resource_spans repeat.
      if (!recorded.empty()) append_otlp_protobuf(out, recorded);
      if (!spans.empty()) out += encode_otlp_protobuf(spans);
      return;
    case export_protocol::otlp_json: {
      if (spans.empty()) return append_otlp_json(out, recorded);
      const std::string rest = encode_otlp_json(spans);  // {"resourceSpans":[...]}
      if (recorded.empty()) {
        out += rest;
        return;
      }
      append_otlp_json(out, recorded);
      constexpr std::string_view open = "{\"resourceSpans\":[";
      out.resize(out.size() - 2);  // "]}"
      out += ',';
      out.append(rest, open.size());
      return;
    }
    case export_protocol::zipkin_json: {
      if (spans.empty()) return append_zipkin_json_list(out, recorded);
      const std::string rest = zipkin_json_list(spans);  // [...]
      if (recorded.empty()) {
        out += rest;
        return;
      }
      append_zipkin_json_list(out, recorded);
      out.pop_back();  // ']'
      out += ',';
      out.append(rest, 1);
      return;
    }
  }
}

}  // namespace

std::string encode_batch(export_protocol p, std::span<const recorded_span_ptr> recorded,
                         const std::vector<span>& spans) {
  std::string body;
  append_batch(body, p, recorded, spans);
  return body;
}

std::unique_ptr<export_transport> make_http_transport() {
  return std::make_unique<http_transport>();
}

std::optional<nanoseconds> parse_retry_after(std::string_view value, wall_time now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  std::uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    constexpr std::uint64_t max_seconds = 24 * 3600;  // a day is plenty; no overflow
    return std::chrono::seconds(std::min(seconds, max_seconds));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text(value);
  const char* rest = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (rest == nullptr || *rest != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return nanoseconds{0};
  return std::chrono::duration_cast<nanoseconds>(at - now);
}

exporter::exporter(exporter_options options, std::unique_ptr<export_transport> transport,
                   metrics::registry* metrics)
    : options_(std::move(options)), transport_(std::move(transport)) {
  if (metrics != nullptr) {
    auto& spans =
        metrics->add_counter("outrider_tracing_exporter_spans_total",
                             "Spans handed to the trace exporter, by outcome", {"outcome"});
    exported_metric_ = spans.with({"exported"});
    dropped_metric_ = spans.with({"dropped"});
    failed_metric_ = spans.with({"failed"});
    queue_metric_ =
        &metrics->add_gauge("outrider_tracing_exporter_queue_size", "Spans waiting to be exported")
             .get();
  }
}

exporter::~exporter() {
  stop();
}

status exporter::start() {
  auto u = http::url::parse(options_.endpoint);
  if (!u) {
    return error(errc::config_invalid,
                 "trace endpoint '" + options_.endpoint + "': " + u.error().message);
  }
  url_ = std::move(*u);
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.max_attempts == 0) options_.max_attempts = 1;
  if (options_.max_in_flight == 0) options_.max_in_flight = 1;
  recorded_.reserve(std::min(options_.max_queue, options_.max_batch));
  started_ = true;
  worker_ = std::thread([this] { run(); });
  for (std::size_t i = 0; i < options_.max_in_flight; ++i) {
    senders_.emplace_back([this] { sender(); });
  }
  return ok_status();
}

void exporter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    stop_deadline_ = std::chrono::steady_clock::now() + options_.flush_timeout;
  }
  wake_.notify_all();
  send_wake_.notify_all();
  slot_free_.notify_all();
  retry_wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (auto& t : senders_) {
    if (t.joinable()) t.join();
  }
}

template <class Queue, class Item>
void exporter::enqueue(Queue& queue, Item&& item) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && started_ && queued() < options_.max_queue) {
      queue.push_back(std::forward<Item>(item));
      const auto n = queued();
      if (queue_metric_ != nullptr) queue_metric_->set(static_cast<double>(n));
      // The batching thread waits for the first span, then for a full batch.
      if (n == 1 || n == options_.max_batch) wake_.notify_one();
      return;
    }
  }
  // Dropped: the caller's item is freed when it returns, outside the lock.
  dropped_.fetch_add(1, std::memory_order_relaxed);
  if (dropped_metric_ != nullptr) dropped_metric_->inc();
}

void exporter::export_span(span&& s) {
  enqueue(spans_, std::move(s));
}

void exporter::export_recorded(recorded_span_ptr s) {
  enqueue(recorded_, std::move(s));
}

exporter::counts exporter::stats() const {
  return {exported_.load(), dropped_.load(), failed_.load(), requests_.load()};
}

void exporter::count_failed(std::size_t n) {
  failed_.fetch_add(n, std::memory_order_relaxed);
  if (failed_metric_ != nullptr) failed_metric_->inc(n);
}

void exporter::run() {
  // Named so per-thread CPU (top -H, /proc/PID/task/*/comm) tells the exporter apart.
  pthread_setname_np(pthread_self(), "trace-export");
  std::vector<recorded_span_ptr> recorded;  // the batch being encoded (capacity reused)
  std::vector<span> spans;
  std::unique_lock lock(mutex_);
  const auto finish = [&] {
    batching_done_ = true;
    send_wake_.notify_all();
  };
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || queued() > 0; });
    if (!stopping_ && queued() < options_.max_batch) {
      // Give the batch time to fill (or until it is full / we stop).
      wake_.wait_for(lock, options_.batch_delay,
                     [&] { return stopping_ || queued() >= options_.max_batch; });
    }
    if (queued() == 0) {
      if (stopping_) return finish();
      continue;
    }
    if (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_) {
      const auto left = queued();
      std::vector<recorded_span_ptr> dead;
      dead.swap(recorded_);
      spans_.clear();
      finish();
      lock.unlock();
      count_failed(left);
      logger.warn("exporter stopped with {} spans unsent", left);
      return;
    }
    // Take a batch: recorded spans first (a swap when they all fit), then full ones.
    recorded.clear();
    spans.clear();
    if (recorded_.size() <= options_.max_batch) {
      recorded.swap(recorded_);
    } else {
      const auto n = static_cast<std::ptrdiff_t>(options_.max_batch);
      recorded.assign(std::make_move_iterator(recorded_.begin()),
                      std::make_move_iterator(recorded_.begin() + n));
      recorded_.erase(recorded_.begin(), recorded_.begin() + n);
    }
    while (recorded.size() + spans.size() < options_.max_batch && !spans_.empty()) {
      spans.push_back(std::move(spans_.front()));
      spans_.pop_front();
    }
    if (queue_metric_ != nullptr) queue_metric_->set(static_cast<double>(queued()));
    encoded batch;
    if (!spare_bodies_.empty()) {
      batch.body = std::move(spare_bodies_.back());
      spare_bodies_.pop_back();
    }
    lock.unlock();
    batch.spans = recorded.size() + spans.size();
    // Into a reused buffer: big fresh allocations cost page faults.
    if (options_.protocol == export_protocol::otlp_protobuf && spans.empty()) {
      // Over the last body's bytes: not zero-filled again first (resize).
      const std::string_view body = encode_otlp_protobuf_into(batch.body, recorded);
      batch.offset = static_cast<std::size_t>(body.data() - batch.body.data());
      batch.size = body.size();
    } else {
      batch.body.clear();
      append_batch(batch.body, options_.protocol, recorded, spans);
      batch.offset = 0;
      batch.size = batch.body.size();
    }
    release_recorded_spans(recorded);  // back to the tracers, outside the lock
    lock.lock();
    // At most max_in_flight batches encoded or being sent; meanwhile spans queue (and drop).
    slot_free_.wait(lock, [&] {
      return in_flight_ < options_.max_in_flight ||
             (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_);
    });
    if (in_flight_ >= options_.max_in_flight) {
      count_failed(batch.spans);
      continue;
    }
    ++in_flight_;
    to_send_.push_back(std::move(batch));
    send_wake_.notify_one();
  }
}

void exporter::sender() {
  pthread_setname_np(pthread_self(), "trace-send");
  std::unique_lock lock(mutex_);
  while (true) {
    send_wake_.wait(lock, [&] { return !to_send_.empty() || batching_done_; });
    if (to_send_.empty()) return;  // batching is done and nothing is left
    encoded batch = std::move(to_send_.front());
    to_send_.pop_front();
    lock.unlock();
    send(batch);
    lock.lock();
    if (spare_bodies_.size() <= options_.max_in_flight)
      spare_bodies_.push_back(std::move(batch.body));
    --in_flight_;
    slot_free_.notify_one();
  }
}

bool exporter::wait_retry(nanoseconds d) {
  if (retry_hook_) retry_hook_(d);
  std::unique_lock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + d;
  while (true) {
    const auto limit = stopping_ ? std::min(until, stop_deadline_) : until;
    if (std::chrono::steady_clock::now() >= limit) break;
    retry_wake_.wait_until(lock, limit);
  }
  return !(stopping_ && std::chrono::steady_clock::now() >= stop_deadline_);
}

void exporter::send(const encoded& batch) {
  const auto type = content_type_of(options_.protocol);
  nanoseconds backoff = options_.initial_backoff;
  for (std::uint32_t attempt = 1;; ++attempt) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    auto res =
        transport_->post(url_, std::string_view(batch.body).substr(batch.offset, batch.size), type,
                         options_.request_timeout);  // not copied
    if (res && res->status >= 200 && res->status < 300) {
      exported_.fetch_add(batch.spans, std::memory_order_relaxed);
      if (exported_metric_ != nullptr) exported_metric_->inc(batch.spans);
      return;
    }
    const bool retry = !res || retryable_status(res->status);
    if (!retry || attempt >= options_.max_attempts) {
      logger.warn("exporting {} spans to {} failed: {}", batch.spans, options_.endpoint,
                  res ? "HTTP " + std::to_string(res->status) : res.error().message);
      count_failed(batch.spans);
      return;
    }
    nanoseconds wait = backoff;
    if (res) {
      if (auto ra = res->headers.get("retry-after")) {
        if (auto d = parse_retry_after(*ra, std::chrono::system_clock::now())) wait = *d;
      }
    }
    backoff = std::min(options_.max_backoff, backoff * 2);
    if (!wait_retry(wait)) {
      count_failed(batch.spans);
      return;
    }
  }
}

}  // namespace outrider::tracing
