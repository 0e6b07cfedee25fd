#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "base/log.h"
#include "http/detail/direct_io.h"
#include "http/detail/lazy_deadline.h"
#include "http/detail/message_parser.h"
#include "http/detail/simple_request.h"
#include "http/detail/streaming.h"
#include "io/owned_fd.h"
#include "io/runtime.h"

namespace outrider::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

const log::logger logger{"http"};
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk_bytes = 8192;
// A connection keeps its output buffer between responses up to this capacity.
constexpr std::size_t max_kept_output_bytes = 64 * 1024;

// One response to a request the connection could not hand to a handler.
bhttp::response<bhttp::string_body> error_response(const error& e, const server_options& opts) {
  auto r = response::from_error(e);
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(r.status), 11};
  out.set(bhttp::field::server, opts.server_header);
  out.set(bhttp::field::content_type, "application/json");
  out.body() = std::move(r.body);
  out.keep_alive(false);
  out.prepare_payload();
  return out;
}

}  // namespace

result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return error(
        errc::invalid_argument,
        fmt::format("invalid listen address '{}': {} (expected host:port, e.g. 127.0.0.1:3500)",
                    text, why));
  };
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("unbalanced brackets");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return bad("port must be a number from 0 to 65535");
  }
  return std::make_pair(std::string(host), static_cast<std::uint16_t>(port));
}

struct connection;

// The responder's state of a connection's requests (http/handler.h), one per
// connection and reused request after request: no allocation per request for
// the responder, its answer or the session's wait. The handler may answer
// synchronously (on this thread, before it returns: the session finds the result,
// no post) or later: on this thread (the answer is written at once, in the
// responder's call, and the session's wait is resumed by one post to finish the
// write if the socket did not take it all, and to read the next request) or from
// another thread (one post back, which resumes it). Its members are touched only
// on the connection's thread (deliver() from another thread only posts).
//
// Lifetime: `holds_` counts the session (while the slot is its current one), the
// responders of its current request (one hold for all copies, from start() to
// released()) and each post in flight; the last release() deletes it. The session
// reuses it for the next request only when it is the only holder (reusable()): a
// handler that keeps a responder copy after answering makes the next request take a
// new slot.
class request_slot final : public responder::state {
 public:
  // The session's wait: the coroutine's completion handler, kept in place.
  using wait_handler = asio::async_result<asio::use_awaitable_t<>, void()>::handler_type;

  // How the session would write the answer, set while it waits: a later answer on
  // this thread (a backend's callback on the connection's thread, as the sidecar's
  // publish confirm) goes out in the responder's call, not one scheduler round later
  // after the session's resume. `done` once written (as far as the socket took it).
  struct early_write {
    connection* conn = nullptr;  // alive while the session waits
    const std::atomic<bool>* stopping = nullptr;
    std::string_view server_header;
    unsigned version = 11;
    bool client_keep_alive = true;
    bool head = false;
    bool done = false;
    bool keep_alive = false;  // what the written head says
    std::size_t written = 0;  // bytes of conn->out the socket took
    boost::system::error_code ec;
  };

  // On the connection's thread (the owner).
  explicit request_slot(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // No responder, post or wait of an earlier request is left: start() may run.
  bool reusable() const noexcept { return holds_.load(std::memory_order_acquire) == 1; }
  // The first responder of a new request. REQUIRES: a new slot, or reusable().
  responder start() {
    reset_for_reuse();
    result.reset();
    early.reset();
    in_call = true;
    holds_.store(2, std::memory_order_relaxed);  // the session's and the responders'
    return responder::adopt(*this);
  }
  // Drops one hold; the last deletes the slot.
  void release() noexcept {
    if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Writes `result` now if the session waits and allows it (defined after `connection`).
  void write_early();
  // Ends the session's wait, if it waits: later, from the scheduler (never inside
  // the caller, who may be in the middle of another coroutine). One post at most.
  void wake() {
    if (!wait || wake_posted_) return;
    wake_posted_ = true;
    holds_.fetch_add(1, std::memory_order_relaxed);
    asio::post(ex_, [this] {
      wake_posted_ = false;
      resume_here();
      release();
    });
  }
  // Ends it now: only from a handler of the connection's context.
  void resume_here() {
    if (!wait) return;
    auto h = std::move(*wait);
    wait.reset();
    std::move(h)();
  }

  std::optional<response> result;
  std::optional<wait_handler> wait;  // set while the session waits (no timer)
  std::optional<early_write> early;  // set while the session waits, when it may write early
  bool in_call = true;               // the handler has not returned yet

 private:
  // Thread first: the slot is only ever touched on the owner thread. On it, no
  // post during the call (the session finds the result when the handler
  // returns); later one post resumes the session's wait.
  void deliver(response&& r) override {
    if (std::this_thread::get_id() == owner_) {
      result = std::move(r);
      if (!in_call) {
        write_early();
        wake();
      }
      return;
    }
    holds_.fetch_add(1, std::memory_order_relaxed);
    asio::post(ex_, [this, r = std::move(r)]() mutable {
      result = std::move(r);
      resume_here();  // already a handler of the connection's context
      release();
    });
  }
  void released() noexcept override {
    dropped();
    release();
  }

  const asio::any_io_executor ex_;
  const std::thread::id owner_ = std::this_thread::get_id();
  std::atomic<std::uint32_t> holds_{1};  // the session's
  bool wake_posted_ = false;
};

// A connection's state, owned by its session coroutine and by the registry
// (for stop()). Touched only on its context's thread.
//
// Deadlines: the stream's own timeout (a timer operation per read and write) is
// never set; `deadline` holds the phase's deadline (idle, header, body, write)
// and closes the socket when it passes, which fails the pending operation.
struct connection {
  explicit connection(tcp::socket s)
      : stream(std::move(s)),
        deadline(std::make_shared<detail::lazy_deadline>(stream.get_executor())) {
    deadline->on_expire([this] {
      boost::system::error_code ec;
      stream.socket().close(ec);
    });
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  beast::tcp_stream stream;
  std::shared_ptr<detail::lazy_deadline> deadline;
  std::string out;                  // the response being written (reused)
  bool busy = false;                // a request is being read or handled
  request_slot* waiting = nullptr;  // set while awaiting an async handler
};

void request_slot::write_early() {
  if (!wait || !early || early->done || !result || result->stream) return;
  auto& w = *early;
  connection& c = *w.conn;
  w.keep_alive = w.client_keep_alive && !w.stopping->load();
  c.out.clear();
  serialize_response(c.out, *result, w.version, w.keep_alive, w.head, w.server_header);
  w.written = detail::write_now(c.stream.socket(), c.out, w.ec);
  w.done = true;
}

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(io::runtime& r, server_options o, handler h)
      : rt(r), opts(std::move(o)), on_request(std::move(h)), acceptor(r.context(0)) {}

  io::runtime& rt;
  server_options opts;
  handler on_request;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};
  // Connections refused at the limit since the last warning (the acceptor's thread only), so a
  // burst logs one line a second, not one per connection.
  std::uint64_t refused_since_warning = 0;
  std::chrono::steady_clock::time_point last_refusal_warning{};

  std::mutex mutex;  // guards connections; cv signals when it empties
  std::condition_variable drained;
  std::unordered_set<std::shared_ptr<connection>> connections;

  void add(const std::shared_ptr<connection>& c) {
    std::lock_guard lock(mutex);
    connections.insert(c);
  }
  void remove(const std::shared_ptr<connection>& c) {
    std::lock_guard lock(mutex);
    connections.erase(c);
    if (connections.empty()) drained.notify_all();
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return connections.size();
  }

  asio::awaitable<void> accept_loop();
  // Runs `c`'s session on its context (a new connection, in the registry).
  void start_session(const std::shared_ptr<connection>& c);
  asio::awaitable<void> session(std::shared_ptr<connection> c);
  // Answers a request the session cannot hand to the handler; the caller then closes.
  asio::awaitable<void> reply_error(connection& c, error e);
  // Completes the request `parser` read (its head, and its body unless streamed).
  static void finish_request(detail::message_parser<true>& parser, const std::string& peer);
  // Writes a response whose body is resp.stream; false when the connection
  // must close (the body was cut, or writing failed).
  asio::awaitable<bool> write_streamed(connection& c, response& resp, unsigned version,
                                       bool keep_alive, bool head);
};

asio::awaitable<void> server::impl::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);  // on context 0
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      logger.warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (count() >= opts.max_connections) {
      ++refused_since_warning;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_refusal_warning >= std::chrono::seconds(1)) {
        logger.warn("connection limit {} reached; closed {} new connection(s)",
                    opts.max_connections, refused_since_warning);
        refused_since_warning = 0;
        last_refusal_warning = now;
      }
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto& ctx = rt.next_context();
    if (&ctx == &rt.context(0)) {  // the acceptor's
      auto c = std::make_shared<connection>(std::move(socket));
      add(c);
      start_session(c);
      continue;
    }
    // Another context's connection: its socket is registered with that context's
    // reactor on that context's thread (the runtime's contexts lock no descriptor:
    // io/runtime.h), so the descriptor leaves this one here and is adopted there. The
    // connection joins the registry now, so that stop() finds it.
    const auto protocol = socket.local_endpoint(ec).protocol();
    io::owned_fd fd(ec ? -1 : socket.release(ec));
    if (ec) {
      logger.warn("cannot hand over an accepted connection: {}", ec.message());
      continue;  // `socket` closes it
    }
    auto c = std::make_shared<connection>(tcp::socket(ctx));
    add(c);
    asio::post(ctx, [self, c, protocol, fd = std::move(fd)]() mutable {
      if (const auto adopt_ec = io::adopt(c->stream.socket(), protocol, fd)) {
        logger.warn("cannot adopt an accepted connection: {}", adopt_ec.message());
        self->remove(c);
        return;  // `fd` closes it
      }
      self->start_session(c);
    });
  }
}

void server::impl::start_session(const std::shared_ptr<connection>& c) {
  asio::co_spawn(c->stream.get_executor(), session(c),
                 [self = shared_from_this(), c](std::exception_ptr ep) {
                   if (ep) {
                     try {
                       std::rethrow_exception(ep);
                     } catch (const std::exception& e) {
                       logger.error("connection ended by exception: {}", e.what());
                     }
                   }
                   self->remove(c);
                 });
}

void server::impl::finish_request(detail::message_parser<true>& parser, const std::string& peer) {
  request& req = parser.get();
  split_target(req.target, req.path, req.query);
  req.keep_alive = parser.keep_alive();
  req.remote_address = peer;
}

asio::awaitable<bool> server::impl::write_streamed(connection& c, response& resp, unsigned version,
                                                   bool keep_alive, bool head) {
  bhttp::response<bhttp::buffer_body> m{static_cast<bhttp::status>(resp.status), version};
  bool has_server = false;
  for (const auto& f : resp.headers) {
    if (detail::framing_field(f.name) || detail::has_crlf(f.name) || detail::has_crlf(f.value)) {
      continue;
    }
    if (iequals(f.name, "Server")) has_server = true;
    m.insert(f.name, f.value);
  }
  if (!has_server) m.set(bhttp::field::server, opts.server_header);
  const bool no_body = resp.status < 200 || resp.status == 204 || resp.status == 304;
  if (!no_body) {
    if (auto len = resp.stream->content_length()) {
      m.content_length(*len);
    } else if (version >= 11) {
      m.chunked(true);
    } else {
      keep_alive = false;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  m.keep_alive(keep_alive);
  auto& deadline = *c.deadline;
  auto r = co_await detail::pump_body(
      c.stream, m, *resp.stream, [&] { deadline.expires_after(opts.write_timeout); },
      head || no_body);
  deadline.expires_never();
  if (r.end == detail::pump_result::kind::source_cut) {
    logger.debug("streamed response cut: {}", r.why);
  }
  co_return r.end == detail::pump_result::kind::done&& keep_alive;
}

asio::awaitable<void> server::impl::reply_error(connection& c, error e) {
  auto out = error_response(e, opts);
  c.deadline->expires_after(opts.write_timeout);
  co_await bhttp::async_write(c.stream, out, use_tuple);
}

asio::awaitable<void> server::impl::session(std::shared_ptr<connection> c) {
  auto& stream = c->stream;
  auto& deadline = *c->deadline;
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  std::string peer;  // "ip:port", once per connection
  if (const auto ep = stream.socket().remote_endpoint(ec); !ec) {
    peer = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  // Reads and writes try the socket now and wait for readiness only when it has nothing
  // (or takes nothing): no completion is posted for bytes that are already there.
  auto& sock = stream.socket();
  sock.non_blocking(true, ec);
  if (ec) co_return;
  const bool one_thread = detail::runs_on_one_thread(sock);
  // The connection's request slot (its hold is dropped when the session ends).
  struct release_slot {
    void operator()(request_slot* s) const noexcept { s->release(); }
  };
  std::unique_ptr<request_slot, release_slot> slot;
  for (;;) {
    c->busy = false;
    if (stopping) break;
    // The last read emptied the socket and nothing waited since (detail/direct_io.h):
    // once this request is whole, the idle read need not try the socket first.
    bool emptied = false;
    if (buffer.size() == 0) {
      // Idle: wait for the first bytes of the next request.
      deadline.expires_after(opts.idle_timeout);
      if (co_await detail::read_some_now(sock, buffer, read_chunk_bytes, one_thread, emptied)) {
        break;
      }
    }
    c->busy = true;
    const bool may_stream = static_cast<bool>(opts.stream_request);
    using upload_stream = detail::parser_body_stream<true, beast::tcp_stream>;
    std::shared_ptr<upload_stream> upload;
    request req;
    bool head = false;
    // The usual request, whole in the buffer: one scan instead of Beast's parser
    // (detail/simple_request.h; it declines anything else, which Beast then parses).
    // A body it takes is under the streaming threshold: never a streamed request.
    bool simple_keep_alive = true;
    const std::size_t simple_bytes = detail::parse_simple_request(
        std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()),
        {opts.header_limit, may_stream
                                ? std::min<std::uint64_t>(opts.body_limit, opts.stream_threshold)
                                : opts.body_limit},
        req, simple_keep_alive);
    if (simple_bytes != 0) {
      buffer.consume(simple_bytes);
      if (emptied) detail::message_drained_socket(sock);
      split_target(req.target, req.path, req.query);
      req.keep_alive = simple_keep_alive;
      req.remote_address = peer;
      head = req.method == "HEAD";
    } else {
      detail::message_parser<true> parser;  // fills a `request` (detail/message_parser.h)
      parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
      if (may_stream) {
        parser.body_limit(boost::none);  // set below, once the route is known
      } else {
        parser.body_limit(opts.body_limit);
      }
      deadline.expires_after(opts.header_timeout);
      // The head is usually whole in the buffer already: parse it in place.
      auto header_ec = detail::parse_buffered(parser, buffer);
      if (!header_ec && !parser.is_header_done()) {
        emptied = false;
        auto [read_ec, header_bytes] =
            co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
        header_ec = read_ec;
      }
      if (header_ec) {
        if (deadline.expired()) break;  // the header deadline passed: close without an answer
        if (header_ec == bhttp::error::header_limit) {
          co_await reply_error(
              *c, error(errc::header_too_large,
                        fmt::format("request headers exceed {} bytes", opts.header_limit)));
        } else if (header_ec == bhttp::error::body_limit) {  // Content-Length over the limit
          co_await reply_error(
              *c, error(errc::body_too_large,
                        fmt::format("request body exceeds {} bytes", opts.body_limit)));
        } else if (header_ec != beast::error::timeout && header_ec != bhttp::error::end_of_stream &&
                   header_ec != asio::error::eof && header_ec != asio::error::operation_aborted &&
                   header_ec != asio::error::connection_reset) {
          co_await reply_error(*c,
                               error(errc::malformed_request,
                                     fmt::format("malformed request: {}", header_ec.message())));
        }
        break;
      }
      if (emptied && parser.is_done()) detail::message_drained_socket(sock);
      std::optional<request> streamed;  // the head of a request whose body is streamed
      if (may_stream && !parser.is_done()) {
        const auto len = parser.content_length();
        if (parser.chunked() || (len && *len > opts.stream_threshold)) {
          finish_request(parser, peer);
          if (opts.stream_request(parser.get())) streamed = std::move(parser.get());
        }
        if (streamed && len && opts.stream_body_limit != 0 && *len > opts.stream_body_limit) {
          // A declared length over the stream limit: 413 before any of the body is read
          // (a chunked body over it is cut while it streams).
          co_await reply_error(
              *c, error(errc::body_too_large,
                        fmt::format("request body exceeds {} bytes", opts.stream_body_limit)));
          break;
        }
        if (!streamed) {
          if (len && *len > opts.body_limit) {
            co_await reply_error(
                *c, error(errc::body_too_large,
                          fmt::format("request body exceeds {} bytes", opts.body_limit)));
            break;
          }
          parser.body_limit(opts.body_limit);
        }
      }
      if (!parser.is_done()) {
        const auto& fields = streamed ? streamed->headers : parser.get().headers;
        auto expect = fields.get("Expect");
        if (expect && iequals(*expect, "100-continue")) {
          static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
          deadline.expires_after(opts.write_timeout);
          emptied = false;
          auto [write_ec, written] =
              co_await asio::async_write(stream, asio::buffer(continue_line), use_tuple);
          if (write_ec) break;
        }
      }
      if (!parser.is_done() && !streamed) {
        deadline.expires_after(opts.body_timeout);
        auto body_ec = detail::parse_buffered(parser, buffer);
        if (!body_ec && emptied && parser.is_done()) detail::message_drained_socket(sock);
        if (!body_ec && !parser.is_done()) {
          auto [read_ec, body_bytes] =
              co_await bhttp::async_read(stream, buffer, parser, use_tuple);
          body_ec = read_ec;
        }
        if (body_ec) {
          if (deadline.expired()) break;
          if (body_ec == bhttp::error::body_limit) {
            co_await reply_error(
                *c, error(errc::body_too_large,
                          fmt::format("request body exceeds {} bytes", opts.body_limit)));
          } else if (body_ec != beast::error::timeout && body_ec != asio::error::eof &&
                     body_ec != bhttp::error::partial_message &&
                     body_ec != asio::error::operation_aborted) {
            co_await reply_error(
                *c, error(errc::malformed_request,
                          fmt::format("malformed request body: {}", body_ec.message())));
          }
          break;
        }
      }
      head = (streamed ? streamed->method : parser.get().method) == "HEAD";
      if (streamed) {
        upload = std::make_shared<upload_stream>(stream, c, std::move(buffer), std::move(parser),
                                                 opts.body_timeout, opts.stream_body_limit);
        req = std::move(*streamed);
        req.stream = upload;
      } else {
        finish_request(parser, peer);
        req = std::move(parser.get());
      }
    }
    const bool client_keep_alive = req.keep_alive;
    const unsigned version = req.version;
    deadline.expires_never();  // the handler's time is the handler's business
    if (!slot || !slot->reusable()) slot.reset(new request_slot(stream.get_executor()));
    {
      on_request(std::move(req), slot->start());
      slot->in_call = false;
      if (!slot->result) {
        c->waiting = slot.get();
        if (!upload) {  // a streamed request's keep-alive depends on its reader
          slot->early.emplace();
          auto& w = *slot->early;
          w.conn = c.get();
          w.stopping = &stopping;
          w.server_header = opts.server_header;
          w.version = version;
          w.client_keep_alive = client_keep_alive;
          w.head = head;
        }
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
            [s = slot.get()](request_slot::wait_handler handler_of_wait) {
              s->wait.emplace(std::move(handler_of_wait));
            },
            asio::use_awaitable);
        c->waiting = nullptr;
      }
    }
    const bool written_early = slot->early && slot->early->done;
    response resp = written_early ? response{}
                    : slot->result
                        ? std::move(*slot->result)
                        : response::from_error(error(errc::shutting_down,
                                                     "server stopped before the handler answered"));
    // A streamed request body not read to its end leaves the connection unusable.
    const bool keep_alive = written_early
                                ? slot->early->keep_alive
                                : client_keep_alive && !stopping && (!upload || upload->done());

    if (!written_early && resp.stream) {
      const bool reusable = co_await write_streamed(*c, resp, version, keep_alive, head);
      resp.stream.reset();  // an unread upstream body closes its connection
      if (upload) buffer = upload->detach();
      if (!reusable) break;
      continue;
    }
    boost::system::error_code write_ec;
    std::size_t written_now = 0;
    if (written_early) {
      written_now = slot->early->written;
      write_ec = slot->early->ec;
    } else {
      c->out.clear();
      serialize_response(c->out, resp, version, keep_alive, head, opts.server_header);
      written_now = detail::write_now(sock, c->out, write_ec);
    }
    if (!write_ec && written_now < c->out.size()) {
      deadline.expires_after(opts.write_timeout);
      auto [rest_ec, rest] = co_await asio::async_write(
          stream, asio::buffer(c->out.data() + written_now, c->out.size() - written_now),
          use_tuple);
      write_ec = rest_ec;
    }
    if (upload) buffer = upload->detach();
    if (write_ec) break;
    if (c->out.capacity() > max_kept_output_bytes)
      std::string().swap(c->out);  // do not pin big buffers
    if (!keep_alive) break;
  }
  c->busy = false;
  deadline.shutdown();
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

server::server(io::runtime& rt, server_options opts, handler h)
    : impl_(std::make_shared<impl>(rt, std::move(opts), std::move(h))) {}

server::~server() {
  stop(nanoseconds::zero());
}

status server::start() {
  auto hp = parse_host_port(impl_->opts.listen);
  if (!hp) return std::move(hp).error();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) {
    return error(errc::invalid_argument,
                 fmt::format("invalid listen address '{}': '{}' is not an IP address",
                             impl_->opts.listen, hp->first));
  }
  tcp::endpoint ep(ip, hp->second);
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return error(errc::unavailable,
                 fmt::format("cannot listen on {}: {}", impl_->opts.listen, ec.message()));
  }
  impl_->bound = acc.local_endpoint(ec);
  impl_->running = true;
  asio::co_spawn(impl_->rt.context(0), impl_->accept_loop(), asio::detached);
  logger.debug("listening on {}", address());
  return {};
}

std::uint16_t server::port() const {
  return impl_->bound.port();
}

std::string server::address() const {
  auto a = impl_->bound.address();
  auto text = a.to_string();
  if (a.is_v6()) text = "[" + text + "]";
  return text + ":" + std::to_string(impl_->bound.port());
}

std::size_t server::active_connections() const {
  return impl_->count();
}

void server::stop(nanoseconds grace) {
  auto self = impl_;
  if (!self->running.exchange(false)) return;
  self->stopping = true;
  // Close the listener on its own thread.
  {
    std::promise<void> closed;
    asio::post(self->rt.context(0), [self, &closed] {
      boost::system::error_code ec;
      self->acceptor.close(ec);
      closed.set_value();
    });
    closed.get_future().wait();
  }
  // Ask every connection to finish: idle ones close now, busy ones after their response.
  auto nudge = [self](bool force) {
    std::lock_guard lock(self->mutex);
    for (const auto& c : self->connections) {
      asio::post(c->stream.get_executor(), [c, force] {
        if (force || !c->busy) {
          boost::system::error_code ec;
          c->stream.socket().cancel(ec);
          if (force && c->waiting != nullptr) c->waiting->wake();
          if (force) c->stream.socket().close(ec);
        }
      });
    }
  };
  nudge(false);
  std::unique_lock lock(self->mutex);
  if (!self->drained.wait_for(lock, grace, [&] { return self->connections.empty(); })) {
    lock.unlock();
    logger.warn("closing {} connections still open after the grace period", self->count());
    nudge(true);
    lock.lock();
    self->drained.wait(lock, [&] { return self->connections.empty(); });
  }
}

}  // namespace outrider::http
