#include "broker_client/client.h"

// GCC 12 reports a false -Wmismatched-new-delete on Asio coroutine frames
// (awaitable_frame_base's class-specific operator new/delete) in some functions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>

#include "base/log.h"
#include "broker_client/address.h"

namespace outrider::broker_client {
namespace asio = boost::asio;
using generic_socket = asio::generic::stream_protocol::socket;
using generic_endpoint = asio::generic::stream_protocol::endpoint;
using tcp = asio::ip::tcp;
using opcode = wire::opcode;

namespace {

const log::logger logger{"broker.client"};
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk_bytes = 64 * 1024;
constexpr auto never = asio::steady_timer::time_point::max();

error unavailable(std::string_view why) {
  return error(errc::unavailable, fmt::format("broker connection unavailable: {}", why));
}

}  // namespace

struct client::impl : std::enable_shared_from_this<client::impl> {
  enum class state { idle, connecting, ready, closed };
  // Gets the answer frame (its payload is valid only during the call) or the error.
  using response_handler = std::function<void(result<frame>)>;
  struct queued_publish {
    std::uint32_t request_id = 0;
    std::string bytes;
    callback<result<std::vector<publish_result>>> done;
  };

  impl(asio::io_context& c, client_options o)
      : ctx(c),
        opts(std::move(o)),
        socket(c),
        write_wake(c, never),
        keepalive(c, never),
        connect_deadline(c, never) {}

  asio::io_context& ctx;
  client_options opts;
  generic_socket socket;
  bool write_at_once = false;
  bool writer_parked = false;  // the writer awaits write_wake (no write in progress)  // the socket
                               // is non-blocking: the writer writes synchronously
  std::optional<tcp::resolver> resolver;
  asio::steady_timer write_wake;
  asio::steady_timer keepalive;
  asio::steady_timer connect_deadline;
  state st = state::idle;
  bool timed_out = false;
  hello_ok server;
  std::string out;
  std::string sending;
  std::string in;
  std::size_t in_len = 0;
  std::uint32_t next_id = 1;
  asio::steady_timer::time_point last_write{};
  std::unordered_map<std::uint32_t, response_handler> pending;
  std::deque<queued_publish> queued;
  std::size_t in_flight = 0;
  // Shared so that a delivery callback may unsubscribe (or the connection may
  // drop) while it runs without destroying the function being executed.
  std::unordered_map<subscription_id, std::shared_ptr<callback<delivery>>> subs;
  std::unordered_map<delivery_tag, subscription_id> unsettled;
  // Acks without a callback, sent as one ACK frame (and one CREDIT frame per
  // subscription) before the next frame or write: a consumer acking each
  // delivery of a DELIVER frame sends two frames for the lot, not two each.
  std::vector<delivery_tag> deferred_acks;
  // The unsolicited frames of one read, handled after its answers (views into `in`).
  std::vector<frame> unsolicited;
  callback<error> disconnect_handler;
  callback<status> connect_done;

  std::uint32_t request_id() {
    if (next_id == 0) next_id = 1;  // 0 means "unsolicited"
    return next_id++;
  }
  template <class Fn>
  void run(Fn fn) {
    asio::dispatch(ctx, [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(*self); });
  }
  template <class T>
  void fail_later(callback<T> done, error e) {
    if (!done) return;
    asio::post(ctx, [done = std::move(done), e = std::move(e)]() { done(e); });
  }
  void wake_writer() { write_wake.cancel(); }

  // Sends a request whose frame `encode(out, rid)` appends; `handler` gets the answer.
  template <class Encode>
  void request(Encode encode, response_handler handler) {
    if (st != state::ready) {
      asio::post(ctx, [handler = std::move(handler)]() { handler(unavailable("not connected")); });
      return;
    }
    flush_deferred_acks();
    const auto rid = request_id();
    encode(out, rid);
    pending.emplace(rid, std::move(handler));
    wake_writer();
  }

  // Encodes the deferred acks (in order, before anything sent after them).
  void flush_deferred_acks() {
    if (deferred_acks.empty()) return;
    const auto rid = request_id();
    encode_ack(out, rid, deferred_acks);
    pending.emplace(rid, [](result<frame>) {});  // nobody asked for the outcome
    settle_credit(deferred_acks);
    deferred_acks.clear();
  }

  template <class T, class Decode>
  static response_handler expect(opcode op, callback<result<T>> done, Decode decode) {
    return [op, done = std::move(done), decode](result<frame> r) {
      if (!done) return;
      if (!r) return done(r.error());
      if (r->op != op) {
        return done(error(
            errc::protocol_error,
            fmt::format("expected {}, got {}", wire::opcode_name(op), wire::opcode_name(r->op))));
      }
      done(decode(r->payload));
    };
  }
  static response_handler expect_ok(callback<status> done) {
    return [done = std::move(done)](result<frame> r) {
      if (!done) return;
      if (!r) return done(r.error());
      if (r->op != opcode::ok) return done(error(errc::protocol_error, "expected OK"));
      auto v = decode_ok(r->payload);
      done(v ? status{} : status(v.error()));
    };
  }

  asio::awaitable<void> connect_and_run(address addr);
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  asio::awaitable<void> keepalive_loop();
  void on_frame(const frame& f);
  void lost(const error& e);
  void shut(const error& for_pending, bool notify);
  void send_publish(queued_publish p);
  // Writes `out` now if the writer is parked; true when all of it went.
  bool write_now();
  void pump();
  void settle_credit(std::span<const delivery_tag> tags);
};

asio::awaitable<void> client::impl::connect_and_run(address addr) {
  auto self = shared_from_this();
  connect_deadline.expires_after(opts.connect_timeout);
  connect_deadline.async_wait([self](boost::system::error_code ec) {
    if (ec || self->st != state::connecting) return;
    self->timed_out = true;
    boost::system::error_code ignored;
    self->socket.close(ignored);
    if (self->resolver) self->resolver->cancel();
  });
  boost::system::error_code ec;
  if (addr.is_unix) {
    asio::local::stream_protocol::endpoint ep(addr.path);
    socket.open(generic_endpoint(ep).protocol(), ec);
    if (!ec) std::tie(ec) = co_await socket.async_connect(generic_endpoint(ep), use_tuple);
  } else {
    resolver.emplace(ctx);
    auto [resolve_ec, endpoints] =
        co_await resolver->async_resolve(addr.host, std::to_string(addr.port), use_tuple);
    ec = resolve_ec;
    if (!ec) {
      ec = asio::error::host_not_found;
      for (const auto& entry : endpoints) {
        if (st != state::connecting || timed_out) break;
        generic_endpoint ep(entry.endpoint());
        boost::system::error_code open_ec;
        if (socket.is_open()) socket.close(open_ec);
        socket.open(ep.protocol(), open_ec);
        if (open_ec) continue;
        std::tie(ec) = co_await socket.async_connect(ep, use_tuple);
        if (!ec) break;
      }
      if (!ec) socket.set_option(tcp::no_delay(true), ec);
    }
  }
  if (st != state::connecting) co_return;  // close() meanwhile
  if (ec) {
    connect_deadline.cancel();
    st = state::closed;
    auto e = timed_out ? error(errc::deadline_exceeded,
                               fmt::format("connecting to {} timed out", opts.address))
                       : error(errc::unavailable,
                               fmt::format("cannot connect to {}: {}", opts.address, ec.message()));
    if (auto done = std::move(connect_done)) done(e);
    co_return;
  }
  // Non-blocking, so the writer can write at once (see writer()).
  boost::system::error_code nb_ec;
  socket.non_blocking(true, nb_ec);
  write_at_once = !nb_ec;
  // HELLO; the state stays `connecting` until HELLO_OK.
  const auto rid = request_id();
  encode_hello(out, rid,
               hello{wire::min_supported_version, wire::max_supported_version, opts.client_name});
  pending.emplace(rid, [self](result<frame> r) {
    self->connect_deadline.cancel();
    result<hello_ok> ok =
        r ? (r->op == opcode::hello_ok
                 ? decode_hello_ok(r->payload)
                 : result<hello_ok>(error(errc::protocol_error, "expected HELLO_OK")))
          : result<hello_ok>(r.error());
    if (ok &&
        (ok->version < wire::min_supported_version || ok->version > wire::max_supported_version)) {
      ok = error(errc::protocol_version_unsupported,
                 fmt::format("broker chose protocol version {}", ok->version));
    }
    auto done = std::move(self->connect_done);
    if (!ok) {
      self->shut(ok.error(), false);
      if (done) done(ok.error());
      return;
    }
    self->server = std::move(*ok);
    self->st = state::ready;
    if (self->opts.keepalive_interval > nanoseconds::zero()) {
      asio::co_spawn(self->ctx, self->keepalive_loop(), asio::detached);
    }
    if (done) done(status{});
  });
  asio::co_spawn(ctx, writer(), asio::detached);
  co_await reader();
}

asio::awaitable<void> client::impl::reader() {
  auto self = shared_from_this();
  in.resize(read_chunk_bytes);
  for (;;) {
    if (in.size() - in_len < read_chunk_bytes) in.resize(in_len + read_chunk_bytes);
    auto [ec, n] = co_await socket.async_read_some(
        asio::buffer(in.data() + in_len, in.size() - in_len), use_tuple);
    in_len += n;
    // Answers first, then the unsolicited frames (deliveries) of this read, each
    // group in order: a publish confirmed in the same read as a batch of
    // deliveries completes before the consumer's work on them (the sidecar
    // answers the app's publish before starting the calls those deliveries
    // make), and deliveries keep their order among themselves.
    std::size_t offset = 0;
    std::optional<error> bad;
    unsolicited.clear();
    while (st == state::ready || st == state::connecting) {
      std::size_t used = 0;
      auto f = parse_frame(std::string_view(in.data() + offset, in_len - offset),
                           opts.max_frame_bytes, used);
      if (!f) {
        bad = f.error();
        break;
      }
      if (!*f) break;
      if ((*f)->request_id == 0) {
        unsolicited.push_back(**f);
      } else {
        on_frame(**f);
      }
      offset += used;
    }
    for (const auto& f : unsolicited) {
      if (st != state::ready && st != state::connecting) break;
      on_frame(f);
    }
    unsolicited.clear();
    if (bad) {
      lost(*bad);
      co_return;
    }
    if (offset > 0) {
      std::memmove(in.data(), in.data() + offset, in_len - offset);
      in_len -= offset;
    }
    if (st == state::closed) co_return;
    if (ec) {
      lost(timed_out ? error(errc::deadline_exceeded, "connecting to the broker timed out")
                     : unavailable(ec == asio::error::eof ? "closed by the broker" : ec.message()));
      co_return;
    }
  }
}

asio::awaitable<void> client::impl::writer() {
  auto self = shared_from_this();
  while (st != state::closed) {
    flush_deferred_acks();
    if (out.empty()) {
      write_wake.expires_at(never);
      writer_parked = true;
      co_await write_wake.async_wait(use_tuple);
      writer_parked = false;
      continue;
    }
    sending.clear();
    std::swap(sending, out);
    last_write = asio::steady_timer::clock_type::now();
    // What fits the socket buffer (nearly always all of it) is written now:
    // an async_write would write as much at once too and then resume this
    // coroutine one round through the io_context later (one more epoll_wait
    // per frame sent). Only a remainder waits for the socket.
    boost::system::error_code ec;
    std::size_t written = 0;
    if (write_at_once) {
      written = socket.write_some(asio::buffer(sending), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        written = 0;
      }
    }
    if (!ec && written < sending.size()) {
      auto [async_ec, n] = co_await asio::async_write(
          socket, asio::buffer(sending.data() + written, sending.size() - written), use_tuple);
      ec = async_ec;
    }
    if (ec) {
      lost(unavailable(ec.message()));
      co_return;
    }
  }
}

asio::awaitable<void> client::impl::keepalive_loop() {
  auto self = shared_from_this();
  const auto interval =
      std::chrono::duration_cast<asio::steady_timer::duration>(opts.keepalive_interval);
  while (st == state::ready) {
    keepalive.expires_after(interval);
    co_await keepalive.async_wait(use_tuple);
    if (st != state::ready) break;
    if (asio::steady_timer::clock_type::now() - last_write >= interval) {
      request([](std::string& o, std::uint32_t rid) { encode_ping(o, rid); }, [](result<frame>) {});
    }
  }
}

void client::impl::on_frame(const frame& f) {
  if (f.request_id == 0) {
    switch (f.op) {
      case opcode::deliver: {
        auto ds = decode_deliver(f.payload);
        if (!ds) return lost(ds.error());
        for (auto& d : *ds) {
          auto it = subs.find(d.subscription);
          if (it == subs.end()) continue;  // unsubscribed meanwhile: the lease expires
          unsettled[d.tag] = d.subscription;
          const auto on_delivery = it->second;
          (*on_delivery)(std::move(d));
          if (st != state::ready) return;  // the callback closed the client
        }
        return;
      }
      case opcode::subscription_closed: {
        error reason;
        auto id = decode_subscription_closed(f.payload, reason);
        if (!id) return lost(id.error());
        logger.warn("broker ended subscription {}: {}", *id, reason.message);
        subs.erase(*id);
        return;
      }
      case opcode::error: {
        error e;
        if (auto st_ = decode_error(f.payload, e); !st_) return lost(st_.error());
        logger.warn("broker closed the connection: {}", e.message);
        return lost(e);
      }
      default:
        return lost(error(errc::protocol_error,
                          fmt::format("unsolicited {} frame", wire::opcode_name(f.op))));
    }
  }
  auto it = pending.find(f.request_id);
  if (it == pending.end()) {
    if (f.op == opcode::error) {  // a failed CREDIT (which has no pending entry)
      error e;
      if (decode_error(f.payload, e)) logger.warn("broker refused a request: {}", e.message);
    }
    return;
  }
  auto handler = std::move(it->second);
  pending.erase(it);
  if (f.op == opcode::error) {
    error e;
    if (auto st_ = decode_error(f.payload, e); !st_) return lost(st_.error());
    return handler(e);
  }
  handler(f);
}

void client::impl::lost(const error& e) {
  if (st == state::closed) return;
  const bool was_ready = st == state::ready;
  if (st == state::connecting) {
    shut(e, false);
    if (auto done = std::move(connect_done)) done(e);
    return;
  }
  shut(e.code == errc::unavailable
           ? e
           : error(errc::unavailable, fmt::format("broker connection lost: {}", e.message)),
       was_ready);
}

// Closes the socket and fails everything pending with `for_pending`.
void client::impl::shut(const error& for_pending, bool notify) {
  st = state::closed;
  boost::system::error_code ec;
  socket.close(ec);
  write_wake.cancel();
  keepalive.cancel();
  connect_deadline.cancel();
  if (resolver) resolver->cancel();
  auto handlers = std::move(pending);
  pending.clear();
  auto waiting = std::move(queued);
  queued.clear();
  in_flight = 0;
  subs.clear();
  unsettled.clear();
  deferred_acks.clear();
  for (auto& [rid, h] : handlers) h(for_pending);
  for (auto& q : waiting) {
    if (q.done) q.done(for_pending);
  }
  if (notify && disconnect_handler) disconnect_handler(for_pending);
}

void client::impl::send_publish(queued_publish p) {
  flush_deferred_acks();
  out += p.bytes;
  ++in_flight;
  auto done = std::move(p.done);
  pending.emplace(p.request_id,
                  [self = shared_from_this(), done = std::move(done)](result<frame> r) {
                    if (self->in_flight > 0) --self->in_flight;
                    if (done) {
                      if (!r) {
                        done(r.error());
                      } else if (r->op != opcode::confirm) {
                        done(error(errc::protocol_error, "expected CONFIRM"));
                      } else {
                        done(decode_confirm(r->payload));
                      }
                    }
                    self->pump();
                  });
  // A PUBLISH is the last frame its call encodes: while the writer waits, write
  // it (and whatever is queued before it) now instead of one round later.
  if (!write_now()) wake_writer();
}

bool client::impl::write_now() {
  if (!writer_parked || !write_at_once || st != state::ready || out.empty()) return false;
  boost::system::error_code ec;
  const std::size_t n = socket.write_some(asio::buffer(out), ec);
  if (ec) return false;  // would_block, or an error the writer meets and reports
  last_write = asio::steady_timer::clock_type::now();
  out.erase(0, n);
  return out.empty();  // a remainder goes with the writer, before anything later
}

void client::impl::pump() {
  while (st == state::ready && in_flight < opts.max_in_flight_batches && !queued.empty()) {
    auto p = std::move(queued.front());
    queued.pop_front();
    send_publish(std::move(p));
  }
}

void client::impl::settle_credit(std::span<const delivery_tag> tags) {
  if (!opts.auto_credit) return;
  std::unordered_map<subscription_id, std::uint32_t> give_back;
  for (auto tag : tags) {
    auto it = unsettled.find(tag);
    if (it == unsettled.end()) continue;
    if (subs.contains(it->second)) ++give_back[it->second];
    unsettled.erase(it);
  }
  for (const auto& [sub, n] : give_back) encode_credit(out, request_id(), sub, n);
}

// ---- public surface ----

client::client(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

client::~client() {
  close();
}

std::shared_ptr<client> client::create(asio::io_context& ctx, client_options options) {
  return std::shared_ptr<client>(new client(std::make_shared<impl>(ctx, std::move(options))));
}

void client::connect(callback<status> done) {
  impl_->run([done = std::move(done)](impl& m) mutable {
    if (m.st != impl::state::idle) {
      return m.fail_later(std::move(done), error(errc::failed_precondition,
                                                 "connect() may be called once per client"));
    }
    auto addr = parse_address(m.opts.address);
    if (!addr) return m.fail_later(std::move(done), addr.error());
    m.st = impl::state::connecting;
    m.connect_done = std::move(done);
    asio::co_spawn(m.ctx, m.connect_and_run(std::move(*addr)), asio::detached);
  });
}

const hello_ok& client::server_info() const {
  return impl_->server;
}

bool client::connected() const {
  return impl_->st == impl::state::ready;
}

void client::on_disconnect(callback<error> handler) {
  impl_->run([handler = std::move(handler)](impl& m) mutable {
    m.disconnect_handler = std::move(handler);
  });
}

void client::close() {
  impl_->run([](impl& m) {
    if (m.st == impl::state::closed) return;
    const bool connecting = m.st == impl::state::connecting;
    m.shut(error(errc::cancelled, "the client closed the connection"), false);
    if (connecting) {
      if (auto done = std::move(m.connect_done))
        done(error(errc::cancelled, "closed while connecting"));
    }
  });
}

void client::publish(std::vector<outgoing_message> batch,
                     callback<result<std::vector<publish_result>>> done) {
  impl_->run([batch = std::move(batch), done = std::move(done)](impl& m) mutable {
    if (m.st != impl::state::ready)
      return m.fail_later(std::move(done), unavailable("not connected"));
    if (batch.empty() || batch.size() > m.server.max_batch_messages) {
      return m.fail_later(
          std::move(done),
          error(errc::invalid_argument, fmt::format("a batch holds 1 to {} messages, not {}",
                                                    m.server.max_batch_messages, batch.size())));
    }
    impl::queued_publish p;
    p.request_id = m.request_id();
    encode_publish(p.bytes, p.request_id, batch);
    if (p.bytes.size() > m.server.max_frame_bytes) {
      return m.fail_later(std::move(done),
                          error(errc::message_too_large,
                                fmt::format("batch encodes to {} bytes; the broker accepts {}",
                                            p.bytes.size(), m.server.max_frame_bytes)));
    }
    p.done = std::move(done);
    if (m.in_flight < m.opts.max_in_flight_batches && m.queued.empty()) {
      return m.send_publish(std::move(p));
    }
    if (m.queued.size() >= m.opts.max_queued_batches) {
      return m.fail_later(std::move(p.done),
                          error(errc::resource_exhausted,
                                fmt::format("{} batches await confirms and {} more are queued",
                                            m.in_flight, m.queued.size())));
    }
    m.queued.push_back(std::move(p));
  });
}

void client::subscribe(subscribe_request request, callback<delivery> on_delivery,
                       callback<result<subscription_id>> done) {
  impl_->run([request = std::move(request), on_delivery = std::move(on_delivery),
              done = std::move(done)](impl& m) mutable {
    auto self = m.shared_from_this();
    m.request([&](std::string& o, std::uint32_t rid) { encode_subscribe(o, rid, request); },
              [self, on_delivery = std::move(on_delivery),
               done = std::move(done)](result<frame> r) mutable {
                result<subscription_id> id =
                    r ? (r->op == opcode::ok
                             ? decode_ok(r->payload)
                             : result<subscription_id>(error(errc::protocol_error, "expected OK")))
                      : result<subscription_id>(r.error());
                if (id) {
                  self->subs[*id] = std::make_shared<callback<delivery>>(std::move(on_delivery));
                }
                if (done) done(std::move(id));
              });
  });
}

void client::unsubscribe(subscription_id subscription, callback<status> done) {
  impl_->run([subscription, done = std::move(done)](impl& m) mutable {
    m.subs.erase(subscription);
    m.request([&](std::string& o, std::uint32_t rid) { encode_unsubscribe(o, rid, subscription); },
              impl::expect_ok(std::move(done)));
  });
}

void client::add_credit(subscription_id subscription, std::uint32_t credit) {
  impl_->run([subscription, credit](impl& m) {
    if (m.st != impl::state::ready || credit == 0) return;
    m.flush_deferred_acks();
    encode_credit(m.out, m.request_id(), subscription, credit);
    m.wake_writer();
  });
}

void client::ack(std::vector<delivery_tag> tags,
                 callback<result<std::vector<settle_failure>>> done) {
  impl_->run([tags = std::move(tags), done = std::move(done)](impl& m) mutable {
    if (!done) {
      if (m.st != impl::state::ready) return;
      m.deferred_acks.insert(m.deferred_acks.end(), tags.begin(), tags.end());
      return m.wake_writer();
    }
    m.request([&](std::string& o, std::uint32_t rid) { encode_ack(o, rid, tags); },
              impl::expect<std::vector<settle_failure>>(opcode::settle_result, std::move(done),
                                                        decode_settle_result));
    if (m.st == impl::state::ready) m.settle_credit(tags);
  });
}

void client::nack(std::vector<nack_entry> entries,
                  callback<result<std::vector<settle_failure>>> done) {
  impl_->run([entries = std::move(entries), done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_nack(o, rid, entries); },
              impl::expect<std::vector<settle_failure>>(opcode::settle_result, std::move(done),
                                                        decode_settle_result));
    if (m.st == impl::state::ready) {
      std::vector<delivery_tag> tags;
      tags.reserve(entries.size());
      for (const auto& e : entries) tags.push_back(e.tag);
      m.settle_credit(tags);
    }
  });
}

void client::cancel_scheduled(const id128& id, callback<status> done) {
  impl_->run([id, done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_cancel_scheduled(o, rid, id); },
              impl::expect_ok(std::move(done)));
  });
}

void client::declare_queue(std::string name, queue_settings settings, callback<status> done) {
  declare_request req{wire::declare_kind::queue, std::move(name), std::move(settings), {}};
  impl_->run([req = std::move(req), done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_declare(o, rid, req); },
              impl::expect_ok(std::move(done)));
  });
}

void client::declare_topic(std::string name, callback<status> done) {
  declare_request req{wire::declare_kind::topic, std::move(name), {}, {}};
  impl_->run([req = std::move(req), done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_declare(o, rid, req); },
              impl::expect_ok(std::move(done)));
  });
}

void client::bind(std::string topic, std::string queue, callback<status> done) {
  declare_request req{wire::declare_kind::binding, std::move(topic), {}, std::move(queue)};
  impl_->run([req = std::move(req), done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_declare(o, rid, req); },
              impl::expect_ok(std::move(done)));
  });
}

void client::list_queues(callback<result<std::vector<queue_info>>> done) {
  impl_->run([done = std::move(done)](impl& m) mutable {
    m.request([](std::string& o, std::uint32_t rid) { encode_list_queues(o, rid); },
              impl::expect<std::vector<queue_info>>(opcode::queue_list, std::move(done),
                                                    decode_queue_list));
  });
}

void client::peek(std::string queue, std::uint32_t max,
                  callback<result<std::vector<peeked_message>>> done) {
  impl_->run([req = peek_request{std::move(queue), max}, done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_peek(o, rid, req); },
              impl::expect<std::vector<peeked_message>>(opcode::peek_result, std::move(done),
                                                        decode_peek_result));
  });
}

void client::peek_id(std::string queue, const id128& id,
                     callback<result<std::vector<peeked_message>>> done) {
  impl_->run(
      [req = peek_request{std::move(queue), 0, id}, done = std::move(done)](impl& m) mutable {
        m.request([&](std::string& o, std::uint32_t rid) { encode_peek_id(o, rid, req); },
                  impl::expect<std::vector<peeked_message>>(opcode::peek_result, std::move(done),
                                                            decode_peek_result));
      });
}

void client::replay_dead_letters(std::string dead_letter_queue, std::uint32_t max,
                                 callback<result<std::uint64_t>> done) {
  impl_->run([req = replay_request{std::move(dead_letter_queue), max},
              done = std::move(done)](impl& m) mutable {
    m.request([&](std::string& o, std::uint32_t rid) { encode_replay_dead_letters(o, rid, req); },
              impl::expect<std::uint64_t>(opcode::ok, std::move(done), decode_ok));
  });
}

void client::stats(callback<result<stat_list>> done) {
  impl_->run([done = std::move(done)](impl& m) mutable {
    m.request([](std::string& o, std::uint32_t rid) { encode_stats(o, rid); },
              impl::expect<stat_list>(opcode::stats_result, std::move(done), decode_stats_result));
  });
}

void client::ping(callback<status> done) {
  impl_->run([done = std::move(done)](impl& m) mutable {
    m.request([](std::string& o, std::uint32_t rid) { encode_ping(o, rid); },
              [done = std::move(done)](result<frame> r) {
                if (!done) return;
                if (!r) return done(r.error());
                done(r->op == opcode::pong ? status{}
                                           : status(error(errc::protocol_error, "expected PONG")));
              });
  });
}

std::size_t client::in_flight_batches_for_test() const {
  return impl_->in_flight;
}
std::size_t client::queued_batches_for_test() const {
  return impl_->queued.size();
}

}  // namespace outrider::broker_client
