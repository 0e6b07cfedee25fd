#include "broker/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "broker_client/address.h"
#include "io/owned_fd.h"
#include "io/runtime.h"

namespace outrider::broker {
namespace asio = boost::asio;
namespace wire = bc::wire;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using generic_socket = asio::generic::stream_protocol::socket;
using opcode = wire::opcode;

namespace {

const log::logger logger{"broker.server"};
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk_bytes = 64 * 1024;
constexpr auto never = asio::steady_timer::time_point::max();
// Fixed part of one delivery inside a DELIVER frame (see codec.cpp), for splitting.
constexpr std::size_t delivery_fixed_bytes = 8 + 16 + 4 + 8 + 8 + 4 + 4;
constexpr std::size_t deliver_frame_fixed_bytes = wire::frame_overhead + 8 + 4;

std::size_t encoded_size(const bc::delivery& d) {
  std::size_t n = delivery_fixed_bytes + d.body.size();
  for (const auto& [k, v] : d.headers) n += 8 + k.size() + v.size();
  return n;
}

error protocol(std::string message) {
  return error(errc::protocol_error, std::move(message));
}

}  // namespace

struct session;

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(io::runtime& r, server_options o, service& s) : rt(r), opts(std::move(o)), svc(s) {}

  io::runtime& rt;
  server_options opts;
  service& svc;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_acceptors;
  std::vector<std::unique_ptr<local::acceptor>> unix_acceptors;
  std::vector<std::string> bound;
  std::vector<std::string> unix_paths;
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};

  std::mutex mutex;  // guards sessions; `drained` signals when it empties
  std::condition_variable drained;
  std::unordered_set<std::shared_ptr<session>> sessions;

  template <class Acceptor>
  asio::awaitable<void> accept_loop(Acceptor& acceptor);
  // A session for `socket` (open, or to be assigned on its context), in the registry.
  std::shared_ptr<session> add_session(generic_socket socket);
  // Runs it on its socket's context.
  void run_session(const std::shared_ptr<session>& s);
  void remove(const std::shared_ptr<session>& s);
  std::size_t count() {
    std::lock_guard lock(mutex);
    return sessions.size();
  }
};

// One connection. Every member is touched only on the connection's context.
struct session : std::enable_shared_from_this<session> {
  struct subscription {
    std::uint64_t credit = 0;          // deliveries the client still accepts
    std::deque<bc::delivery> backlog;  // delivered by the service beyond the credit
  };

  // The service's handle on one subscription; posts to the session.
  struct sink final : delivery_sink, std::enable_shared_from_this<sink> {
    sink(std::weak_ptr<session> s, asio::any_io_executor e)
        : owner(std::move(s)), ex(std::move(e)) {}
    void deliver(std::vector<bc::delivery> deliveries) override {
      asio::post(ex, [self = shared_from_this(), d = std::move(deliveries)]() mutable {
        if (auto s = self->owner.lock()) s->on_deliveries(self->id, std::move(d));
      });
    }
    void closed(const error& reason) override {
      asio::post(ex, [self = shared_from_this(), reason]() {
        if (auto s = self->owner.lock()) s->on_subscription_closed(self->id, reason);
      });
    }
    std::weak_ptr<session> owner;
    asio::any_io_executor ex;
    bc::subscription_id id = 0;  // set on the session's thread before any posted delivery runs
  };

  session(std::shared_ptr<server::impl> s, generic_socket sock)
      : srv(std::move(s)),
        opts(srv->opts),
        socket(std::move(sock)),
        read_deadline(socket.get_executor(), never),
        write_deadline(socket.get_executor(), never),
        write_wake(socket.get_executor(), never),
        read_resume(socket.get_executor(), never) {}

  std::shared_ptr<server::impl> srv;
  const server_options& opts;
  generic_socket socket;
  asio::steady_timer read_deadline;
  asio::steady_timer write_deadline;
  asio::steady_timer write_wake;
  asio::steady_timer read_resume;

  std::string in;
  std::size_t in_len = 0;
  std::string out;
  std::string sending;
  bool hello_done = false;
  bool fatal = false;     // a protocol error was answered; close after flushing it
  bool stopping = false;  // graceful stop: read no more
  bool forced = false;    // close now
  bool reader_done = false;
  bool writer_done = false;
  bool writing = false;
  bool watchdogs_done = false;
  std::size_t pending = 0;  // service calls not yet completed
  std::size_t in_flight_publishes = 0;
  std::unordered_map<bc::subscription_id, subscription> subs;

  asio::awaitable<void> run();
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  asio::awaitable<void> watchdog(asio::steady_timer& deadline);

  void handle(const bc::frame& f);
  void handle_hello(const bc::frame& f);
  void fail(const error& e);
  void wake_writer() { write_wake.cancel(); }
  void wake_reader() { read_resume.cancel(); }
  bool paused() const {
    return in_flight_publishes >= opts.max_in_flight_publishes ||
           out.size() >= opts.max_output_bytes;
  }
  void begin_stop();
  void force_close();

  // Runs `fn(session&)` on the session's thread and counts the request done.
  template <class Fn>
  void post(Fn fn) {
    asio::post(socket.get_executor(), [self = shared_from_this(), fn = std::move(fn)]() mutable {
      fn(*self);
      --self->pending;
      self->wake_writer();
    });
  }
  completion<status> reply_ok(std::uint32_t rid) {
    ++pending;
    return [self = shared_from_this(), rid](status st) {
      self->post([rid, st = std::move(st)](session& s) {
        if (st) {
          bc::encode_ok(s.out, rid);
        } else {
          bc::encode_error(s.out, rid, st.error());
        }
      });
    };
  }
  template <class T, class Encode>
  completion<result<T>> reply(std::uint32_t rid, Encode encode) {
    ++pending;
    return [self = shared_from_this(), rid, encode](result<T> r) mutable {
      self->post([rid, encode, r = std::move(r)](session& s) mutable {
        if (r) {
          encode(s.out, rid, *r);
        } else {
          bc::encode_error(s.out, rid, r.error());
        }
      });
    };
  }
  completion<std::vector<bc::settle_failure>> reply_settle(std::uint32_t rid) {
    ++pending;
    return [self = shared_from_this(), rid](std::vector<bc::settle_failure> failures) {
      self->post(
          [rid, f = std::move(failures)](session& s) { bc::encode_settle_result(s.out, rid, f); });
    };
  }

  void on_deliveries(bc::subscription_id id, std::vector<bc::delivery> deliveries);
  void on_subscription_closed(bc::subscription_id id, const error& reason);
  void flush(bc::subscription_id id, subscription& sub);
  void drop_subscriptions();
};

asio::awaitable<void> session::run() {
  auto self = shared_from_this();
  asio::co_spawn(socket.get_executor(), reader(), asio::detached);
  asio::co_spawn(socket.get_executor(), watchdog(read_deadline), asio::detached);
  asio::co_spawn(socket.get_executor(), watchdog(write_deadline), asio::detached);
  co_await writer();
}

asio::awaitable<void> session::watchdog(asio::steady_timer& deadline) {
  auto self = shared_from_this();
  while (!watchdogs_done) {
    if (deadline.expiry() <= asio::steady_timer::clock_type::now()) {
      logger.debug("closing a connection that missed its {} deadline",
                   &deadline == &read_deadline ? "read" : "write");
      boost::system::error_code ec;
      socket.close(ec);
      deadline.expires_at(never);
      continue;
    }
    co_await deadline.async_wait(use_tuple);
  }
}

asio::awaitable<void> session::reader() {
  auto self = shared_from_this();
  in.resize(read_chunk_bytes);
  for (;;) {
    std::size_t offset = 0;
    while (!fatal && !stopping && !forced) {
      std::size_t used = 0;
      auto f = bc::parse_frame(std::string_view(in.data() + offset, in_len - offset),
                               opts.max_frame_bytes, used);
      if (!f) {
        fail(f.error());
        break;
      }
      if (!*f) break;
      handle(**f);
      offset += used;
    }
    if (offset > 0) {
      std::memmove(in.data(), in.data() + offset, in_len - offset);
      in_len -= offset;
    }
    if (fatal || stopping || forced || writer_done) break;
    while (paused() && !stopping && !forced && !writer_done) {
      read_deadline.expires_at(never);
      read_resume.expires_at(never);
      co_await read_resume.async_wait(use_tuple);
    }
    if (stopping || forced || writer_done) break;
    if (in.size() - in_len < read_chunk_bytes) in.resize(in_len + read_chunk_bytes);
    read_deadline.expires_after(in_len == 0 ? opts.idle_timeout : opts.frame_timeout);
    auto [ec, n] = co_await socket.async_read_some(
        asio::buffer(in.data() + in_len, in.size() - in_len), use_tuple);
    in_len += n;
    if (ec) break;  // EOF, reset, a deadline closing the socket, or stop's cancel
  }
  read_deadline.expires_at(never);
  reader_done = true;
  wake_writer();
}

asio::awaitable<void> session::writer() {
  auto self = shared_from_this();
  boost::system::error_code ec;
  for (;;) {
    if (forced) break;
    if (out.empty()) {
      if (reader_done && (fatal || pending == 0)) break;
      write_wake.expires_at(never);
      co_await write_wake.async_wait(use_tuple);
      continue;
    }
    sending.clear();
    std::swap(sending, out);
    writing = true;
    write_deadline.expires_after(opts.write_timeout);
    auto [write_ec, n] = co_await asio::async_write(socket, asio::buffer(sending), use_tuple);
    write_deadline.expires_at(never);
    writing = false;
    if (write_ec) break;
    if (!paused()) wake_reader();
    // A graceful stop arriving mid-write could not cancel the read without
    // cancelling the write too; do it now.
    if (stopping && !reader_done) socket.cancel(ec);
  }
  writer_done = true;
  socket.shutdown(generic_socket::shutdown_both, ec);
  socket.close(ec);
  wake_reader();
  drop_subscriptions();
  while (!reader_done) {
    write_wake.expires_at(never);
    co_await write_wake.async_wait(use_tuple);
  }
  watchdogs_done = true;
  read_deadline.cancel();
  write_deadline.cancel();
}

void session::fail(const error& e) {
  logger.info("closing a client connection: {}", e.message);
  bc::encode_error(out, 0, e);
  fatal = true;
  wake_writer();
}

void session::begin_stop() {
  stopping = true;
  boost::system::error_code ec;
  if (!writing) socket.cancel(ec);
  wake_reader();
  wake_writer();
}

void session::force_close() {
  forced = true;
  boost::system::error_code ec;
  socket.close(ec);
  wake_reader();
  wake_writer();
}

void session::drop_subscriptions() {
  for (const auto& [id, sub] : subs) srv->svc.unsubscribe(id, [](status) {});
  subs.clear();
}

void session::on_deliveries(bc::subscription_id id, std::vector<bc::delivery> deliveries) {
  auto it = subs.find(id);
  if (it == subs.end() || writer_done) return;  // unsubscribed: the leases expire and redeliver
  for (auto& d : deliveries) it->second.backlog.push_back(std::move(d));
  flush(id, it->second);
}

void session::on_subscription_closed(bc::subscription_id id, const error& reason) {
  if (subs.erase(id) == 0 || writer_done) return;
  bc::encode_subscription_closed(out, id, reason);
  wake_writer();
}

// Sends as much of the backlog as the credit allows, in DELIVER frames no
// larger than max_frame_bytes (a single delivery larger than that goes alone).
void session::flush(bc::subscription_id id, subscription& sub) {
  std::vector<bc::delivery> batch;
  std::size_t batch_bytes = deliver_frame_fixed_bytes;
  auto emit = [&] {
    if (batch.empty()) return;
    bc::encode_deliver(out, id, batch);
    batch.clear();
    batch_bytes = deliver_frame_fixed_bytes;
  };
  while (sub.credit > 0 && !sub.backlog.empty()) {
    const auto size = encoded_size(sub.backlog.front());
    if (!batch.empty() && batch_bytes + size > opts.max_frame_bytes) emit();
    batch.push_back(std::move(sub.backlog.front()));
    sub.backlog.pop_front();
    batch_bytes += size;
    --sub.credit;
  }
  emit();
  wake_writer();
}

void session::handle_hello(const bc::frame& f) {
  auto h = bc::decode_hello(f.payload);
  if (!h) return fail(h.error());
  const auto high = std::min(h->max_version, wire::max_supported_version);
  const auto low = std::max(h->min_version, wire::min_supported_version);
  if (high < low) {
    logger.info("client '{}' speaks protocol versions {}..{}, this broker {}..{}", h->client_name,
                h->min_version, h->max_version, wire::min_supported_version,
                wire::max_supported_version);
    bc::encode_error(out, f.request_id,
                     error(errc::protocol_version_unsupported,
                           fmt::format("client versions {}..{}, broker versions {}..{}",
                                       h->min_version, h->max_version, wire::min_supported_version,
                                       wire::max_supported_version)));
    fatal = true;
    wake_writer();
    return;
  }
  hello_done = true;
  bc::hello_ok ok;
  ok.version = high;
  ok.max_frame_bytes = static_cast<std::uint32_t>(opts.max_frame_bytes);
  ok.max_body_bytes = opts.max_body_bytes;
  ok.max_batch_messages = opts.max_batch_messages;
  ok.server_name = opts.server_name;
  bc::encode_hello_ok(out, f.request_id, ok);
  wake_writer();
}

void session::handle(const bc::frame& f) {
  const auto rid = f.request_id;
  auto& svc = srv->svc;
  if (!hello_done) {
    if (f.op != opcode::hello) {
      return fail(protocol(fmt::format("expected HELLO first, got {}", wire::opcode_name(f.op))));
    }
    return handle_hello(f);
  }
  switch (f.op) {
    case opcode::hello: return fail(protocol("HELLO sent twice"));
    case opcode::ping: {
      if (auto st = bc::decode_empty(f.payload, "PING"); !st) return fail(st.error());
      bc::encode_pong(out, rid);
      return wake_writer();
    }
    case opcode::pong: return;
    case opcode::publish: {
      auto batch = bc::decode_publish(f.payload);
      if (!batch) return fail(batch.error());
      const auto n = (*batch)->messages.size();
      if (n > opts.max_batch_messages) {
        bc::encode_error(out, rid,
                         error(errc::invalid_argument,
                               fmt::format("batch of {} messages exceeds the limit of {}", n,
                                           opts.max_batch_messages)));
        return wake_writer();
      }
      ++pending;
      ++in_flight_publishes;
      svc.publish(std::move(*batch), [self = shared_from_this(), rid,
                                      n](std::vector<bc::publish_result> results) {
        self->post([rid, n, results = std::move(results)](session& s) {
          --s.in_flight_publishes;
          if (results.size() == n) {
            bc::encode_confirm(s.out, rid, results);
          } else {
            logger.error("service answered {} results for a batch of {}", results.size(), n);
            bc::encode_error(s.out, rid, error(errc::internal, "broker lost track of a batch"));
          }
          if (!s.paused()) s.wake_reader();
        });
      });
      return;
    }
    case opcode::subscribe: {
      auto req = bc::decode_subscribe(f.payload);
      if (!req) return fail(req.error());
      if (req->credit == 0) {
        bc::encode_error(out, rid, error(errc::invalid_argument, "subscribe needs credit > 0"));
        return wake_writer();
      }
      auto snk = std::make_shared<sink>(weak_from_this(), socket.get_executor());
      ++pending;
      const std::uint64_t credit = req->credit;
      svc.subscribe(*req, snk,
                    [self = shared_from_this(), rid, snk, credit](result<bc::subscription_id> r) {
                      self->post([rid, snk, credit, r = std::move(r)](session& s) {
                        if (!r) return bc::encode_error(s.out, rid, r.error());
                        if (s.writer_done || s.stopping) {
                          s.srv->svc.unsubscribe(*r, [](status) {});
                          return bc::encode_error(s.out, rid, error(errc::shutting_down));
                        }
                        snk->id = *r;
                        s.subs[*r].credit = credit;
                        bc::encode_ok(s.out, rid, *r);
                      });
                    });
      return;
    }
    case opcode::unsubscribe: {
      auto id = bc::decode_unsubscribe(f.payload);
      if (!id) return fail(id.error());
      if (subs.erase(*id) == 0) {
        bc::encode_error(out, rid,
                         error(errc::consumer_not_found,
                               fmt::format("no subscription {} on this connection", *id)));
        return wake_writer();
      }
      return svc.unsubscribe_gracefully(*id, reply_ok(rid));
    }
    case opcode::credit: {
      auto c = bc::decode_credit(f.payload);
      if (!c) return fail(c.error());
      auto it = subs.find(c->first);
      if (it == subs.end() || c->second == 0) {
        bc::encode_error(out, rid,
                         it == subs.end()
                             ? error(errc::consumer_not_found,
                                     fmt::format("no subscription {} on this connection", c->first))
                             : error(errc::invalid_argument, "credit must be > 0"));
        return wake_writer();
      }
      it->second.credit += c->second;
      flush(c->first, it->second);
      ++pending;
      svc.add_credit(c->first, c->second, [self = shared_from_this(), rid](status st) {
        self->post([rid, st = std::move(st)](session& s) {
          if (!st) bc::encode_error(s.out, rid, st.error());  // success has no answer
        });
      });
      return;
    }
    case opcode::ack: {
      auto tags = bc::decode_ack(f.payload);
      if (!tags) return fail(tags.error());
      return svc.ack(std::move(*tags), reply_settle(rid));
    }
    case opcode::nack: {
      auto entries = bc::decode_nack(f.payload);
      if (!entries) return fail(entries.error());
      return svc.nack(std::move(*entries), reply_settle(rid));
    }
    case opcode::cancel_scheduled: {
      auto id = bc::decode_cancel_scheduled(f.payload);
      if (!id) return fail(id.error());
      return svc.cancel_scheduled(*id, reply_ok(rid));
    }
    case opcode::declare: {
      auto req = bc::decode_declare(f.payload);
      if (!req) return fail(req.error());
      return svc.declare(*req, reply_ok(rid));
    }
    case opcode::list_queues: {
      if (auto st = bc::decode_empty(f.payload, "LIST_QUEUES"); !st) return fail(st.error());
      return svc.list_queues(reply<std::vector<bc::queue_info>>(
          rid, [](std::string& o, std::uint32_t id, const std::vector<bc::queue_info>& v) {
            bc::encode_queue_list(o, id, v);
          }));
    }
    case opcode::peek: {
      auto req = bc::decode_peek(f.payload);
      if (!req) return fail(req.error());
      return svc.peek(*req, reply<std::vector<bc::peeked_message>>(
                                rid, [](std::string& o, std::uint32_t id,
                                        const std::vector<bc::peeked_message>& v) {
                                  bc::encode_peek_result(o, id, v);
                                }));
    }
    case opcode::peek_id: {
      auto req = bc::decode_peek_id(f.payload);
      if (!req) return fail(req.error());
      return svc.peek(*req, reply<std::vector<bc::peeked_message>>(
                                rid, [](std::string& o, std::uint32_t id,
                                        const std::vector<bc::peeked_message>& v) {
                                  bc::encode_peek_result(o, id, v);
                                }));
    }
    case opcode::replay_dead_letters: {
      auto req = bc::decode_replay_dead_letters(f.payload);
      if (!req) return fail(req.error());
      return svc.replay_dead_letters(
          *req, reply<std::uint64_t>(rid, [](std::string& o, std::uint32_t id, std::uint64_t v) {
            bc::encode_ok(o, id, v);
          }));
    }
    case opcode::stats: {
      if (auto st = bc::decode_empty(f.payload, "STATS"); !st) return fail(st.error());
      return svc.stats(
          reply<bc::stat_list>(rid, [](std::string& o, std::uint32_t id, const bc::stat_list& v) {
            bc::encode_stats_result(o, id, v);
          }));
    }
    case opcode::hello_ok:
    case opcode::error:
    case opcode::ok:
    case opcode::confirm:
    case opcode::deliver:
    case opcode::settle_result:
    case opcode::subscription_closed:
    case opcode::queue_list:
    case opcode::peek_result:
    case opcode::stats_result: break;
  }
  fail(protocol(fmt::format("{} is not a client-to-broker frame", wire::opcode_name(f.op))));
}

// ---- server ----

void server::impl::remove(const std::shared_ptr<session>& s) {
  std::lock_guard lock(mutex);
  sessions.erase(s);
  if (sessions.empty()) drained.notify_all();
}

std::shared_ptr<session> server::impl::add_session(generic_socket socket) {
  auto s = std::make_shared<session>(shared_from_this(), std::move(socket));
  std::lock_guard lock(mutex);
  sessions.insert(s);
  return s;
}

void server::impl::run_session(const std::shared_ptr<session>& s) {
  auto ex = s->socket.get_executor();
  asio::co_spawn(ex, s->run(), [self = shared_from_this(), s](std::exception_ptr ep) {
    if (ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        logger.error("broker connection ended by exception: {}", e.what());
      }
    }
    self->remove(s);
  });
}

template <class Acceptor>
asio::awaitable<void> server::impl::accept_loop(Acceptor& acceptor) {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);  // on context 0
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      logger.warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (count() >= opts.max_connections) {
      logger.warn("connection limit {} reached; closing a new connection", opts.max_connections);
      socket.close(ec);
      continue;
    }
    if constexpr (std::is_same_v<Acceptor, tcp::acceptor>)
      socket.set_option(tcp::no_delay(true), ec);
    auto& ctx = rt.next_context();
    if (&ctx == &rt.context(0)) {  // the acceptor's
      run_session(add_session(generic_socket(std::move(socket))));
      continue;
    }
    // Another context's connection: its socket is registered with that context's
    // reactor on that context's thread (the runtime's contexts lock no descriptor:
    // io/runtime.h). The session joins the registry now, so that stop() finds it.
    const asio::generic::stream_protocol protocol(acceptor.local_endpoint(ec).protocol());
    io::owned_fd fd(ec ? -1 : socket.release(ec));
    if (ec) {
      logger.warn("cannot hand over an accepted connection: {}", ec.message());
      continue;  // `socket` closes it
    }
    auto s = add_session(generic_socket(ctx));
    asio::post(ctx, [self, s, protocol, fd = std::move(fd)]() mutable {
      if (const auto adopt_ec = io::adopt(s->socket, protocol, fd)) {
        logger.warn("cannot adopt an accepted connection: {}", adopt_ec.message());
        self->remove(s);
        return;  // `fd` closes it
      }
      self->run_session(s);
    });
  }
}

server::server(io::runtime& rt, server_options opts, service& svc)
    : impl_(std::make_shared<impl>(rt, std::move(opts), svc)) {}

server::~server() {
  stop(nanoseconds::zero());
}

status server::start() {
  auto& m = *impl_;
  auto& ctx = m.rt.context(0);
  for (const auto& text : m.opts.listen) {
    auto addr = bc::parse_address(text);
    if (!addr) return std::move(addr).error();
    boost::system::error_code ec;
    if (addr->is_unix) {
      std::error_code fs_ec;
      if (std::filesystem::is_socket(addr->path, fs_ec)) std::filesystem::remove(addr->path, fs_ec);
      auto acc = std::make_unique<local::acceptor>(ctx);
      acc->open(local(), ec);
      if (!ec) acc->bind(local::endpoint(addr->path), ec);
      if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        return error(errc::unavailable, fmt::format("cannot listen on {}: {}", text, ec.message()));
      }
      m.bound.push_back(text);
      m.unix_paths.push_back(addr->path);
      m.unix_acceptors.push_back(std::move(acc));
      continue;
    }
    auto ip = asio::ip::make_address(addr->host, ec);
    if (ec) {
      return error(
          errc::invalid_argument,
          fmt::format("invalid listen address '{}': '{}' is not an IP address", text, addr->host));
    }
    tcp::endpoint ep(ip, addr->port);
    auto acc = std::make_unique<tcp::acceptor>(ctx);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return error(errc::unavailable, fmt::format("cannot listen on {}: {}", text, ec.message()));
    auto b = acc->local_endpoint(ec);
    auto host = b.address().to_string();
    if (b.address().is_v6()) host = "[" + host + "]";
    m.bound.push_back(host + ":" + std::to_string(b.port()));
    m.tcp_acceptors.push_back(std::move(acc));
  }
  m.running = true;
  for (auto& a : m.tcp_acceptors) asio::co_spawn(ctx, m.accept_loop(*a), asio::detached);
  for (auto& a : m.unix_acceptors) asio::co_spawn(ctx, m.accept_loop(*a), asio::detached);
  return {};
}

std::vector<std::string> server::addresses() const {
  return impl_->bound;
}

std::size_t server::active_connections() const {
  return impl_->count();
}

void server::stop(nanoseconds grace) {
  auto self = impl_;
  if (!self->running.exchange(false)) return;
  self->stopping = true;
  {
    std::promise<void> closed;
    asio::post(self->rt.context(0), [self, &closed] {
      boost::system::error_code ec;
      for (auto& a : self->tcp_acceptors) a->close(ec);
      for (auto& a : self->unix_acceptors) a->close(ec);
      closed.set_value();
    });
    closed.get_future().wait();
  }
  for (const auto& path : self->unix_paths) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  auto nudge = [self](bool force) {
    std::lock_guard lock(self->mutex);
    for (const auto& s : self->sessions) {
      asio::post(s->socket.get_executor(),
                 [s, force] { force ? s->force_close() : s->begin_stop(); });
    }
  };
  nudge(false);
  std::unique_lock lock(self->mutex);
  if (!self->drained.wait_for(lock, grace, [&] { return self->sessions.empty(); })) {
    lock.unlock();
    logger.warn("closing {} broker connections still open after the grace period", self->count());
    nudge(true);
    lock.lock();
    self->drained.wait(lock, [&] { return self->sessions.empty(); });
  }
}

}  // namespace outrider::broker
