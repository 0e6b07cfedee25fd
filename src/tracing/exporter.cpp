#include "tracing/exporter.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>

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

namespace {
std::atomic<std::uint64_t> next_exporter_id{1};
}  // namespace

namespace {
// The lock of a recording thread's chunk: taken per span by that thread (for
// a packing, ~100 instructions) and once per batch by the batching thread
// (to take the open chunk or give a buffer back), so almost never contended.
// Uncontended it is an exchange and a store where a mutex costs ~60
// instructions per span (two calls into libpthread); contended it spins
// briefly, then yields (the holder may have been preempted).
class chunk_lock {
 public:
  void lock() noexcept {
    if (locked_.exchange(true, std::memory_order_acquire)) [[unlikely]] {
      lock_contended();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  [[gnu::cold]] [[gnu::noinline]] void lock_contended() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      constexpr int spins = 64;
      for (int i = 0; i < spins && locked_.load(std::memory_order_relaxed); ++i) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      if (locked_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }

  std::atomic<bool> locked_{false};
};
}  // namespace

struct exporter::thread_chunks {
  chunk_lock mutex;  // the recording thread per span; the batching thread when it collects
  chunk open;
  // Buffers of this thread's encoded chunks, for its next ones.
  std::vector<std::pair<std::unique_ptr<char[]>, std::size_t>> spares;
  std::thread::id owner;
};

exporter::exporter(exporter_options options, std::unique_ptr<export_transport> transport,
                   metrics::registry* metrics)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      id_(next_exporter_id.fetch_add(1, std::memory_order_relaxed)) {
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
  constexpr std::size_t max_chunk_spans = 256;
  chunk_spans_ = std::clamp<std::size_t>(std::min(options_.max_batch, options_.max_queue / 4), 1,
                                         max_chunk_spans);
  // Enough for the chunks of a batch being encoded while the thread fills more.
  max_spares_ = std::min<std::size_t>(options_.max_batch / chunk_spans_ + 2, 16);
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  accepting_.store(true, std::memory_order_release);
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
    accepting_.store(false, std::memory_order_relaxed);
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
  // Spans a thread encoded while the batching thread finished (it had taken
  // every chunk it was told of): not sent, counted.
  std::size_t left = 0;
  std::lock_guard lock(mutex_);
  for (const auto& t : threads_) {
    std::lock_guard chunk_lock(t->mutex);
    left += t->open.spans;
    t->open = chunk{};
  }
  if (left != 0) count_dropped(left);
}

void exporter::count_dropped(std::size_t n) {
  dropped_.fetch_add(n, std::memory_order_relaxed);
  if (dropped_metric_ != nullptr) dropped_metric_->inc(n);
}

void exporter::export_span(span&& s) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && started_ && queued() < options_.max_queue) {
      spans_.push_back(std::move(s));
      const auto n = queued();
      if (queue_metric_ != nullptr) queue_metric_->set(static_cast<double>(n));
      // The batching thread waits for the first span, then for a full batch.
      if (waiting_for_spans_ || n == options_.max_batch) wake_.notify_one();
      return;
    }
  }
  count_dropped(1);  // `s` is freed by the caller, outside the lock
}

namespace {
// The last exporter this thread recorded a span for and its chunks there.
thread_local std::uint64_t last_exporter = 0;
thread_local void* last_chunks = nullptr;
}  // namespace

exporter::thread_chunks& exporter::chunks_of_this_thread() {
  // The exporters this thread recorded spans for (usually one), by id: ids
  // are never reused, so the entry of an exporter that is gone never matches.
  struct entry {
    std::uint64_t exporter;
    thread_chunks* chunks;
  };
  constexpr std::size_t remembered = 8;
  thread_local std::vector<entry> mine;
  for (const auto& e : mine) {
    if (e.exporter == id_) {
      last_exporter = id_;
      last_chunks = e.chunks;
      return *e.chunks;
    }
  }
  thread_chunks* found = nullptr;
  {
    std::lock_guard lock(mutex_);
    const auto self = std::this_thread::get_id();
    for (const auto& t : threads_) {
      if (t->owner == self) found = t.get();
    }
    if (found == nullptr) {
      threads_.push_back(std::make_shared<thread_chunks>());
      found = threads_.back().get();
      found->owner = self;
    }
  }
  if (mine.size() == remembered) mine.erase(mine.begin());
  mine.push_back({id_, found});
  last_exporter = id_;
  last_chunks = found;
  return *found;
}

void exporter::refuse(recorded_span_ptr s) {
  count_dropped(1);
  recycle_recorded_span(std::move(s));
}

void exporter::export_recorded(recorded_span_ptr s) {
  if (!accepting_.load(std::memory_order_acquire)) [[unlikely]] {
    return refuse(std::move(s));
  }
  thread_chunks& t =
      last_exporter == id_ ? *static_cast<thread_chunks*>(last_chunks) : chunks_of_this_thread();
  {
    // The usual case, straight through: the span packs into the open chunk
    // of its resource, with room left, and does not fill it.
    std::lock_guard lock(t.mutex);
    chunk& c = t.open;
    if (c.spans != 0 && c.spans + 1 < chunk_spans_ && c.resource == s->resource && s->packs()) {
      const std::size_t end = c.size + s->packed_size();
      if (end <= c.capacity) {
        s->pack(c.bytes.get() + c.size);
        c.size = end;
        ++c.spans;
        recycle_recorded_span(std::move(s));  // while its lines are in this core's cache
        return;
      }
    }
  }
  add_recorded(t, std::move(s));
}

void exporter::add_recorded(thread_chunks& t, recorded_span_ptr s) {
  std::array<chunk, 2> full;  // one of another resource, one filled
  std::size_t filled = 0;
  bool opened = false;
  {
    std::lock_guard lock(t.mutex);
    chunk& c = t.open;
    if (c.spans != 0 && c.resource != s->resource) {
      full[filled++] = std::exchange(c, chunk{});
    }
    if (c.spans == 0) {
      c.resource = s->resource;
      c.owner = &t;
      opened = true;
      if (c.capacity == 0) {
        // A buffer of an earlier chunk of this thread, else one sized for a chunk.
        if (!t.spares.empty()) {
          std::tie(c.bytes, c.capacity) = std::move(t.spares.back());
          t.spares.pop_back();
        } else {
          constexpr std::size_t typical_packed_span = 320;
          c.capacity = chunk_spans_ * typical_packed_span;
          c.bytes = std::make_unique_for_overwrite<char[]>(c.capacity + packed_slack);
        }
      }
    }
    if (s->packs()) {
      const std::size_t end = c.size + s->packed_size();
      if (c.capacity < end) {
        const std::size_t grown = std::max(end, 2 * c.capacity);
        auto bigger = std::make_unique_for_overwrite<char[]>(grown + packed_slack);
        std::memcpy(bigger.get(), c.bytes.get(), c.size);
        c.bytes = std::move(bigger);
        c.capacity = grown;
      }
      s->pack(c.bytes.get() + c.size);
      c.size = end;
    } else {
      c.records.push_back(std::move(s));  // rare: crosses as it is
    }
    if (++c.spans >= chunk_spans_) full[filled++] = std::exchange(c, chunk{});
  }
  if (s) recycle_recorded_span(std::move(s));
  if (filled != 0 || opened) hand_over(t, std::span(full.data(), filled), opened);
}

void exporter::hand_over(thread_chunks& t, std::span<chunk> full, bool opened) {
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    for (chunk& c : full) {
      if (stopping_ || chunked_spans_ + c.spans > options_.max_queue) {
        dropped += c.spans;
        continue;
      }
      chunked_spans_ += c.spans;
      chunks_.push_back(std::move(c));
    }
    if (opened) open_chunks_ = true;
    const auto n = queued();
    if (queue_metric_ != nullptr) queue_metric_->set(static_cast<double>(n));
    // The batching thread waits for the first span, then for a full batch.
    if ((opened && waiting_for_spans_) || n >= options_.max_batch) wake_.notify_one();
  }
  if (dropped == 0) return;
  count_dropped(dropped);
  // The dropped chunks' records freed and buffers kept, outside the exporter's lock.
  for (chunk& c : full) {
    if (c.capacity != 0) {
      std::lock_guard lock(t.mutex);
      if (t.spares.size() < max_spares_) t.spares.emplace_back(std::move(c.bytes), c.capacity);
    }
    c = chunk{};
  }
}

exporter::counts exporter::stats() const {
  return {exported_.load(), dropped_.load(), failed_.load(), requests_.load()};
}

void exporter::count_failed(std::size_t n) {
  failed_.fetch_add(n, std::memory_order_relaxed);
  if (failed_metric_ != nullptr) failed_metric_->inc(n);
}

void exporter::collect_open_chunks(std::unique_lock<std::mutex>& lock) {
  open_chunks_ = false;  // before taking them: a chunk opened from now on sets it again
  thread_local std::vector<std::shared_ptr<thread_chunks>> threads;
  thread_local std::vector<chunk> taken;
  threads = threads_;
  lock.unlock();
  for (const auto& t : threads) {
    std::lock_guard chunk_lock(t->mutex);
    if (t->open.spans != 0) taken.push_back(std::exchange(t->open, chunk{}));
  }
  threads.clear();
  lock.lock();
  for (chunk& c : taken) {
    // Accepted already: bounded by a chunk per thread, not refused here.
    chunked_spans_ += c.spans;
    chunks_.push_back(std::move(c));
  }
  taken.clear();
}

void exporter::encode(encoded& batch, std::span<chunk> chunks,
                      const std::vector<span>& spans) const {
  // Resources in first-seen order (a sidecar's spans have one or two).
  std::array<const span_resource*, 4> few{};
  std::vector<const span_resource*> more;
  std::size_t resources = 0;
  for (const chunk& c : chunks) {
    const span_resource* r = c.resource.get();
    bool seen = false;
    for (std::size_t i = 0; i < resources && !seen; ++i) {
      seen = (i < few.size() ? few[i] : more[i - few.size()]) == r;
    }
    if (seen) continue;
    if (resources < few.size()) {
      few[resources] = r;
    } else {
      more.push_back(r);
    }
    ++resources;
  }
  const auto resource_at = [&](std::size_t i) {
    return i < few.size() ? few[i] : more[i - few.size()];
  };
  // Calls `fn(record)` for every span of the chunks of resource `r`: packed
  // ones unpacked into one scratch record (this thread's: its lines stay here).
  thread_local recorded_span scratch;
  const auto for_each_span = [&](const span_resource* r, auto&& fn) {
    for (chunk& c : chunks) {
      if (c.resource.get() != r) continue;
      scratch.resource = c.resource;  // the same pointer: no count is touched
      for (const char* p = c.bytes.get(); p != c.bytes.get() + c.size;) {
        p = scratch.unpack(p);
        fn(scratch);
      }
      for (const auto& record : c.records) fn(*record);
    }
  };
  std::string& out = batch.body;
  batch.offset = 0;
  switch (options_.protocol) {
    case export_protocol::otlp_protobuf: {
      // A head per resource, then its spans' fields, written over the last
      // body's bytes (not zero-filled again): the spans first, after room for
      // the longest head, which is moved into place once their size is known.
      thread_local std::string head;
      std::size_t at = 0;
      for (std::size_t i = 0; i < resources; ++i) {
        const span_resource* r = resource_at(i);
        head.clear();
        append_otlp_protobuf_head(head, r, std::numeric_limits<std::uint32_t>::max());
        const std::size_t room = head.size();  // the head of a group of any size fits
        std::size_t end = at + room;
        std::size_t packed = 0;  // about the size of the fields
        for (const chunk& c : chunks) packed += c.resource.get() == r ? c.size : 0;
        if (out.size() < end + packed) out.resize(std::max(end + packed, 2 * out.size()));
        for (chunk& c : chunks) {
          if (c.resource.get() != r) continue;
          // Packed records written straight from their bytes; then the others.
          for (const char* p = c.bytes.get(); p != c.bytes.get() + c.size;) {
            end = write_packed_otlp_protobuf_span_field(out, end, p);
          }
          for (const auto& record : c.records) {
            end = write_otlp_protobuf_span_field(out, end, *record);
          }
        }
        const std::size_t group = end - (at + room);
        head.clear();
        append_otlp_protobuf_head(head, r, group);
        if (i == 0) {
          // The body starts where this head does: at the end of its room.
          batch.offset = room - head.size();
        } else if (head.size() != room) {
          std::memmove(out.data() + at + head.size(), out.data() + at + room, group);
        }
        const std::size_t head_at = i == 0 ? batch.offset : at;
        std::memcpy(out.data() + head_at, head.data(), head.size());
        at = head_at + head.size() + group;
      }
      if (!spans.empty()) {
        // Serialized messages concatenate into one: resource_spans repeat.
        const std::string rest = encode_otlp_protobuf(spans);
        if (out.size() < at + rest.size()) out.resize(at + rest.size());
        std::memcpy(out.data() + at, rest.data(), rest.size());
        at += rest.size();
      }
      batch.size = at - batch.offset;
      return;
    }
    case export_protocol::otlp_json: {
      out.clear();
      if (resources == 0) {
        out = encode_otlp_json(spans);
        batch.size = out.size();
        return;
      }
      out += "{\"resourceSpans\":[";
      for (std::size_t i = 0; i < resources; ++i) {
        const span_resource* r = resource_at(i);
        if (i != 0) out += ',';
        append_otlp_json_group_open(out, r);
        bool first = true;
        for_each_span(r, [&](const recorded_span& s) {
          if (!first) out += ',';
          first = false;
          append_otlp_json_span(out, s);
        });
        out += otlp_json_group_close;
      }
      if (!spans.empty()) {
        const std::string rest = encode_otlp_json(spans);  // {"resourceSpans":[...]}
        constexpr std::string_view open = "{\"resourceSpans\":[";
        out += ',';
        out.append(rest, open.size());
      } else {
        out += "]}";
      }
      batch.size = out.size();
      return;
    }
    case export_protocol::zipkin_json: {
      out.clear();
      if (chunks.empty()) {
        out = zipkin_json_list(spans);
        batch.size = out.size();
        return;
      }
      out += '[';
      bool first = true;
      for (std::size_t i = 0; i < resources; ++i) {
        for_each_span(resource_at(i), [&](const recorded_span& s) {
          if (!first) out += ',';
          first = false;
          append_zipkin_json_span(out, s);
        });
      }
      if (!spans.empty()) {
        const std::string rest = zipkin_json_list(spans);  // [...]
        out += ',';
        out.append(rest, 1);
      } else {
        out += ']';
      }
      batch.size = out.size();
      return;
    }
  }
}

void exporter::run() {
  // Named so per-thread CPU (top -H, /proc/PID/task/*/comm) tells the exporter apart.
  pthread_setname_np(pthread_self(), "trace-export");
  std::vector<chunk> chunks;  // the batch being assembled (capacity reused)
  std::vector<span> spans;
  std::unique_lock lock(mutex_);
  const auto finish = [&] {
    batching_done_ = true;
    send_wake_.notify_all();
  };
  while (true) {
    waiting_for_spans_ = true;
    wake_.wait(lock, [&] { return stopping_ || queued() > 0 || open_chunks_; });
    waiting_for_spans_ = false;
    if (!stopping_ && queued() < options_.max_batch) {
      // Give the batch time to fill (or until it is full / we stop).
      wake_.wait_for(lock, options_.batch_delay,
                     [&] { return stopping_ || queued() >= options_.max_batch; });
    }
    // After the delay (or when stopping): the spans still in threads' open chunks too.
    if (queued() < options_.max_batch) collect_open_chunks(lock);
    if (queued() == 0) {
      if (stopping_) return finish();
      continue;
    }
    if (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_) {
      const auto left = queued();
      std::deque<chunk> dead_chunks;
      dead_chunks.swap(chunks_);
      chunked_spans_ = 0;
      std::deque<span> dead_spans;
      dead_spans.swap(spans_);
      finish();
      lock.unlock();
      count_failed(left);
      logger.warn("exporter stopped with {} spans unsent", left);
      return;
    }
    // Take a batch: whole chunks (at least one) up to max_batch spans, then full spans.
    chunks.clear();
    spans.clear();
    std::size_t taken = 0;
    while (!chunks_.empty() &&
           (chunks.empty() || taken + chunks_.front().spans <= options_.max_batch)) {
      taken += chunks_.front().spans;
      chunks.push_back(std::move(chunks_.front()));
      chunks_.pop_front();
    }
    chunked_spans_ -= taken;
    while (taken + spans.size() < options_.max_batch && !spans_.empty()) {
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
    batch.spans = taken + spans.size();
    encode(batch, chunks, spans);  // into a reused body: big fresh allocations cost page faults
    for (chunk& c : chunks) {
      release_recorded_spans(c.records);  // back to the tracers
      // The buffer back to its thread for a next chunk.
      if (c.capacity == 0) continue;
      std::lock_guard owner_lock(c.owner->mutex);
      if (c.owner->spares.size() < max_spares_) {
        c.owner->spares.emplace_back(std::move(c.bytes), c.capacity);
      }
    }
    chunks.clear();  // the rest freed here, outside the exporter's lock
    spans.clear();
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
