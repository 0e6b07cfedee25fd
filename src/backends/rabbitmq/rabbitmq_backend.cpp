#include "backends/rabbitmq/rabbitmq_backend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "backends/rabbitmq/cloud_events_amqp.h"
#include "base/log.h"
#include "base/random.h"
#include "base/time_format.h"

namespace outrider::backends {
namespace {

const log::logger logger{"rabbitmq"};

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Channels of the one connection: publishing (confirm mode), declarations
// (synchronous RPCs whose errors close only that channel), the due-queue
// consumer, the schedule-journal consumer; subscriptions from 10 on.
constexpr amqp_channel_t publish_channel = 1;
constexpr amqp_channel_t topology_channel = 2;
constexpr amqp_channel_t due_channel = 3;
constexpr amqp_channel_t journal_channel = 4;
constexpr amqp_channel_t first_subscription_channel = 10;
constexpr amqp_channel_t last_subscription_channel = 2000;

constexpr std::string_view delay_prefix = "outrider.delay.";
constexpr std::string_view due_name = "outrider.delay.due";
// The schedule journal (a stream): one record per delayed message and per
// cancel; the keeper lock (an exclusive queue) elects the backend that
// re-appends records older than half the journal's retention.
constexpr std::string_view journal_name = "outrider.delay.journal";
constexpr std::string_view keeper_name = "outrider.delay.journal-keeper";

// Internal headers (stripped from deliveries).
constexpr std::string_view h_attempt = "outrider-attempt";
constexpr std::string_view h_published = "outrider-published-at";
constexpr std::string_view h_deliver_at = "outrider-deliver-at";
constexpr std::string_view h_delay_to = "outrider-delay-to";
constexpr std::string_view h_topic = "outrider-topic";
constexpr std::string_view h_delivery_count = "x-delivery-count";
constexpr std::string_view h_journal = "outrider-journal";  // scheduled | cancelled | marker

constexpr unsigned generation_shift = 32;
constexpr std::uint64_t local_handle_mask = 0xffffffffULL;
constexpr int max_frames_per_turn = 4000;
constexpr auto max_poll_wait = milliseconds(200);
constexpr auto prune_interval = std::chrono::seconds(30);
// Scheduled and cancelled ids are remembered this long after they came due.
constexpr auto keep_after_due = std::chrono::hours(1);
constexpr auto rpc_timeout = std::chrono::seconds(10);
constexpr std::uint32_t journal_prefetch = 2000;
// Journal segments: retention (x-max-age) removes whole closed segments.
constexpr std::int64_t journal_segment_bytes = 1'000'000;

amqp_bytes_t bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string str(amqp_bytes_t b) {
  if (b.len == 0) return {};
  return std::string(static_cast<const char*>(b.bytes), b.len);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t to_ms(wall_time t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// A due time in whole milliseconds, rounded up: rounded down, a message due at
// 12.7 ms could be sent on at 12.0 ms, before its time.
std::int64_t due_ms(wall_time t) {
  return std::chrono::ceil<milliseconds>(t.time_since_epoch()).count();
}

std::int64_t parse_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

error shutting_down_error() {
  return error(errc::shutting_down, "the rabbitmq pub/sub backend is closed");
}

// An AMQP field table under construction; strings live as long as the builder.
class table_builder {
 public:
  table_builder& add(std::string_view key, std::string value) {
    keys_.emplace_back(key);
    values_.push_back(std::move(value));
    amqp_table_entry_t e{};
    e.key = bytes(keys_.back());
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = bytes(values_.back());
    entries_.push_back(e);
    return *this;
  }
  table_builder& add_i64(std::string_view key, std::int64_t v) {
    keys_.emplace_back(key);
    amqp_table_entry_t e{};
    e.key = bytes(keys_.back());
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = v;
    entries_.push_back(e);
    return *this;
  }
  amqp_table_t table() {
    return amqp_table_t{static_cast<int>(entries_.size()),
                        entries_.empty() ? nullptr : entries_.data()};
  }

 private:
  std::deque<std::string> keys_;
  std::deque<std::string> values_;
  std::vector<amqp_table_entry_t> entries_;
};

// A message as it travels through RabbitMQ: the user's part plus Outrider's
// internal headers.
struct wire {
  id128 id;
  std::string topic;
  header_list headers;  // user headers, content-type included
  std::string body;
  std::int64_t published_ms = 0;
  std::uint32_t attempt = 1;  // the attempt number of the next delivery
  std::int64_t deliver_at_ms = 0;
  std::string delay_to;              // "x:<exchange>" or "q:<queue>"
  std::uint32_t delivery_count = 0;  // x-delivery-count on receipt (quorum queues)
  std::string journal;               // schedule-journal records: the record's kind
};

bool field_to_string(const amqp_field_value_t& v, std::string& out) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: out = str(v.value.bytes); return true;
    case AMQP_FIELD_KIND_BOOLEAN: out = v.value.boolean ? "true" : "false"; return true;
    case AMQP_FIELD_KIND_I8: out = std::to_string(v.value.i8); return true;
    case AMQP_FIELD_KIND_U8: out = std::to_string(v.value.u8); return true;
    case AMQP_FIELD_KIND_I16: out = std::to_string(v.value.i16); return true;
    case AMQP_FIELD_KIND_U16: out = std::to_string(v.value.u16); return true;
    case AMQP_FIELD_KIND_I32: out = std::to_string(v.value.i32); return true;
    case AMQP_FIELD_KIND_U32: out = std::to_string(v.value.u32); return true;
    case AMQP_FIELD_KIND_I64:
    case AMQP_FIELD_KIND_TIMESTAMP: out = std::to_string(v.value.i64); return true;
    case AMQP_FIELD_KIND_U64: out = std::to_string(v.value.u64); return true;
    default: return false;
  }
}

// A stable id for a message published without a parseable message-id (a
// plain AMQP client): FNV-1a of its body and message-id, twice.
id128 derived_id(const std::string& message_id, const std::string& body) {
  auto fnv = [](std::uint64_t h, std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  id128 id;
  id.high = fnv(fnv(0xcbf29ce484222325ULL, message_id), body);
  id.low = fnv(fnv(0x84222325cbf29ce4ULL, body), message_id);
  return id;
}

wire decode(const amqp_message_t& m, const std::string& exchange) {
  wire w;
  const amqp_basic_properties_t& p = m.properties;
  w.body = str(m.body);
  if ((p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0) {
    w.headers.emplace_back("content-type", str(p.content_type));
  }
  std::string message_id;
  if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) message_id = str(p.message_id);
  if (auto id = id128::parse(message_id)) {
    w.id = *id;
  } else if (auto hex = id128::parse_hex(message_id)) {
    w.id = *hex;
  } else {
    w.id = derived_id(message_id, w.body);
  }
  if ((p._flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = p.headers.entries[i];
      const std::string key = str(e.key);
      std::string value;
      if (!field_to_string(e.value, value)) continue;
      if (key == h_attempt) {
        w.attempt = static_cast<std::uint32_t>(std::max<std::int64_t>(1, parse_i64(value)));
      } else if (key == h_published) {
        w.published_ms = parse_i64(value);
      } else if (key == h_deliver_at) {
        w.deliver_at_ms = parse_i64(value);
      } else if (key == h_delay_to) {
        w.delay_to = value;
      } else if (key == h_topic) {
        w.topic = value;
      } else if (key == h_journal) {
        w.journal = value;
      } else if (key == h_delivery_count) {
        w.delivery_count = static_cast<std::uint32_t>(std::max<std::int64_t>(0, parse_i64(value)));
      } else if (key.starts_with("x-")) {
        continue;  // broker bookkeeping (x-death, x-first-death-*)
      } else {
        w.headers.emplace_back(key, std::move(value));
      }
    }
  }
  if (w.published_ms == 0) {
    w.published_ms = (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0
                         ? static_cast<std::int64_t>(p.timestamp) * 1000
                         : now_ms();
  }
  if (w.topic.empty()) w.topic = exchange;
  // A binary-mode CloudEvent (from a binary-mode sidecar or a plain AMQP
  // client): back to the structured event the sidecar expects.
  cloud_events_amqp::to_structured(w.headers, w.body);
  return w;
}

struct url_parts {
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  bool tls = false;
};

result<url_parts> parse_url(const std::string& url) {
  std::string buf = url;
  amqp_connection_info info{};
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK) {
    return error(errc::config_invalid,
                 "not an AMQP URL (amqp://user:password@host:port/vhost or amqps://...)");
  }
  url_parts u;
  u.host = info.host;
  u.port = info.port;
  u.vhost = (info.vhost == nullptr || *info.vhost == '\0') ? "/" : info.vhost;
  u.user = info.user;
  u.password = info.password;
  u.tls = info.ssl != 0;
  return u;
}

}  // namespace

struct rabbitmq_backend::impl {
  struct subscription {
    subscription_spec spec;
    delivery_fn on_delivery;
    std::string queue;
    std::string dlq;
    amqp_channel_t channel = 0;
    std::string consumer_tag;
    bool closing = false;
    int in_progress = 0;  // republishes awaiting a confirm before their ack
    struct pending {
      wire w;
      std::uint32_t attempt = 1;
      std::pair<steady::time_point, std::uint64_t> lease_timer;
    };
    std::map<std::uint64_t, pending> unsettled;
  };

  explicit impl(rabbitmq_backend_options o, url_parts u) : opts(std::move(o)), url(std::move(u)) {
    if (!opts.username.empty()) url.user = opts.username;
    if (!opts.password.empty()) url.password = opts.password;
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  }
  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  rabbitmq_backend_options opts;
  url_parts url;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> closed{false};

  std::mutex mutex;
  std::deque<std::function<void(impl&)>> commands;  // guarded by mutex
  bool stop_requested = false;                      // guarded by mutex
  bool finished = false;                            // guarded by mutex: the thread is done

  // ---- backend thread only ----
  amqp_connection_state_t conn = nullptr;
  bool connected = false;
  bool broken = false;
  bool stopping = false;
  std::string broken_reason;
  std::uint32_t generation = 1;
  nanoseconds backoff{};
  steady::time_point next_connect{};
  steady::time_point next_prune{};
  std::uint64_t next_seq = 1;
  std::map<std::uint64_t, std::function<void(status)>> confirms;
  std::set<std::string, std::less<>> declared_exchanges;
  std::map<subscription_handle, subscription> subs;
  std::unordered_map<amqp_channel_t, subscription_handle> by_channel;
  std::set<amqp_channel_t> free_channels;
  amqp_channel_t next_channel = first_subscription_channel;
  subscription_handle next_handle = 1;
  std::uint64_t next_timer = 1;
  std::map<std::pair<steady::time_point, std::uint64_t>, std::function<void()>> timers;
  // The schedule journal as read back (every backend reads all of it): each
  // delayed message not yet due + keep_after_due, whether it was cancelled,
  // and when its newest journal record was appended (for the keeper).
  struct journal_entry {
    std::int64_t deliver_at_ms = 0;
    std::int64_t appended_ms = 0;
    bool cancelled = false;
  };
  std::unordered_map<id128, journal_entry> index;
  // False from connecting until this backend read back its own marker record:
  // until then cancels wait and due messages are held (a cancel recorded by
  // another backend may not be known yet).
  bool caught_up = false;
  id128 marker;
  std::vector<std::pair<std::uint64_t, wire>> held_due;
  std::vector<std::pair<id128, callback<status>>> waiting_cancels;
  bool keeper = false;  // holds the keeper lock (this connection)
  steady::time_point next_refresh{};
  // Ids published recently (duplicate refusal) and when.
  std::unordered_map<id128, steady::time_point> recent;
  std::deque<std::pair<steady::time_point, id128>> recent_order;

  std::string where() const {
    return url.host + ":" + std::to_string(url.port) + (url.vhost == "/" ? "" : "/" + url.vhost);
  }
  error not_connected() const {
    return error(errc::unavailable, "not connected to RabbitMQ at " + where());
  }
  bool usable() const { return connected && !broken; }

  // ---------------- commands from other threads ----------------

  void post(std::function<void(impl&)> fn) {
    {
      std::unique_lock lock(mutex);
      if (finished) {
        // The backend thread is gone: every command refuses at once (shutting_down).
        lock.unlock();
        fn(*this);
        return;
      }
      commands.push_back(std::move(fn));
    }
    wake();
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  // ---------------- timers ----------------

  std::pair<steady::time_point, std::uint64_t> add_timer(nanoseconds after,
                                                         std::function<void()> fn) {
    auto key = std::make_pair(steady::now() + after, next_timer++);
    timers.emplace(key, std::move(fn));
    return key;
  }
  void fire_timers() {
    const auto now = steady::now();
    while (!timers.empty() && timers.begin()->first.first <= now) {
      auto fn = std::move(timers.begin()->second);
      timers.erase(timers.begin());
      fn();
    }
  }

  // ---------------- the loop ----------------

  void run() {
    next_connect = steady::now();
    next_prune = steady::now() + prune_interval;
    for (;;) {
      if (!connected && steady::now() >= next_connect) {
        bool stop = false;
        {
          std::lock_guard lock(mutex);
          stop = stop_requested;
        }
        if (!stop) connect();
      }
      std::deque<std::function<void(impl&)>> batch;
      {
        std::lock_guard lock(mutex);
        batch.swap(commands);
        if (stop_requested) stopping = true;
      }
      for (auto& c : batch) c(*this);
      if (stopping) break;
      if (connected && broken) teardown();
      fire_timers();
      if (usable()) pump();
      if (connected && broken) teardown();
      if (steady::now() >= next_prune) prune();
      if (usable() && caught_up && steady::now() >= next_refresh) refresh_journal();
      wait_for_work();
    }
    shut();
    std::deque<std::function<void(impl&)>> late;
    {
      std::lock_guard lock(mutex);
      finished = true;
      late.swap(commands);
    }
    for (auto& c : late) c(*this);
  }

  void wait_for_work() {
    {
      std::lock_guard lock(mutex);
      if (!commands.empty() || stop_requested) return;
    }
    if (usable() && (amqp_frames_enqueued(conn) != 0 || amqp_data_in_buffer(conn) != 0)) return;
    auto until = steady::now() + max_poll_wait;
    if (!timers.empty()) until = std::min(until, timers.begin()->first.first);
    if (!connected) until = std::min(until, next_connect);
    const auto wait = std::chrono::duration_cast<milliseconds>(until - steady::now()).count();
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {-1, POLLIN, 0}};
    nfds_t n = 1;
    if (usable()) {
      fds[1].fd = amqp_get_sockfd(conn);
      n = 2;
    }
    ::poll(fds, n, static_cast<int>(std::max<std::int64_t>(0, wait + 1)));
    std::uint64_t drained = 0;
    [[maybe_unused]] auto r = ::read(wake_fd, &drained, sizeof drained);
  }

  void prune() {
    next_prune = steady::now() + prune_interval;
    const std::int64_t horizon =
        now_ms() - std::chrono::duration_cast<milliseconds>(keep_after_due).count();
    std::erase_if(index, [&](const auto& e) { return e.second.deliver_at_ms < horizon; });
    const auto oldest = steady::now() - opts.dedupe_window;
    while (!recent_order.empty() && recent_order.front().first < oldest) {
      auto it = recent.find(recent_order.front().second);
      if (it != recent.end() && it->second == recent_order.front().first) recent.erase(it);
      recent_order.pop_front();
    }
  }

  // ---------------- connection ----------------

  void connect() {
    conn = amqp_new_connection();
    amqp_socket_t* sock = nullptr;
    if (url.tls) {
      sock = amqp_ssl_socket_new(conn);
      if (sock != nullptr) {
        if (!opts.ca_cert_file.empty()) amqp_ssl_socket_set_cacert(sock, opts.ca_cert_file.c_str());
        if (!opts.client_cert_file.empty()) {
          amqp_ssl_socket_set_key(sock, opts.client_cert_file.c_str(),
                                  opts.client_key_file.c_str());
        }
        amqp_ssl_socket_set_verify_peer(sock, opts.verify_peer ? 1 : 0);
        amqp_ssl_socket_set_verify_hostname(sock, opts.verify_peer ? 1 : 0);
      }
    } else {
      sock = amqp_tcp_socket_new(conn);
    }
    auto fail = [&](const std::string& why) {
      amqp_destroy_connection(conn);
      conn = nullptr;
      backoff = backoff == nanoseconds{} ? opts.min_reconnect_interval
                                         : std::min(backoff * 2, opts.max_reconnect_interval);
      next_connect = steady::now() + backoff;
      logger.debug("connecting to RabbitMQ at {} failed: {}; next attempt in {} ms", where(), why,
                   std::chrono::duration_cast<milliseconds>(backoff).count());
    };
    if (sock == nullptr) return fail("cannot create the socket");
    const auto ct = std::chrono::duration_cast<std::chrono::microseconds>(opts.connect_timeout);
    timeval tv{static_cast<time_t>(ct.count() / 1000000),
               static_cast<suseconds_t>(ct.count() % 1000000)};
    int rc = amqp_socket_open_noblock(sock, url.host.c_str(), url.port, &tv);
    if (rc != AMQP_STATUS_OK) return fail(amqp_error_string2(rc));
    amqp_set_handshake_timeout(conn, &tv);
    timeval rpc_tv{static_cast<time_t>(rpc_timeout.count()), 0};
    amqp_set_rpc_timeout(conn, &rpc_tv);
    table_builder props;
    props.add("connection_name", opts.client_name);
    amqp_table_t props_table = props.table();
    const int heartbeat_s = static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::seconds>(opts.heartbeat).count()));
    amqp_rpc_reply_t login =
        amqp_login_with_properties(conn, url.vhost.c_str(), 0, 131072, heartbeat_s, &props_table,
                                   AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      return fail(login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                      ? amqp_error_string2(login.library_error)
                      : "login refused (user, password or vhost)");
    }
    connected = true;
    broken = false;
    if (auto s = setup(); !s) {
      logger.warn("setting up RabbitMQ at {} failed: {}", where(), s.error().message);
      broken = true;
      teardown();
      return;
    }
    backoff = {};
    logger.info("connected to RabbitMQ at {}", where());
  }

  status rpc_status(std::string_view what, amqp_channel_t ch) {
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return ok_status();
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const auto* c = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
      std::string text = c != nullptr ? str(c->reply_text) : std::string("channel closed");
      amqp_channel_close_ok_t ok{};
      amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      if (ch == topology_channel) {
        amqp_channel_open(conn, ch);
        if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) broken = true;
      } else {
        broken = true;
      }
      return error(errc::failed_precondition, std::string(what) + ": " + text);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* c = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
      amqp_connection_close_ok_t ok{};
      amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      broken = true;
      broken_reason = c != nullptr ? str(c->reply_text) : std::string("connection closed");
      return error(errc::unavailable, std::string(what) + ": " + broken_reason);
    }
    broken = true;
    broken_reason = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                        ? amqp_error_string2(r.library_error)
                        : "no reply";
    return error(errc::unavailable, std::string(what) + ": " + broken_reason);
  }

  status open_channel(amqp_channel_t ch) {
    amqp_channel_open(conn, ch);
    return rpc_status("opening a channel", ch);
  }

  status declare_exchange(std::string_view name, std::string_view type) {
    amqp_exchange_declare(conn, topology_channel, bytes(name), bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    return rpc_status("declaring exchange '" + std::string(name) + "'", topology_channel);
  }

  status declare_queue(std::string_view name, table_builder& args) {
    amqp_queue_declare(conn, topology_channel, bytes(name), 0, 1, 0, 0, args.table());
    return rpc_status("declaring queue '" + std::string(name) + "'", topology_channel);
  }

  status bind_queue(std::string_view queue, std::string_view exchange, std::string_view key) {
    amqp_queue_bind(conn, topology_channel, bytes(queue), bytes(exchange), bytes(key),
                    amqp_empty_table);
    return rpc_status("binding queue '" + std::string(queue) + "'", topology_channel);
  }

  status ensure_topic(const std::string& topic) {
    if (declared_exchanges.contains(topic)) return ok_status();
    OUTRIDER_TRY(declare_exchange(topic, "fanout"));
    declared_exchanges.insert(topic);
    return ok_status();
  }

  std::string level_name(std::uint32_t level) const {
    return std::string(delay_prefix) + std::to_string(level);
  }
  // Where level L's expired messages (and its "bit clear" traffic) go next.
  std::string next_after(std::uint32_t level) const {
    return level == 0 ? std::string(due_name) : level_name(level - 1);
  }
  // Routing-key pattern of level L: its word is `bit`, the higher levels' any.
  std::string level_pattern(std::uint32_t level, char bit) const {
    std::string p;
    for (std::uint32_t i = level + 1; i < opts.delay_levels; ++i) p += "*.";
    p += bit;
    p += ".#";
    return p;
  }

  void queue_type_args(table_builder& args, const std::string& type) {
    args.add("x-queue-type", type);
  }

  // Declares the delay levels, the due queue and the cancellation journal,
  // opens the channels and starts the internal consumers.
  status setup() {
    OUTRIDER_TRY(open_channel(publish_channel));
    amqp_confirm_select(conn, publish_channel);
    OUTRIDER_TRY(rpc_status("enabling publisher confirms", publish_channel));
    next_seq = 1;
    OUTRIDER_TRY(open_channel(topology_channel));
    OUTRIDER_TRY(declare_exchange(due_name, "fanout"));
    {
      table_builder args;
      queue_type_args(args, opts.delay_queue_type);
      OUTRIDER_TRY(declare_queue(due_name, args));
      OUTRIDER_TRY(bind_queue(due_name, due_name, ""));
    }
    for (std::uint32_t level = 0; level < opts.delay_levels; ++level) {
      OUTRIDER_TRY(declare_exchange(level_name(level), "topic"));
    }
    const std::int64_t unit_ms = std::chrono::duration_cast<milliseconds>(opts.delay_unit).count();
    for (std::uint32_t level = 0; level < opts.delay_levels; ++level) {
      const std::string name = level_name(level);
      table_builder args;
      queue_type_args(args, opts.delay_queue_type);
      args.add_i64("x-message-ttl", unit_ms << level);
      args.add("x-dead-letter-exchange", next_after(level));
      if (opts.delay_queue_type == "quorum") {
        args.add("x-dead-letter-strategy", "at-least-once");
        args.add("x-overflow", "reject-publish");
      }
      OUTRIDER_TRY(declare_queue(name, args));
      OUTRIDER_TRY(bind_queue(name, name, level_pattern(level, '1')));
      amqp_exchange_bind(conn, topology_channel, bytes(next_after(level)), bytes(name),
                         bytes(level_pattern(level, '0')), amqp_empty_table);
      OUTRIDER_TRY(rpc_status("binding the delay levels", topology_channel));
    }
    {
      table_builder args;
      args.add("x-queue-type", "stream");
      args.add(
          "x-max-age",
          std::to_string(std::max<std::int64_t>(
              1,
              std::chrono::duration_cast<std::chrono::seconds>(opts.journal_retention).count())) +
              "s");
      args.add_i64("x-stream-max-segment-size-bytes", journal_segment_bytes);
      if (auto s = declare_queue(journal_name, args); !s) {
        // Declared before with another retention (RabbitMQ refuses inequivalent
        // arguments): use the journal as it is; change its retention with a policy.
        if (s.error().code != errc::failed_precondition || !usable()) return s;
        logger.warn("using the existing schedule journal as declared ({})", s.error().message);
        amqp_queue_declare(conn, topology_channel, bytes(journal_name), 1, 0, 0, 0,
                           amqp_empty_table);
        OUTRIDER_TRY(rpc_status("finding the schedule journal", topology_channel));
      }
    }
    // The schedule journal, read from its start; caught up once this
    // backend's marker record comes back.
    caught_up = false;
    keeper = false;
    next_refresh = steady::now() + refresh_interval();
    OUTRIDER_TRY(open_channel(journal_channel));
    amqp_basic_qos(conn, journal_channel, 0, journal_prefetch, 0);
    OUTRIDER_TRY(rpc_status("basic.qos", journal_channel));
    {
      table_builder args;
      args.add("x-stream-offset", "first");
      amqp_basic_consume(conn, journal_channel, bytes(journal_name), amqp_empty_bytes, 0, 0, 0,
                         args.table());
      OUTRIDER_TRY(rpc_status("consuming the schedule journal", journal_channel));
    }
    {
      wire m;
      marker = id128::random();
      m.id = marker;
      m.journal = "marker";
      m.published_ms = now_ms();
      publish_confirmed("", journal_name, m, [](status) {});
    }
    OUTRIDER_TRY(open_channel(due_channel));
    amqp_basic_qos(conn, due_channel, 0,
                   static_cast<std::uint16_t>(std::min<std::uint32_t>(opts.due_prefetch, 65535)),
                   0);
    OUTRIDER_TRY(rpc_status("basic.qos", due_channel));
    amqp_basic_consume(conn, due_channel, bytes(due_name), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    OUTRIDER_TRY(rpc_status("consuming the due queue", due_channel));
    declared_exchanges.clear();
    next_channel = first_subscription_channel;
    free_channels.clear();
    for (auto& [h, sub] : subs) {
      if (auto s = establish(h); !s) {
        logger.warn("re-subscribing to '{}' as '{}' failed: {}", sub.spec.topic, sub.spec.app_id,
                    s.error().message);
        if (!usable()) return s;
      }
    }
    return ok_status();
  }

  void teardown() {
    logger.warn("lost the RabbitMQ connection to {} ({}); reconnecting", where(),
                broken_reason.empty() ? "error" : broken_reason);
    connected = false;
    broken = false;
    broken_reason.clear();
    ++generation;
    amqp_destroy_connection(conn);
    conn = nullptr;
    timers.clear();
    by_channel.clear();
    for (auto it = subs.begin(); it != subs.end();) {
      it->second.channel = 0;
      it->second.unsettled.clear();
      it->second.in_progress = 0;
      it = it->second.closing ? subs.erase(it) : std::next(it);
    }
    auto pending = std::move(confirms);
    confirms.clear();
    for (auto& [seq, fn] : pending) fn(not_connected());
    held_due.clear();  // RabbitMQ redelivers them
    caught_up = false;
    keeper = false;
    auto cancels = std::move(waiting_cancels);
    waiting_cancels.clear();
    for (auto& [id, done] : cancels) done(not_connected());
    backoff = backoff == nanoseconds{} ? opts.min_reconnect_interval
                                       : std::min(backoff * 2, opts.max_reconnect_interval);
    next_connect = steady::now() + backoff;
  }

  void shut() {
    auto pending = std::move(confirms);
    confirms.clear();
    for (auto& [seq, fn] : pending) fn(shutting_down_error());
    auto cancels = std::move(waiting_cancels);
    waiting_cancels.clear();
    for (auto& [id, done] : cancels) done(shutting_down_error());
    timers.clear();
    if (conn != nullptr) {
      if (connected && !broken) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
      amqp_destroy_connection(conn);
      conn = nullptr;
    }
    connected = false;
    subs.clear();
  }

  // ---------------- incoming frames ----------------

  void pump() {
    for (int i = 0; i < max_frames_per_turn && usable(); ++i) {
      amqp_frame_t frame{};
      timeval zero{0, 0};
      const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
      if (rc == AMQP_STATUS_TIMEOUT) break;
      if (rc != AMQP_STATUS_OK) {
        broken = true;
        broken_reason = amqp_error_string2(rc);
        break;
      }
      if (frame.frame_type == AMQP_FRAME_METHOD) on_method(frame);
    }
    if (usable()) amqp_maybe_release_buffers(conn);
  }

  void on_method(const amqp_frame_t& frame) {
    const amqp_channel_t ch = frame.channel;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_DELIVER_METHOD: {
        const auto* d = static_cast<const amqp_basic_deliver_t*>(frame.payload.method.decoded);
        const std::uint64_t tag = d->delivery_tag;
        const std::string exchange = str(d->exchange);
        amqp_message_t msg{};
        const amqp_rpc_reply_t r = amqp_read_message(conn, ch, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
          broken = true;
          broken_reason = "reading a delivery failed";
          return;
        }
        wire w = decode(msg, exchange);
        amqp_destroy_message(&msg);
        if (ch == due_channel) return on_due(tag, std::move(w));
        if (ch == journal_channel) {
          amqp_basic_ack(conn, ch, tag, 0);
          return on_journal(std::move(w));
        }
        return on_subscription_delivery(ch, tag, std::move(w));
      }
      case AMQP_BASIC_ACK_METHOD: {
        const auto* a = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
        return confirm(a->delivery_tag, a->multiple != 0, ok_status());
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* a = static_cast<const amqp_basic_nack_t*>(frame.payload.method.decoded);
        return confirm(a->delivery_tag, a->multiple != 0,
                       error(errc::unavailable, "RabbitMQ refused the message (basic.nack)"));
      }
      case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t msg{};
        if (amqp_read_message(conn, ch, &msg, 0).reply_type == AMQP_RESPONSE_NORMAL) {
          amqp_destroy_message(&msg);
        }
        return;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* c = static_cast<const amqp_channel_close_t*>(frame.payload.method.decoded);
        amqp_channel_close_ok_t ok{};
        amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        broken = true;
        broken_reason =
            "channel " + std::to_string(ch) + " closed by RabbitMQ: " + str(c->reply_text);
        return;
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto* c = static_cast<const amqp_connection_close_t*>(frame.payload.method.decoded);
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        broken = true;
        broken_reason = "closed by RabbitMQ: " + str(c->reply_text);
        return;
      }
      case AMQP_BASIC_CANCEL_METHOD:
        broken = true;
        broken_reason = "RabbitMQ cancelled a consumer (queue deleted?)";
        return;
      case AMQP_CONNECTION_BLOCKED_METHOD:
        logger.warn("RabbitMQ blocks publishing (resource alarm)");
        return;
      case AMQP_CONNECTION_UNBLOCKED_METHOD: logger.info("RabbitMQ unblocked publishing"); return;
      default: return;
    }
  }

  void confirm(std::uint64_t tag, bool multiple, status s) {
    std::vector<std::function<void(status)>> done;
    auto end = multiple ? confirms.upper_bound(tag) : confirms.find(tag);
    if (!multiple) {
      if (end == confirms.end()) return;
      done.push_back(std::move(end->second));
      confirms.erase(end);
    } else {
      for (auto it = confirms.begin(); it != end; ++it) done.push_back(std::move(it->second));
      confirms.erase(confirms.begin(), end);
    }
    for (auto& fn : done) fn(s);
  }

  // ---------------- publishing ----------------

  // Publishes on the confirm channel; `fn` runs once: ok when confirmed.
  void publish_confirmed(std::string_view exchange, std::string_view routing_key, const wire& w,
                         std::function<void(status)> fn) {
    if (!usable()) return fn(not_connected());
    if (opts.cloud_events_binary && w.journal.empty()) {
      header_list headers = w.headers;
      std::string body = w.body;
      if (cloud_events_amqp::to_binary(headers, body)) {
        return send(exchange, routing_key, w, headers, body, std::move(fn));
      }
    }
    send(exchange, routing_key, w, w.headers, w.body, std::move(fn));
  }

  // Publishes `w` with these user headers and body (its own, or their binary-mode form).
  void send(std::string_view exchange, std::string_view routing_key, const wire& w,
            const header_list& user_headers, const std::string& body,
            std::function<void(status)> fn) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.delivery_mode = 2;
    const std::string id_text = w.id.to_string();
    props.message_id = bytes(id_text);
    props.timestamp = static_cast<std::uint64_t>(w.published_ms / 1000);
    table_builder headers;
    for (const auto& [k, v] : user_headers) {
      if (iequals(k, "content-type")) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = bytes(v);
        continue;
      }
      headers.add(k, v);
    }
    headers.add(h_topic, w.topic);
    headers.add(h_attempt, std::to_string(w.attempt));
    headers.add(h_published, std::to_string(w.published_ms));
    if (w.deliver_at_ms != 0) headers.add(h_deliver_at, std::to_string(w.deliver_at_ms));
    if (!w.delay_to.empty()) headers.add(h_delay_to, w.delay_to);
    if (!w.journal.empty()) headers.add(h_journal, w.journal);
    props.headers = headers.table();
    const int rc = amqp_basic_publish(conn, publish_channel, bytes(exchange), bytes(routing_key), 0,
                                      0, &props, bytes(body));
    if (rc != AMQP_STATUS_OK) {
      broken = true;
      broken_reason = amqp_error_string2(rc);
      return fn(not_connected());
    }
    confirms.emplace(next_seq++, std::move(fn));
  }

  // Sends `w` (deliver_at_ms, delay_to set) through the delay levels.
  void publish_delayed(wire w, std::function<void(status)> fn) {
    const std::int64_t unit_ms = std::chrono::duration_cast<milliseconds>(opts.delay_unit).count();
    const std::int64_t remaining = w.deliver_at_ms - now_ms();
    std::uint64_t units = remaining > 0 ? static_cast<std::uint64_t>(remaining / unit_ms) : 0;
    const std::uint64_t max_units = (std::uint64_t{1} << opts.delay_levels) - 1;
    units = std::min(units, max_units);  // longer: the due consumer sends it round again
    if (units == 0) return publish_confirmed(due_name, "", w, std::move(fn));
    std::string key;
    for (std::uint32_t level = opts.delay_levels; level-- > 0;) {
      key += ((units >> level) & 1U) != 0 ? '1' : '0';
      if (level != 0) key += '.';
    }
    // Enter at the highest level whose bit is set: the levels above would only pass the
    // message on (each exchange hop costs RabbitMQ a topic match).
    std::uint32_t top = 0;
    while (top + 1 < opts.delay_levels && (units >> (top + 1)) != 0) ++top;
    publish_confirmed(level_name(top), key, w, std::move(fn));
  }

  void do_publish(std::vector<message> batch, callback<result<std::vector<publish_outcome>>> done) {
    if (stopping) return done(shutting_down_error());
    if (!usable()) return done(not_connected());
    struct state {
      std::vector<publish_outcome> out;
      std::size_t remaining = 0;
      callback<result<std::vector<publish_outcome>>> done;
    };
    auto st = std::make_shared<state>();
    st->out.resize(batch.size());
    st->remaining = batch.size() + 1;
    st->done = std::move(done);
    auto finish_one = [st] {
      if (--st->remaining == 0) st->done(std::move(st->out));
    };
    const auto wall_now = std::chrono::system_clock::now();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      message& m = batch[i];
      const id128 id = m.id.is_zero() ? id128::time_ordered(wall_now) : m.id;
      st->out[i].id = id;
      if (recent.contains(id)) {
        st->out[i].outcome =
            error(errc::already_exists, "message id " + id.to_string() + " was published already");
        finish_one();
        continue;
      }
      if (auto s = ensure_topic(m.topic); !s) {
        st->out[i].outcome = s.error();
        finish_one();
        continue;
      }
      const auto stamp = steady::now();
      recent[id] = stamp;
      recent_order.emplace_back(stamp, id);
      wire w;
      w.id = id;
      w.topic = m.topic;
      w.headers = std::move(m.headers);
      w.body = std::move(m.body);
      w.published_ms = to_ms(wall_now);
      const std::int64_t at = m.deliver_at > wall_now ? due_ms(m.deliver_at) : 0;
      auto fn = [this, st, i, id, at, stamp, finish_one](status s) {
        if (!s) {
          auto it = recent.find(id);
          if (it != recent.end() && it->second == stamp) recent.erase(it);
        } else if (at != 0) {
          note_scheduled(id, at, now_ms(), false);
        }
        st->out[i].outcome = std::move(s);
        finish_one();
      };
      if (at != 0) {
        // Two confirmed publishes, pipelined: the journal record (so that any
        // backend can cancel it, across restarts) and the message itself.
        auto both = std::make_shared<std::pair<int, status>>(2, ok_status());
        auto one = [both, fn = std::move(fn)](status s) mutable {
          if (!s && both->second) both->second = std::move(s);
          if (--both->first == 0) fn(std::move(both->second));
        };
        append_journal("scheduled", id, at, one);
        w.deliver_at_ms = at;
        w.delay_to = "x:" + m.topic;
        publish_delayed(std::move(w), std::move(one));
      } else {
        publish_confirmed(m.topic, "", w, std::move(fn));
      }
    }
    finish_one();
  }

  // ---------------- delayed delivery: the due queue ----------------

  bool is_cancelled(const id128& id) const {
    auto it = index.find(id);
    return it != index.end() && it->second.cancelled;
  }

  // ---------------- the schedule journal ----------------

  nanoseconds refresh_interval() const {
    const nanoseconds base =
        std::max<nanoseconds>(opts.journal_retention / 8, std::chrono::minutes(1));
    // Jitter (±25%) so that backends rarely race for the keeper lock together.
    const auto jitter = static_cast<std::int64_t>((thread_random().unit() - 0.5) * 0.5 *
                                                  static_cast<double>(base.count()));
    return base + nanoseconds(jitter);
  }

  void append_journal(std::string_view kind, const id128& id, std::int64_t deliver_at_ms,
                      std::function<void(status)> fn) {
    wire r;
    r.id = id;
    r.journal = std::string(kind);
    r.deliver_at_ms = deliver_at_ms;
    r.published_ms = now_ms();
    publish_confirmed("", journal_name, r, std::move(fn));
  }

  void note_scheduled(const id128& id, std::int64_t at, std::int64_t appended, bool cancel) {
    if (at + std::chrono::duration_cast<milliseconds>(keep_after_due).count() < now_ms()) return;
    journal_entry& e = index[id];
    e.deliver_at_ms = at;
    e.appended_ms = std::max(e.appended_ms, appended);
    e.cancelled = e.cancelled || cancel;
  }

  void on_journal(wire r) {
    if (r.journal == "marker") {
      if (r.id == marker && !caught_up) caught_up_now();
      return;
    }
    if (r.journal == "scheduled" || r.journal == "cancelled") {
      note_scheduled(r.id, r.deliver_at_ms, r.published_ms, r.journal == "cancelled");
    }
  }

  void caught_up_now() {
    caught_up = true;
    auto held = std::move(held_due);
    held_due.clear();
    for (auto& [tag, w] : held) on_due(tag, std::move(w));
    auto cancels = std::move(waiting_cancels);
    waiting_cancels.clear();
    for (auto& [id, done] : cancels) do_cancel(id, std::move(done));
  }

  // The keeper (one backend per vhost, elected by an exclusive queue that
  // RabbitMQ drops with its connection) re-appends the records of messages
  // still pending whose newest record is older than half the retention, so
  // that the stream's retention (x-max-age) never drops a live record.
  void refresh_journal() {
    next_refresh = steady::now() + refresh_interval();
    if (!keeper) {
      table_builder args;
      args.add("x-queue-type", "classic");
      amqp_queue_declare(conn, topology_channel, bytes(keeper_name), 0, 0, 1, 1, args.table());
      if (!rpc_status("taking the journal keeper lock", topology_channel)) return;
      keeper = true;
      logger.info("this backend keeps the schedule journal");
    }
    const std::int64_t now = now_ms();
    const std::int64_t stale =
        now - std::chrono::duration_cast<milliseconds>(opts.journal_retention / 2).count();
    std::size_t n = 0;
    for (auto& [id, e] : index) {
      if (e.deliver_at_ms <= now || e.appended_ms >= stale) continue;
      e.appended_ms = now;
      append_journal(e.cancelled ? "cancelled" : "scheduled", id, e.deliver_at_ms, [](status) {});
      ++n;
    }
    if (n != 0) logger.info("re-appended {} schedule-journal records", n);
  }

  // ---------------- delayed delivery: the due queue ----------------

  void on_due(std::uint64_t tag, wire w) {
    const std::uint32_t gen = generation;
    auto ack = [this, gen, tag](status s) {
      if (s && gen == generation && usable()) amqp_basic_ack(conn, due_channel, tag, 0);
    };
    if (!caught_up) {
      held_due.emplace_back(tag, std::move(w));
      return;
    }
    if (is_cancelled(w.id)) return ack(ok_status());
    const std::int64_t wait = w.deliver_at_ms - now_ms();
    const std::int64_t unit_ms = std::chrono::duration_cast<milliseconds>(opts.delay_unit).count();
    if (wait > 2 * unit_ms) return publish_delayed(std::move(w), ack);  // longer than the levels
    if (wait > 0) {
      add_timer(milliseconds(wait), [this, gen, tag, w = std::move(w)]() mutable {
        if (gen == generation) forward(tag, std::move(w));
      });
      return;
    }
    forward(tag, std::move(w));
  }

  void forward(std::uint64_t tag, wire w) {
    const std::uint32_t gen = generation;
    auto ack = [this, gen, tag](status s) {
      if (s && gen == generation && usable()) amqp_basic_ack(conn, due_channel, tag, 0);
    };
    if (is_cancelled(w.id)) return ack(ok_status());
    const std::string to = std::move(w.delay_to);
    w.delay_to.clear();
    w.deliver_at_ms = 0;
    if (to.starts_with("x:")) {
      const std::string exchange = to.substr(2);
      if (auto s = ensure_topic(exchange); !s) return;  // redelivered after the reconnect
      return publish_confirmed(exchange, "", w, ack);
    }
    if (to.starts_with("q:")) return publish_confirmed("", to.substr(2), w, ack);
    logger.warn("due message {} has no destination; dropped", w.id.to_string());
    ack(ok_status());
  }

  void do_cancel(const id128& id, callback<status> done) {
    if (stopping) return done(shutting_down_error());
    if (!usable()) return done(not_connected());
    if (!caught_up) {
      waiting_cancels.emplace_back(id, std::move(done));
      return;
    }
    auto it = index.find(id);
    if (it == index.end() || it->second.cancelled) {
      return done(error(errc::message_not_found,
                        "no scheduled message " + id.to_string() + " (unknown or cancelled)"));
    }
    const std::int64_t at = it->second.deliver_at_ms;
    if (at <= now_ms()) {
      return done(
          error(errc::message_not_scheduled, "message " + id.to_string() + " is due already"));
    }
    append_journal("cancelled", id, at, [this, id, at, done = std::move(done)](status s) {
      if (s) note_scheduled(id, at, now_ms(), true);
      done(std::move(s));
    });
  }

  // ---------------- subscriptions ----------------

  status establish(subscription_handle h) {
    subscription& sub = subs.at(h);
    OUTRIDER_TRY(ensure_topic(sub.spec.topic));
    {
      table_builder args;
      queue_type_args(args, opts.queue_type);
      OUTRIDER_TRY(declare_queue(sub.queue, args));
      OUTRIDER_TRY(bind_queue(sub.queue, sub.spec.topic, ""));
    }
    {
      table_builder args;
      queue_type_args(args, opts.queue_type);
      OUTRIDER_TRY(declare_queue(sub.dlq, args));
    }
    amqp_channel_t ch = 0;
    if (!free_channels.empty()) {
      ch = *free_channels.begin();
      free_channels.erase(free_channels.begin());
    } else if (next_channel <= last_subscription_channel) {
      ch = next_channel++;
    } else {
      return error(errc::resource_exhausted, "too many subscriptions on one connection");
    }
    OUTRIDER_TRY(open_channel(ch));
    amqp_basic_qos(conn, ch, 0,
                   static_cast<std::uint16_t>(std::min<std::uint32_t>(sub.spec.prefetch, 65535)),
                   0);
    OUTRIDER_TRY(rpc_status("basic.qos", ch));
    auto* ok =
        amqp_basic_consume(conn, ch, bytes(sub.queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    OUTRIDER_TRY(rpc_status("consuming '" + sub.queue + "'", ch));
    sub.consumer_tag = str(ok->consumer_tag);
    sub.channel = ch;
    by_channel[ch] = h;
    return ok_status();
  }

  void do_subscribe(subscription_spec spec, delivery_fn on_delivery,
                    callback<result<subscription_handle>> done) {
    if (stopping) return done(shutting_down_error());
    if (!usable()) return done(not_connected());
    if (next_handle >= local_handle_mask) {
      return done(error(errc::resource_exhausted, "subscription handles exhausted"));
    }
    const subscription_handle h = next_handle++;
    subscription sub;
    sub.queue = queue_name(spec.topic, spec.app_id);
    sub.dlq = dead_letter_queue_name(spec.topic, spec.app_id);
    sub.spec = std::move(spec);
    sub.on_delivery = std::move(on_delivery);
    subs.emplace(h, std::move(sub));
    if (auto s = establish(h); !s) {
      subs.erase(h);
      return done(s.error());
    }
    done(h);
  }

  void on_subscription_delivery(amqp_channel_t ch, std::uint64_t tag, wire w) {
    auto bc = by_channel.find(ch);
    if (bc == by_channel.end()) return;  // a channel being closed: RabbitMQ requeues
    const subscription_handle h = bc->second;
    subscription& sub = subs.at(h);
    const std::uint32_t attempt = w.attempt + w.delivery_count;
    w.delivery_count = 0;
    if (sub.closing) {
      w.attempt = attempt;
      return requeue(h, tag, std::move(w), {}, nullptr);
    }
    if (sub.spec.max_attempts != 0 && attempt > sub.spec.max_attempts) {
      w.attempt = attempt;
      return to_dead_letters(h, tag, std::move(w), nullptr);  // consumers died holding it
    }
    const nanoseconds lease = sub.spec.lease > nanoseconds{} ? sub.spec.lease : opts.default_lease;
    const std::uint32_t gen = generation;
    subscription::pending p;
    p.attempt = attempt;
    p.lease_timer = add_timer(lease, [this, gen, h, tag] {
      if (gen == generation) lease_expired(h, tag);
    });
    delivery d;
    d.handle = settle_handle{(std::uint64_t{gen} << generation_shift) | h, tag};
    d.topic = w.topic;
    d.id = w.id;
    d.attempt = attempt;
    d.headers = w.headers;
    d.body = w.body;
    d.published_at = wall_time(milliseconds(w.published_ms));
    p.w = std::move(w);
    sub.unsettled.emplace(tag, std::move(p));
    sub.on_delivery(std::move(d));
  }

  // Acks delivery `tag` of subscription h once `fn`'s publish is confirmed.
  std::function<void(status)> ack_after(subscription_handle h, std::uint64_t tag,
                                        callback<status> done) {
    const std::uint32_t gen = generation;
    auto it = subs.find(h);
    if (it != subs.end()) ++it->second.in_progress;
    return [this, gen, h, tag, done = std::move(done)](status s) {
      auto sub = subs.find(h);
      if (gen == generation && sub != subs.end()) {
        --sub->second.in_progress;
        if (s && usable() && sub->second.channel != 0) {
          amqp_basic_ack(conn, sub->second.channel, tag, 0);
        }
        maybe_close(h);
      }
      if (done) done(std::move(s));
    };
  }

  // A copy of the message back into the subscription's queue (after `delay`).
  void requeue(subscription_handle h, std::uint64_t tag, wire w, nanoseconds delay,
               callback<status> done) {
    const subscription& sub = subs.at(h);
    auto fn = ack_after(h, tag, std::move(done));
    if (delay <= nanoseconds{}) return publish_confirmed("", sub.queue, w, std::move(fn));
    w.deliver_at_ms = now_ms() + std::chrono::duration_cast<milliseconds>(delay).count() +
                      (delay % milliseconds(1) != nanoseconds{} ? 1 : 0);
    w.delay_to = "q:" + sub.queue;
    publish_delayed(std::move(w), std::move(fn));
  }

  void to_dead_letters(subscription_handle h, std::uint64_t tag, wire w, callback<status> done) {
    const subscription& sub = subs.at(h);
    publish_confirmed("", sub.dlq, w, ack_after(h, tag, std::move(done)));
  }

  // A failed attempt: redeliver after `delay`, or dead-letter at the limit.
  void failed(subscription_handle h, std::uint64_t tag, subscription::pending p, nanoseconds delay,
              callback<status> done) {
    const subscription& sub = subs.at(h);
    p.w.attempt = p.attempt;
    if (sub.spec.max_attempts != 0 && p.attempt >= sub.spec.max_attempts) {
      return to_dead_letters(h, tag, std::move(p.w), std::move(done));
    }
    p.w.attempt = p.attempt + 1;
    requeue(h, tag, std::move(p.w), delay, std::move(done));
  }

  void lease_expired(subscription_handle h, std::uint64_t tag) {
    auto it = subs.find(h);
    if (it == subs.end()) return;
    auto u = it->second.unsettled.find(tag);
    if (u == it->second.unsettled.end()) return;
    auto p = std::move(u->second);
    it->second.unsettled.erase(u);
    failed(h, tag, std::move(p), {}, nullptr);
  }

  void do_settle(const settle_handle& handle, settle_action action, callback<status> done) {
    auto finish = [&](status s) {
      if (done) done(std::move(s));
    };
    if (stopping) return finish(shutting_down_error());
    const auto gen = static_cast<std::uint32_t>(handle.subscription >> generation_shift);
    const subscription_handle h = handle.subscription & local_handle_mask;
    auto it = subs.find(h);
    if (gen != generation || it == subs.end() || !usable()) {
      return finish(error(errc::delivery_not_found,
                          "unknown delivery (settled, expired or "
                          "from a lost connection)"));
    }
    auto u = it->second.unsettled.find(handle.token);
    if (u == it->second.unsettled.end()) {
      return finish(error(errc::delivery_not_found, "unknown delivery (settled or expired)"));
    }
    auto p = std::move(u->second);
    it->second.unsettled.erase(u);
    timers.erase(p.lease_timer);
    const std::uint64_t tag = handle.token;
    switch (action.type) {
      case settle_action::kind::ack:
        amqp_basic_ack(conn, it->second.channel, tag, 0);
        maybe_close(h);
        return finish(ok_status());
      case settle_action::kind::release:
        p.w.attempt = p.attempt;
        return requeue(h, tag, std::move(p.w), {}, std::move(done));
      case settle_action::kind::retry:
        return failed(h, tag, std::move(p), action.delay, std::move(done));
      case settle_action::kind::dead_letter:
        p.w.attempt = p.attempt;
        return to_dead_letters(h, tag, std::move(p.w), std::move(done));
    }
  }

  void maybe_close(subscription_handle h) {
    auto it = subs.find(h);
    if (it == subs.end() || !it->second.closing) return;
    if (it->second.in_progress != 0 || !it->second.unsettled.empty()) return;
    if (usable() && it->second.channel != 0) {
      amqp_channel_close(conn, it->second.channel, AMQP_REPLY_SUCCESS);
      if (rpc_status("closing a channel", it->second.channel)) {
        free_channels.insert(it->second.channel);
      }
      by_channel.erase(it->second.channel);
    }
    subs.erase(it);
  }

  void do_unsubscribe(subscription_handle h, callback<status> done) {
    auto finish = [&](status s) {
      if (done) done(std::move(s));
    };
    if (stopping) return finish(shutting_down_error());
    auto it = subs.find(h);
    if (it == subs.end() || it->second.closing) {
      return finish(error(errc::consumer_not_found, "no such subscription"));
    }
    subscription& sub = it->second;
    sub.closing = true;
    if (!usable() || sub.channel == 0) {
      subs.erase(it);
      return finish(ok_status());
    }
    amqp_basic_cancel(conn, sub.channel, bytes(sub.consumer_tag));
    if (auto s = rpc_status("cancelling a consumer", sub.channel); !s) {
      return finish(ok_status());  // the connection goes; RabbitMQ requeues
    }
    // Give unsettled deliveries back without counting an attempt.
    auto unsettled = std::move(sub.unsettled);
    sub.unsettled.clear();
    for (auto& [tag, p] : unsettled) {
      timers.erase(p.lease_timer);
      p.w.attempt = p.attempt;
      requeue(h, tag, std::move(p.w), {}, nullptr);
    }
    maybe_close(h);
    finish(ok_status());
  }

  void do_health(callback<status> done) {
    if (stopping) return done(shutting_down_error());
    done(usable() ? ok_status() : status(not_connected()));
  }
};

rabbitmq_backend::rabbitmq_backend(rabbitmq_backend_options options) {
  auto u = parse_url(options.url);
  impl_ = std::make_shared<impl>(std::move(options), u ? std::move(*u) : url_parts{});
  impl_->thread = std::thread([m = impl_] { m->run(); });
}

rabbitmq_backend::~rabbitmq_backend() {
  close();
}

std::string rabbitmq_backend::queue_name(std::string_view topic, std::string_view app_id) {
  return std::string(app_id) + "-" + std::string(topic);
}

std::string rabbitmq_backend::dead_letter_queue_name(std::string_view topic,
                                                     std::string_view app_id) {
  return queue_name(topic, app_id) + "-dlq";
}

void rabbitmq_backend::publish(std::vector<message> batch,
                               callback<result<std::vector<publish_outcome>>> done) {
  if (impl_->closed) return done(shutting_down_error());
  if (batch.empty()) return done(error(errc::invalid_argument, "an empty batch"));
  for (const auto& m : batch) {
    if (m.topic.empty()) return done(error(errc::invalid_argument, "a message without a topic"));
  }
  impl_->post([batch = std::move(batch), done = std::move(done)](impl& m) mutable {
    m.do_publish(std::move(batch), std::move(done));
  });
}

void rabbitmq_backend::cancel_scheduled(const id128& id, callback<status> done) {
  if (impl_->closed) return done(shutting_down_error());
  impl_->post([id, done = std::move(done)](impl& m) mutable { m.do_cancel(id, std::move(done)); });
}

void rabbitmq_backend::subscribe(subscription_spec spec, delivery_fn on_delivery,
                                 callback<result<subscription_handle>> done) {
  if (impl_->closed) return done(shutting_down_error());
  if (spec.topic.empty() || spec.app_id.empty()) {
    return done(error(errc::invalid_argument, "a subscription needs a topic and an app id"));
  }
  if (spec.prefetch == 0) return done(error(errc::invalid_argument, "prefetch must be at least 1"));
  if (!on_delivery) return done(error(errc::invalid_argument, "subscribe without a handler"));
  impl_->post([spec = std::move(spec), on_delivery = std::move(on_delivery),
               done = std::move(done)](impl& m) mutable {
    m.do_subscribe(std::move(spec), std::move(on_delivery), std::move(done));
  });
}

void rabbitmq_backend::unsubscribe(subscription_handle handle, callback<status> done) {
  if (impl_->closed) {
    if (done) done(shutting_down_error());
    return;
  }
  impl_->post([handle, done = std::move(done)](impl& m) mutable {
    m.do_unsubscribe(handle, std::move(done));
  });
}

void rabbitmq_backend::settle(const settle_handle& handle, settle_action action,
                              callback<status> done) {
  if (impl_->closed) {
    if (done) done(shutting_down_error());
    return;
  }
  impl_->post([handle, action, done = std::move(done)](impl& m) mutable {
    m.do_settle(handle, action, std::move(done));
  });
}

void rabbitmq_backend::health(callback<status> done) {
  if (impl_->closed) return done(shutting_down_error());
  impl_->post([done = std::move(done)](impl& m) mutable { m.do_health(std::move(done)); });
}

void rabbitmq_backend::close() {
  if (impl_->closed.exchange(true)) return;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop_requested = true;
  }
  impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
}

result<rabbitmq_backend_options> parse_rabbitmq_backend_options(const config::node& metadata) {
  rabbitmq_backend_options o;
  if (metadata.is_null()) return o;
  if (!metadata.is_map()) return metadata.fail("expected a map of metadata values");
  for (const auto& [key, value] : metadata.entries()) {
    if (!value.is_scalar()) return value.fail("expected a value");
    const std::string& v = value.scalar();
    auto duration = [&](nanoseconds& out) -> status {
      auto d = parse_duration(v);
      if (!d || *d <= nanoseconds{}) return value.fail("expected a positive duration such as 2s");
      out = *d;
      return ok_status();
    };
    auto queue_type = [&](std::string& out) -> status {
      if (v != "quorum" && v != "classic") return value.fail("expected quorum or classic");
      out = v;
      return ok_status();
    };
    if (key == "connectionString" || key == "url") {
      if (auto u = parse_url(v); !u) return value.fail(u.error().message);
      o.url = v;
    } else if (key == "username") {
      o.username = v;
    } else if (key == "password") {
      o.password = v;
    } else if (key == "caCert") {
      o.ca_cert_file = v;
    } else if (key == "clientCert") {
      o.client_cert_file = v;
    } else if (key == "clientKey") {
      o.client_key_file = v;
    } else if (key == "verifyPeer") {
      if (v != "true" && v != "false") return value.fail("expected true or false");
      o.verify_peer = v == "true";
    } else if (key == "queueType") {
      OUTRIDER_TRY(queue_type(o.queue_type));
    } else if (key == "delayQueueType") {
      OUTRIDER_TRY(queue_type(o.delay_queue_type));
    } else if (key == "heartbeat") {
      OUTRIDER_TRY(duration(o.heartbeat));
    } else if (key == "connectTimeout") {
      OUTRIDER_TRY(duration(o.connect_timeout));
    } else if (key == "maxReconnectInterval") {
      OUTRIDER_TRY(duration(o.max_reconnect_interval));
    } else if (key == "lease") {
      OUTRIDER_TRY(duration(o.default_lease));
    } else if (key == "cloudEventsMode") {
      if (v != "structured" && v != "binary") return value.fail("expected structured or binary");
      o.cloud_events_binary = v == "binary";
    } else if (key == "journalRetention") {
      OUTRIDER_TRY(duration(o.journal_retention));
      if (o.journal_retention < std::chrono::minutes(10)) {
        return value.fail("expected at least 10m");
      }
    } else if (key == "duePrefetch") {
      const std::int64_t n = parse_i64(v);
      if (n <= 0 || n > 65535) return value.fail("expected a count from 1 to 65535");
      o.due_prefetch = static_cast<std::uint32_t>(n);
    } else {
      return value.fail(
          "unknown metadata key of the rabbitmq pub/sub (connectionString, username, password, "
          "caCert, clientCert, clientKey, verifyPeer, queueType, delayQueueType, heartbeat, "
          "connectTimeout, maxReconnectInterval, lease, duePrefetch, journalRetention, "
          "cloudEventsMode)");
    }
  }
  if ((o.client_cert_file.empty()) != (o.client_key_file.empty())) {
    return metadata.fail("clientCert and clientKey go together");
  }
  o.min_reconnect_interval = std::min(o.min_reconnect_interval, o.max_reconnect_interval);
  return o;
}

result<std::unique_ptr<backend>> make_rabbitmq_backend(const config::node& metadata,
                                                       const backend_context& context) {
  auto o = parse_rabbitmq_backend_options(metadata);
  if (!o) return o.error();
  if (!context.app_id.empty()) o->client_name = "outrider-sidecar:" + context.app_id;
  return std::unique_ptr<backend>(std::make_unique<rabbitmq_backend>(std::move(*o)));
}

}  // namespace outrider::backends
