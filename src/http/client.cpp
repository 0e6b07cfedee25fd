#include "http/client.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/assert.h"
#include "base/log.h"
#include "http/detail/direct_io.h"
#include "http/detail/lazy_deadline.h"
#include "http/detail/message_parser.h"
#include "http/detail/simple_response.h"
#include "http/detail/streaming.h"

namespace outrider::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

const log::logger logger{"http.client"};
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
// A pooled connection idle for less than this is reused without probing it for
// a close by the peer (a recv(MSG_PEEK) per request): servers close idle
// keep-alive connections after seconds, not within one. A connection found
// closed on use is retried once (see run()).
constexpr auto probe_after_idle = std::chrono::seconds(1);
// The first read of a response asks for this much (Beast's own reads start at 512 bytes, so a
// 1 KiB answer took three reads).
constexpr std::size_t response_read_bytes = 16 * 1024;
// A pooled connection keeps its read buffer up to this capacity.
constexpr std::size_t max_kept_buffer_bytes = 64 * 1024;

// Appends `n` in decimal.
void append_number(std::string& out, std::uint64_t n) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

// Whether run() leaves the field out of what it sends (it writes its own).
bool replaced_field(std::string_view name) {
  switch (name.size()) {  // one comparison at most
    case 4: return iequals(name, "Host");
    case 10: return iequals(name, "Connection");
    case 14: return iequals(name, "Content-Length");
    case 17: return iequals(name, "Transfer-Encoding");
    default: return false;
  }
}

// The pieces of the Host field's value for `dest` (no port when it is the scheme's default).
struct host_value {
  explicit host_value(const url& dest) : host(dest.host) {
    v6 = dest.host.find(':') != std::string::npos;
    const bool default_port = (std::string_view(dest.scheme) == "http" && dest.port == 80) ||
                              (std::string_view(dest.scheme) == "https" && dest.port == 443);
    if (!default_port) {
      port_text[0] = ':';
      port_size = static_cast<std::size_t>(
          std::to_chars(port_text + 1, port_text + sizeof port_text, dest.port).ptr - port_text);
    }
  }
  std::size_t size() const { return host.size() + (v6 ? 2 : 0) + port_size; }
  void put(detail::wire_writer& w) const {
    if (v6) w.put('[');
    w.put(host);
    if (v6) w.put(']');
    w.put(std::string_view(port_text, port_size));
  }
  std::string_view host;
  bool v6 = false;
  char port_text[8] = {};
  std::size_t port_size = 0;
};

// A Host value already written out (the fast path keeps its last origin's).
struct host_text {
  std::string_view text;
  std::size_t size() const { return text.size(); }
  void put(detail::wire_writer& w) const { w.put(text); }
};

// The wire form of a request with a buffered body on a plain connection, written
// straight from `req` (no Beast message in between): what Beast's serializer
// writes for the message run() builds for TLS: the request line, req's fields in
// order without the ones replaced_field() names (and without any holding CR or
// LF), Host, User-Agent unless req has one, Content-Length as Beast's
// prepare_payload sets it (a body, or POST, PUT, OPTIONS), then the body. Two
// passes: the first counts, the second copies into `wire` grown once. `host`: the
// Host value (host_value, or the fast path's text kept for its origin).
template <class Host>
void write_request(std::string& wire, const request& req, std::string_view target, const Host& host,
                   std::string_view user_agent) {
  wire.clear();
  auto kept = [](const fields::field& f) {
    return !replaced_field(f.name) && !detail::has_crlf(f.name) && !detail::has_crlf(f.value);
  };
  std::uint64_t kept_bits = 0;  // bit i: field i is written (fields past 64 are judged again)
  bool has_user_agent = false;
  std::size_t bytes = req.method.size() + 1 + target.size() + 11;  // "GET / HTTP/1.1\r\n"
  std::size_t i = 0;
  for (const auto& f : req.headers) {
    if (kept(f)) {
      if (i < 64) kept_bits |= std::uint64_t{1} << i;
      if (!has_user_agent && iequals(f.name, "User-Agent")) has_user_agent = true;
      bytes += detail::field_bytes(f.name, f.value);
    }
    ++i;
  }
  bytes += 6 + host.size() + 2;  // "Host: " value "\r\n"
  if (!has_user_agent) bytes += detail::field_bytes("User-Agent", user_agent);
  char length_text[20];
  std::string_view length;
  const std::string_view method = req.method;  // (compared as views: lengths first, no strlen)
  if (!req.body.empty() || method == "POST" || method == "PUT" || method == "OPTIONS") {
    length = std::string_view(
        length_text,
        static_cast<std::size_t>(
            std::to_chars(length_text, length_text + sizeof length_text, req.body.size()).ptr -
            length_text));
    bytes += detail::field_bytes("Content-Length", length);
  }
  bytes += 2 + req.body.size();

  detail::wire_writer w(wire, bytes);
  w.put(req.method);
  w.put(' ');
  w.put(target);
  w.put(" HTTP/1.1\r\n");
  i = 0;
  for (const auto& f : req.headers) {
    if (i < 64 ? (kept_bits >> i) & 1U : kept(f)) w.field(f.name, f.value);
    ++i;
  }
  w.put("Host: ");
  host.put(w);
  w.put("\r\n");
  if (!has_user_agent) w.field("User-Agent", user_agent);
  if (!length.empty()) w.field("Content-Length", length);
  w.put("\r\n");
  w.put(req.body);
  OUTRIDER_ASSERT(w.full(), "write_request counted its bytes wrong");
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS" || method == "TRACE";
}

// After a direct read that met the end of the stream: the end completes a
// close-delimited response, or is end_of_stream when nothing came. Handled here, as
// Beast's read would: reading again after the end would wait for a readiness edge
// that never comes.
template <class Parser>
void end_at_eof(Parser& parser, boost::system::error_code& ec) {
  if (ec != asio::error::eof) return;
  if (parser.got_some()) {
    parser.put_eof(ec);
  } else {
    ec = bhttp::error::end_of_stream;
  }
}

}  // namespace

result<url> url::parse(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) {
    return error(errc::invalid_argument,
                 fmt::format("invalid URL '{}': {}", text, parsed.error().message()));
  }
  url out;
  out.scheme = std::string(parsed->scheme());
  for (auto& ch : out.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (out.scheme != "http" && out.scheme != "https") {
    return error(errc::invalid_argument,
                 fmt::format("invalid URL '{}': scheme must be http or https", text));
  }
  out.host = std::string(parsed->encoded_host_address());
  if (!out.host.empty() && out.host.front() == '[')
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty())
    return error(errc::invalid_argument, fmt::format("invalid URL '{}': no host", text));
  if (parsed->has_port()) {
    auto p = parsed->port_number();
    if (p == 0)
      return error(errc::invalid_argument, fmt::format("invalid URL '{}': bad port", text));
    out.port = p;
  } else {
    out.port = out.scheme == "https" ? 443 : 80;
  }
  out.target = std::string(parsed->encoded_path());
  if (out.target.empty()) out.target = "/";
  if (parsed->has_query()) out.target += "?" + std::string(parsed->encoded_query());
  return out;
}

std::string url::origin() const {
  // Appended, not fmt::format'ed: the client builds it for every request (its pool's key).
  const bool v6 = host.find(':') != std::string::npos;
  std::string out;
  out.reserve(scheme.size() + host.size() + 12);
  out.append(scheme).append("://");
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  append_number(out, port);
  return out;
}

// One connection: its stream and its deadline. The stream's own timeout (a
// timer operation per read and write) is never set; `deadline` is one lazily
// armed timer that closes the socket when the current request's deadline passes.
struct pooled {
  pooled() = default;
  pooled(std::variant<std::unique_ptr<plain_stream>, std::unique_ptr<tls_stream>> s,
         std::shared_ptr<detail::lazy_deadline> d)
      : stream(std::move(s)), deadline(std::move(d)) {
    tcp::socket* sock = &socket();  // stable: the stream is on the heap
    deadline->on_expire([sock] {
      boost::system::error_code ec;
      sock->close(ec);
    });
  }
  pooled(pooled&& o) noexcept = default;
  pooled& operator=(pooled&& o) noexcept {
    if (this != &o) {
      release();
      stream = std::move(o.stream);
      deadline = std::move(o.deadline);
      idle_since = o.idle_since;
      wire = std::move(o.wire);
      buffer = std::move(o.buffer);
      one_thread = o.one_thread;
    }
    return *this;
  }
  ~pooled() { release(); }
  pooled(const pooled&) = delete;
  pooled& operator=(const pooled&) = delete;

  tcp::socket& socket() {
    return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(*s).socket(); },
                      stream);
  }
  void release() {
    if (deadline) deadline->shutdown();
    deadline.reset();
  }

  std::variant<std::unique_ptr<plain_stream>, std::unique_ptr<tls_stream>> stream;
  std::shared_ptr<detail::lazy_deadline> deadline;
  mono_time idle_since{};
  std::string wire;  // the request being written (plain connections; reused)
  // Where responses are read (reused; empty between requests: a connection with
  // bytes left over is not pooled).
  beast::flat_buffer buffer;
  bool one_thread = false;  // the client's context runs on one thread (detail/direct_io.h)
};

struct client::impl : std::enable_shared_from_this<client::impl> {
  impl(asio::io_context& c, client_options o) : context(c), opts(std::move(o)), resolver(c) {}

  asio::io_context& context;
  client_options opts;
  // Made on the first https request: creating an OpenSSL context initialises
  // the library, which faults in ~3 MiB of libcrypto pages (RSS) that a
  // plain-HTTP client never needs.
  std::optional<ssl::context> tls;
  bool tls_ready = false;
  std::string tls_error;
  tcp::resolver resolver;
  std::unordered_map<std::string, std::deque<pooled>> idle;  // by origin (never erased)
  // The fast path's last origin: a key of `idle` and its queue (the map's nodes stay
  // put) and the URL parts it was made from, so a call to the same origin builds no
  // string and looks nothing up.
  const std::string* last_origin = nullptr;
  std::deque<pooled>* last_queue = nullptr;
  // Finished fast path ops kept for the next calls (see recycle()), as many as calls
  // were out at once up to max_spare_ops; no client reference in them.
  struct fast_op;
  std::vector<std::unique_ptr<fast_op>> spare_ops;
  static constexpr std::size_t max_spare_ops = 32;
  std::string last_scheme;
  std::string last_host;
  std::uint16_t last_port = 0;
  std::string last_host_text;  // its Host value (host_value's text)

  const std::string& origin_key(const url& dest) {
    if (last_origin == nullptr || dest.port != last_port || dest.host != last_host ||
        dest.scheme != last_scheme) {
      auto it = idle.try_emplace(dest.origin()).first;
      last_origin = &it->first;
      last_queue = &it->second;
      last_scheme = dest.scheme;
      last_host = dest.host;
      last_port = dest.port;
      const host_value value(dest);
      last_host_text.clear();
      detail::wire_writer w(last_host_text, value.size());
      value.put(w);
    }
    return *last_origin;
  }

  void init_tls() {
    tls_ready = true;
    tls.emplace(ssl::context::tls_client);
    boost::system::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (opts.tls_ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(opts.tls_ca_file, ec);
    }
    if (!ec && !opts.tls_client_cert_file.empty()) {
      tls->use_certificate_chain_file(opts.tls_client_cert_file, ec);
      if (!ec) tls->use_private_key_file(opts.tls_client_key_file, ssl::context::pem, ec);
    }
    if (ec) tls_error = ec.message();
    tls->set_verify_mode(opts.tls_verify_peer ? ssl::verify_peer : ssl::verify_none, ec);
  }

  // A pooled connection whose peer has not closed it, if any.
  std::optional<pooled> take(const std::string& origin) {
    auto it = idle.find(origin);
    if (it == idle.end()) return std::nullopt;
    return take_from(it->second);
  }

  std::optional<pooled> take_from(std::deque<pooled>& queue) {
    pooled p;
    if (!take_into(queue, p)) return std::nullopt;
    return p;
  }

  // Moves the newest usable idle connection of `queue` into `out` (one move: the fast
  // path takes it straight into its op); false when there is none. Expired ones, and
  // ones the peer closed, are dropped (closed) on the way.
  // `now`: the caller's clock reading, if it has one.
  bool take_into(std::deque<pooled>& queue, pooled& out,
                 mono_time now = std::chrono::steady_clock::now()) {
    while (!queue.empty()) {
      pooled& p = queue.back();
      bool usable = now - p.idle_since <= opts.idle_timeout;
      if (usable && now - p.idle_since >= probe_after_idle) {
        const int fd = static_cast<int>(p.socket().native_handle());
        char probe;
        auto n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        // 0: closed by the peer; an error other than "nothing yet"; bytes: not reusable.
        usable = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
      if (usable) out = std::move(p);
      queue.pop_back();
      if (usable) return true;
    }
    return false;
  }

  void give_back(const std::string& origin, pooled p) { give_back_to(idle[origin], std::move(p)); }

  void give_back_to(std::deque<pooled>& q, pooled&& p) {
    if (q.size() >= opts.max_idle_per_origin) return;
    p.idle_since = std::chrono::steady_clock::now();
    q.push_back(std::move(p));
  }

  asio::awaitable<result<pooled>> connect(const url& dest, mono_time due) {
    auto remaining = [&] {
      return std::max(nanoseconds(0), std::chrono::duration_cast<nanoseconds>(
                                          due - std::chrono::steady_clock::now()));
    };
    auto [rec, endpoints] =
        co_await resolver.async_resolve(dest.host, std::to_string(dest.port), use_tuple);
    if (rec) {
      co_return error(errc::unavailable,
                      fmt::format("cannot resolve {}: {}", dest.host, rec.message()));
    }
    auto tcp_s = std::make_unique<plain_stream>(context);
    auto watch = std::make_shared<detail::lazy_deadline>(context.get_executor());
    watch->on_expire([sock = &tcp_s->socket()] {
      boost::system::error_code ec;
      sock->close(ec);
    });
    watch->expires_after(std::min(remaining(), opts.connect_timeout));
    auto [cec, ep] = co_await tcp_s->async_connect(endpoints, use_tuple);
    if (cec || watch->expired()) {
      watch->shutdown();
      if (watch->expired()) {
        co_return error(errc::deadline_exceeded,
                        fmt::format("connecting to {} timed out", dest.origin()));
      }
      co_return error(errc::unavailable,
                      fmt::format("cannot connect to {}: {}", dest.origin(), cec.message()));
    }
    boost::system::error_code ignored;
    tcp_s->socket().set_option(tcp::no_delay(true), ignored);
    // Non-blocking for the direct reads and writes (detail/direct_io.h); async
    // operations do not depend on it.
    tcp_s->socket().non_blocking(true, cec);
    if (cec) {
      watch->shutdown();
      co_return error(errc::unavailable,
                      fmt::format("cannot connect to {}: {}", dest.origin(), cec.message()));
    }
    watch->expires_never();
    if (dest.scheme != "https") {
      pooled conn{std::move(tcp_s), std::move(watch)};
      conn.one_thread = detail::runs_on_one_thread(conn.socket());
      co_return conn;
    }

    if (!tls_ready) init_tls();
    if (!tls_error.empty()) {
      watch->shutdown();
      co_return error(errc::unavailable, "TLS configuration: " + tls_error);
    }
    pooled conn{std::make_unique<tls_stream>(std::move(*tcp_s), *tls), std::move(watch)};
    auto& s = std::get<std::unique_ptr<tls_stream>>(conn.stream);
    // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to.
    if (SSL_ctrl(s->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(dest.host.c_str())) != 1) {
      co_return error(errc::unavailable, "TLS: cannot set SNI host name");
    }
    if (opts.tls_verify_peer) {
      s->set_verify_callback(ssl::host_name_verification(dest.host));
    }
    conn.deadline->expires_at(due);
    auto [hec] = co_await s->async_handshake(ssl::stream_base::client, use_tuple);
    if (conn.deadline->expired()) {
      co_return error(errc::deadline_exceeded,
                      fmt::format("TLS handshake with {} timed out", dest.origin()));
    }
    if (hec) {
      co_return error(errc::unavailable, fmt::format("TLS handshake with {} failed: {}",
                                                     dest.origin(), hec.message()));
    }
    conn.deadline->expires_never();
    co_return conn;
  }

  // One request on `conn`. `out` is the Beast form of `req` (built for TLS
  // and streamed bodies only); plain connections write `req` directly.
  template <class Stream>
  asio::awaitable<result<response>> exchange(Stream& stream, pooled& conn, const request& req,
                                             std::string_view target, const url& dest,
                                             bhttp::request<bhttp::string_body>& out,
                                             const std::shared_ptr<body_stream>& upload,
                                             mono_time deadline, bool& reusable, bool& sent,
                                             const std::string& origin) {
    auto& watch = *conn.deadline;
    watch.expires_at(deadline);
    const bool head_request = req.method == "HEAD";
    if (upload) {
      // The request body streams from `upload`; the deadline covers all of it.
      bhttp::request<bhttp::buffer_body> m{bhttp::request_header<>(out.base())};
      if (auto len = upload->content_length()) {
        m.content_length(*len);
      } else {
        m.chunked(true);
      }
      auto pumped = co_await detail::pump_body(stream, m, *upload, [] {});
      if (pumped.end == detail::pump_result::kind::source_cut) {
        boost::system::error_code ignored;
        conn.socket().close(ignored);  // the upstream sees a cut body, never a short clean one
        co_return error(errc::upstream_error, "the request body was cut: " + pumped.why);
      }
      if (pumped.end == detail::pump_result::kind::sink_failed) {
        if (watch.expired())
          co_return error(errc::deadline_exceeded, "request timed out while sending");
        co_return error(errc::unavailable,
                        fmt::format("sending the request failed: {}", pumped.ec.message()));
      }
    } else if constexpr (std::is_same_v<Stream, plain_stream>) {
      // Plain TCP: the whole request goes out now when the kernel takes it (no posted
      // completion); only a remainder waits for writability.
      boost::system::error_code wec;
      write_request(conn.wire, req, target, host_value(dest), opts.user_agent);
      std::size_t written = detail::write_now(stream.socket(), conn.wire, wec);
      if (!wec && written < conn.wire.size()) {
        auto [rest_ec, rest] = co_await asio::async_write(
            stream, asio::buffer(conn.wire.data() + written, conn.wire.size() - written),
            use_tuple);
        wec = rest_ec;
      }
      if (conn.wire.capacity() > 64 * 1024) std::string().swap(conn.wire);
      if (wec) {
        if (watch.expired())
          co_return error(errc::deadline_exceeded, "request timed out while sending");
        co_return error(errc::unavailable,
                        fmt::format("sending the request failed: {}", wec.message()));
      }
    } else {
      auto [wec, written] = co_await bhttp::async_write(stream, out, use_tuple);
      if (wec) {
        if (watch.expired())
          co_return error(errc::deadline_exceeded, "request timed out while sending");
        co_return error(errc::unavailable,
                        fmt::format("sending the request failed: {}", wec.message()));
      }
    }
    auto& buffer = conn.buffer;
    buffer.clear();
    detail::message_parser<false> parser;  // fills a `response` (detail/message_parser.h)
    parser.header_limit(static_cast<std::uint32_t>(opts.response_header_limit));
    const bool may_stream = opts.stream_response_threshold > 0 && !head_request;
    // With streaming the body limit is decided once the head is in.
    if (may_stream) {
      parser.body_limit(boost::none);
    } else {
      parser.body_limit(opts.response_body_limit);
    }
    if (head_request) parser.skip(true);
    // The first read emptied the socket and nothing waited since (detail/direct_io.h):
    // once the response is whole, the next request's read need not try the socket first.
    bool drained = false;
    if constexpr (std::is_same_v<Stream, plain_stream>) {
      // Plain TCP: one read of up to 16 KiB when the answer arrives, parsed in place; Beast's
      // reads below only continue a head or body that did not fit.
      sent = true;
      auto rec = co_await detail::read_some_now(stream.socket(), buffer, response_read_bytes,
                                                conn.one_thread, drained);
      if (!rec) rec = detail::parse_buffered(parser, buffer);
      end_at_eof(parser, rec);
      if (rec) {
        if (watch.expired())
          co_return error(errc::deadline_exceeded, "request timed out waiting for the response");
        co_return error(errc::upstream_error,
                        fmt::format("reading the response failed: {}", rec.message()));
      }
    }
    if (may_stream) {
      sent = true;
      boost::system::error_code hec;
      if (!parser.is_header_done()) {
        drained = false;
        auto [read_ec, hread] =
            co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
        hec = read_ec;
      }
      if (hec) {
        if (watch.expired())
          co_return error(errc::deadline_exceeded, "request timed out waiting for the response");
        co_return error(errc::upstream_error,
                        fmt::format("reading the response failed: {}", hec.message()));
      }
      const auto len = parser.content_length();
      if (!parser.is_done()) {
        if (parser.chunked() || !len || *len > opts.stream_response_threshold) {
          // The body streams: the call's deadline ends here, reads get an idle limit.
          watch.expires_never();
          response r;
          r.status = parser.get().status;
          r.headers = std::move(parser.get().headers);
          beast::flat_buffer body_buffer = std::move(buffer);  // before `conn` moves
          auto holder = std::make_shared<pooled>(std::move(conn));
          using download_stream = detail::parser_body_stream<false, Stream>;
          auto body =
              std::make_shared<download_stream>(stream, holder, std::move(body_buffer),
                                                std::move(parser), opts.stream_idle_timeout, 0);
          body->on_end = [weak = weak_from_this(), holder, origin](bool can_reuse) {
            auto self = weak.lock();
            if (self && can_reuse) self->give_back(origin, std::move(*holder));
          };
          r.stream = std::move(body);
          reusable = false;  // the body owns the connection now
          co_return r;
        }
        if (len && *len > opts.response_body_limit) {
          co_return error(errc::upstream_error,
                          fmt::format("the response body ({} bytes) exceeds the {} byte limit",
                                      *len, opts.response_body_limit));
        }
      }
    }
    parser.body_limit(opts.response_body_limit);
    sent = true;
    boost::system::error_code rec = detail::parse_buffered(parser, buffer);
    if constexpr (std::is_same_v<Stream, plain_stream>) {
      if (!rec && drained && parser.is_done()) detail::message_drained_socket(stream.socket());
    }
    if (!rec && !parser.is_done()) {
      auto [read_ec, read] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      rec = read_ec;
    }
    if (rec) {
      if (watch.expired())
        co_return error(errc::deadline_exceeded, "request timed out waiting for the response");
      co_return error(errc::upstream_error,
                      fmt::format("reading the response failed: {}", rec.message()));
    }
    // basic_parser's keep_alive: the version and Connection, and false for a body
    // delimited by the end of the connection.
    reusable = parser.keep_alive() && buffer.size() == 0;
    response r = std::move(parser.get());
    if (buffer.capacity() > max_kept_buffer_bytes) buffer = beast::flat_buffer();
    watch.expires_never();
    co_return r;
  }

  asio::awaitable<void> run_and_report(url dest, request req, nanoseconds timeout, callback done,
                                       int first_attempt = 0) {
    auto self = shared_from_this();
    auto r = co_await run(std::move(dest), req, &req.body, timeout, first_attempt);
    done(std::move(r));
  }

  // The borrowing form's: `req` stays valid while `to` is held (client::send's contract).
  asio::awaitable<void> run_and_answer(url dest, const request& req, nanoseconds timeout,
                                       std::shared_ptr<receiver> to, int first_attempt = 0) {
    auto self = shared_from_this();
    auto r = co_await run(std::move(dest), req, nullptr, timeout, first_attempt);
    to->on_response(std::move(r));
  }

  // `first_attempt` 1: the fast path's try on a pooled connection was the first.
  // `movable_body`: req's body when the caller owns req (TLS then moves it into
  // Beast's message instead of copying it).
  asio::awaitable<result<response>> run(url dest, const request& req, std::string* movable_body,
                                        nanoseconds timeout, int first_attempt = 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto origin = dest.origin();
    const std::string_view target = req.target.empty() ? dest.target : req.target;
    if (req.method == "TRACE" && !req.body.empty()) {  // Beast's serializer throws on it
      co_return error(errc::invalid_argument, "a TRACE request cannot have a body");
    }
    // Plain connections with a buffered body write `req` as it is (write_request);
    // TLS and streamed bodies go through Beast's serializer.
    bhttp::request<bhttp::string_body> out;
    if (dest.scheme == "https" || req.stream) {
      auto verb = bhttp::string_to_verb(req.method);
      if (verb == bhttp::verb::unknown)
        out.method_string(req.method);
      else
        out.method(verb);
      out.target(target);
      out.version(11);
      for (const auto& f : req.headers) {
        if (replaced_field(f.name)) continue;
        out.insert(f.name, f.value);
      }
      const host_value value(dest);
      std::string host;
      detail::wire_writer w(host, value.size());
      value.put(w);
      out.set(bhttp::field::host, host);
      if (!req.headers.contains("User-Agent")) out.set(bhttp::field::user_agent, opts.user_agent);
      out.keep_alive(true);
      if (!req.stream) {
        // exchange() reads req's body only for plain connections.
        if (movable_body != nullptr) {
          out.body() = std::move(*movable_body);
        } else {
          out.body() = req.body;
        }
        out.prepare_payload();
      }
    }

    // A pooled connection can still have been closed by the peer an instant ago;
    // idempotent requests then get one more try on a fresh connection.
    for (int attempt = first_attempt; attempt < 2; ++attempt) {
      auto reused = take(origin);
      pooled conn;
      if (reused) {
        conn = std::move(*reused);
      } else {
        auto fresh = co_await connect(dest, deadline);
        if (!fresh) co_return std::move(fresh).error();
        conn = std::move(*fresh);
      }
      bool reusable = false;
      bool sent = false;
      auto res = co_await std::visit(
          [&](auto& s) {
            return exchange(*s, conn, req, target, dest, out, req.stream, deadline, reusable, sent,
                            origin);
          },
          conn.stream);
      if (res) {
        if (reusable) give_back(origin, std::move(conn));
        co_return res;
      }
      // Stale: a reused connection that failed before the request was written, or, for an
      // idempotent request, before a response arrived.
      bool stale = reused && res.error().code != errc::deadline_exceeded &&
                   (!sent || idempotent(req.method)) && !(req.stream && req.stream->started());
      if (!stale) co_return res;
      logger.debug("pooled connection to {} was stale; retrying once", origin);
    }
    co_return error(errc::unavailable, fmt::format("cannot reach {}", origin));
  }

  // ---- The fast path: a plain connection from the pool and a buffered request body,
  // on the client's own thread. The same steps as run() and exchange() for a plain
  // connection, driven by completion handlers instead of coroutines: no co_spawn,
  // coroutine frames or awaitable machinery per request. Anything else (no pooled
  // connection, TLS, a streamed request body, another thread) takes run(); so does
  // the one retry after a stale pooled connection.
  // (No copy of the destination URL: the request is written before start_fast
  // returns, and the one retry rebuilds it from `origin` and the request's target.)
  struct fast_op {
    std::shared_ptr<impl> self;
    const request* req = nullptr;  // `owned`, or the borrowing send()'s (valid while `to` is held)
    std::string_view target;       // req's, or the destination's when req's is empty
    request owned;                 // the request of a send() with a callback
    const std::string* origin = nullptr;  // a key of `idle`
    std::deque<pooled>* queue = nullptr;  // its idle connections
    mono_time deadline{};
    callback done;                 // either this
    std::shared_ptr<receiver> to;  // or this is answered
    pooled conn;
    detail::message_parser<false> parser;
    bool may_stream = false;
    bool head_request = false;
    bool drained = false;  // as read_some_now's
    bool sent = false;     // the request was written
  };
  using fast_ptr = std::unique_ptr<fast_op>;

  // The fast path's op for `req` to `dest` with a pooled connection in it, or null
  // when the call cannot take the fast path (nothing taken from the arguments).
  fast_ptr fast_op_for(const url& dest, const request& req, nanoseconds timeout) {
    if (std::string_view(dest.scheme) != "http" || req.stream ||
        (std::string_view(req.method) == "TRACE" && !req.body.empty()) ||
        !context.get_executor().running_in_this_thread()) {
      return nullptr;
    }
    const std::string& origin = origin_key(dest);
    if (last_queue->empty()) return nullptr;
    fast_ptr op;
    if (spare_ops.empty()) {
      op = std::make_unique<fast_op>();
    } else {
      op = std::move(spare_ops.back());
      spare_ops.pop_back();
    }
    const mono_time now = std::chrono::steady_clock::now();  // one read for both
    if (!take_into(*last_queue, op->conn, now)) {
      spare_ops.push_back(std::move(op));
      return nullptr;
    }
    op->self = shared_from_this();
    op->origin = &origin;
    op->queue = last_queue;
    op->deadline = now + timeout;
    return op;
  }

  // Starts the call on the fast path, or returns false with nothing taken from the
  // arguments.
  bool start_fast(const url& dest, request& req, nanoseconds timeout, callback& done) {
    auto op = fast_op_for(dest, req, timeout);
    if (!op) return false;
    op->owned = std::move(req);
    if (op->owned.target.empty()) op->owned.target = dest.target;
    op->req = &op->owned;
    op->target = op->owned.target;
    op->done = std::move(done);
    fast_write(std::move(op));
    return true;
  }

  // The borrowing form's (see client::send).
  bool start_fast(const url& dest, const request& req, nanoseconds timeout,
                  std::shared_ptr<receiver>& to) {
    auto op = fast_op_for(dest, req, timeout);
    if (!op) return false;
    op->req = &req;
    if (req.target.empty()) {
      // `dest` is the caller's only until this returns; the one retry needs the target.
      op->owned.target = dest.target;
      op->target = op->owned.target;
    } else {
      op->target = req.target;
    }
    op->to = std::move(to);
    fast_write(std::move(op));
    return true;
  }

  // Keeps `op` as a spare for a next fast call (an allocation fewer per call), as a
  // new one: nothing of this call is left in it.
  static void recycle(fast_ptr op) {
    auto self = std::move(op->self);  // (a spare must not hold its client)
    if (self->spare_ops.size() >= max_spare_ops) return;
    op->conn = pooled();  // closes a connection not given back
    if (op->req == &op->owned) {
      op->owned = request();
    } else {
      op->owned.target.clear();
    }
    op->req = nullptr;
    op->target = {};
    op->done = nullptr;
    op->to.reset();
    std::destroy_at(&op->parser);
    std::construct_at(&op->parser);
    op->may_stream = false;
    op->head_request = false;
    op->drained = false;
    op->sent = false;
    self->spare_ops.push_back(std::move(op));
  }

  // Answers the op's caller (after the op is gone: what it borrowed goes with `to`).
  static void answer(fast_ptr op, result<response>&& r) {
    auto done = std::move(op->done);
    auto to = std::move(op->to);
    recycle(std::move(op));
    if (to) {
      to->on_response(std::move(r));
    } else {
      done(std::move(r));
    }
  }

  static plain_stream& plain_of(fast_op& op) {
    return *std::get<std::unique_ptr<plain_stream>>(op.conn.stream);
  }

  // Writes the request at once (into the connection's buffer, then the socket).
  // REQUIRES: right after fast_op_for(), whose origin is the client's last one.
  static void fast_write(fast_ptr op) {
    auto& conn = op->conn;
    conn.deadline->expires_at(op->deadline);
    // (The Host text of the last origin: the call's.)
    write_request(conn.wire, *op->req, op->target, host_text{op->self->last_host_text},
                  op->self->opts.user_agent);
    boost::system::error_code ec;
    auto& sock = plain_of(*op).socket();
    const std::size_t written = detail::write_now(sock, conn.wire, ec);
    if (!ec && written < conn.wire.size()) {
      const auto rest = asio::buffer(conn.wire.data() + written, conn.wire.size() - written);
      asio::async_write(sock, rest,
                        [op = std::move(op)](boost::system::error_code wec, std::size_t) mutable {
                          fast_written(std::move(op), wec);
                        });
      return;
    }
    fast_written(std::move(op), ec);
  }

  static void fast_written(fast_ptr op, boost::system::error_code ec) {
    auto& conn = op->conn;
    if (conn.wire.capacity() > 64 * 1024) std::string().swap(conn.wire);
    if (ec) {
      const bool late = conn.deadline->expired();
      fast_fail(std::move(op),
                late ? error(errc::deadline_exceeded, "request timed out while sending")
                     : error(errc::unavailable,
                             fmt::format("sending the request failed: {}", ec.message())));
      return;
    }
    op->sent = true;
    const auto& opts = op->self->opts;
    const bool head_request = std::string_view(op->req->method) == "HEAD";
    op->head_request = head_request;
    auto& parser = op->parser;
    conn.buffer.clear();
    parser.header_limit(static_cast<std::uint32_t>(opts.response_header_limit));
    op->may_stream = opts.stream_response_threshold > 0 && !head_request;
    if (op->may_stream) {
      parser.body_limit(boost::none);
    } else {
      parser.body_limit(opts.response_body_limit);
    }
    if (head_request) parser.skip(true);
    // One read of up to 16 KiB when the answer arrives, as read_some_now() does.
    auto& sock = plain_of(*op).socket();
    if (conn.one_thread) {
      if (bool* flag = detail::read_speculation_flag(sock); flag != nullptr && *flag) {
        const std::size_t n = sock.read_some(conn.buffer.prepare(response_read_bytes), ec);
        if (!ec) {
          conn.buffer.commit(n);
          op->drained = n < response_read_bytes;
          fast_first_read(std::move(op), ec);
          return;
        }
        if (!detail::would_block(ec)) {
          fast_first_read(std::move(op), ec);
          return;
        }
        *flag = false;  // nothing there now: whatever comes brings a readiness event
      }
    }
    const auto room = conn.buffer.prepare(response_read_bytes);
    sock.async_read_some(
        room, [op = std::move(op)](boost::system::error_code rec, std::size_t n) mutable {
          if (!rec) {
            op->conn.buffer.commit(n);
            op->drained = op->conn.one_thread && n < response_read_bytes;
          }
          fast_first_read(std::move(op), rec);
        });
  }

  static error read_failure(fast_op& op, const boost::system::error_code& ec) {
    if (op.conn.deadline->expired())
      return error(errc::deadline_exceeded, "request timed out waiting for the response");
    return error(errc::upstream_error,
                 fmt::format("reading the response failed: {}", ec.message()));
  }

  static void fast_first_read(fast_ptr op, boost::system::error_code ec) {
    auto& parser = op->parser;
    if (!ec && !op->head_request) {
      // The usual answer, whole in this read, is taken without Beast's parser (see
      // detail/simple_response.h; anything else it leaves to Beast, below).
      const auto& opts = op->self->opts;
      const detail::simple_response_limits limits{
          opts.response_header_limit, opts.response_body_limit,
          op->may_stream ? opts.stream_response_threshold : 0};
      auto& buffer = op->conn.buffer;
      const auto data = buffer.data();
      bool keep_alive = false;
      if (detail::parse_simple_response(
              std::string_view(static_cast<const char*>(data.data()), data.size()), limits,
              parser.get(), keep_alive)) {
        buffer.consume(data.size());
        if (op->drained) detail::message_drained_socket(plain_of(*op).socket());
        fast_done(std::move(op), keep_alive);
        return;
      }
    }
    if (!ec) ec = detail::parse_buffered(parser, op->conn.buffer);
    end_at_eof(parser, ec);
    if (ec) {
      auto why = read_failure(*op, ec);
      fast_fail(std::move(op), std::move(why));
      return;
    }
    if (op->may_stream && !parser.is_header_done()) {
      op->drained = false;
      // (References first: the handler's capture moves `op` before the call.)
      auto& stream = plain_of(*op);
      auto& buffer = op->conn.buffer;
      bhttp::async_read_header(
          stream, buffer, parser,
          [op = std::move(op)](boost::system::error_code hec, std::size_t) mutable {
            if (hec) {
              auto why = read_failure(*op, hec);
              fast_fail(std::move(op), std::move(why));
              return;
            }
            fast_after_header(std::move(op));
          });
      return;
    }
    fast_after_header(std::move(op));
  }

  static void fast_after_header(fast_ptr op) {
    auto& parser = op->parser;
    const auto& opts = op->self->opts;
    if (op->may_stream && !parser.is_done()) {
      const auto len = parser.content_length();
      if (parser.chunked() || !len || *len > opts.stream_response_threshold) {
        // The body streams (as in exchange()): the call's deadline ends here.
        auto& conn = op->conn;
        conn.deadline->expires_never();
        response r;
        r.status = parser.get().status;
        r.headers = std::move(parser.get().headers);
        beast::flat_buffer body_buffer = std::move(conn.buffer);
        auto& stream = plain_of(*op);  // on the heap: stays put when `conn` moves
        auto holder = std::make_shared<pooled>(std::move(conn));
        using download_stream = detail::parser_body_stream<false, plain_stream>;
        auto body = std::make_shared<download_stream>(
            stream, holder, std::move(body_buffer), std::move(parser), opts.stream_idle_timeout, 0);
        body->on_end = [weak = op->self->weak_from_this(), holder,
                        origin = *op->origin](bool can_reuse) {
          auto self = weak.lock();
          if (self && can_reuse) self->give_back(origin, std::move(*holder));
        };
        r.stream = std::move(body);
        answer(std::move(op), std::move(r));
        return;
      }
      if (len && *len > opts.response_body_limit) {
        fast_fail(std::move(op),
                  error(errc::upstream_error,
                        fmt::format("the response body ({} bytes) exceeds the {} byte limit", *len,
                                    opts.response_body_limit)));
        return;
      }
    }
    parser.body_limit(opts.response_body_limit);
    auto ec = detail::parse_buffered(parser, op->conn.buffer);
    if (!ec && op->drained && parser.is_done()) {
      detail::message_drained_socket(plain_of(*op).socket());
    }
    if (!ec && !parser.is_done()) {
      auto& stream = plain_of(*op);
      auto& buffer = op->conn.buffer;
      bhttp::async_read(stream, buffer, parser,
                        [op = std::move(op)](boost::system::error_code rec, std::size_t) mutable {
                          if (rec) {
                            auto why = read_failure(*op, rec);
                            fast_fail(std::move(op), std::move(why));
                            return;
                          }
                          const bool keep_alive = op->parser.keep_alive();
                          fast_done(std::move(op), keep_alive);
                        });
      return;
    }
    if (ec) {
      auto why = read_failure(*op, ec);
      fast_fail(std::move(op), std::move(why));
      return;
    }
    const bool keep_alive = parser.keep_alive();
    fast_done(std::move(op), keep_alive);
  }

  // `keep_alive`: basic_parser's (the version and Connection, and false for a body
  // delimited by the end of the connection), or the simple parse's.
  static void fast_done(fast_ptr op, bool keep_alive) {
    auto& conn = op->conn;
    const bool reusable = keep_alive && conn.buffer.size() == 0;
    if (conn.buffer.capacity() > max_kept_buffer_bytes) conn.buffer = beast::flat_buffer();
    conn.deadline->expires_never();
    response r = std::move(op->parser.get());
    if (reusable) op->self->give_back_to(*op->queue, std::move(conn));
    answer(std::move(op), std::move(r));
  }

  // As run(): a pooled connection that failed before the request was written, or,
  // for an idempotent request, before a response arrived, was stale: the call gets
  // one more try, through run(), on another connection.
  static void fast_fail(fast_ptr op, error e) {
    const bool stale =
        e.code != errc::deadline_exceeded && (!op->sent || idempotent(op->req->method));
    if (!stale) {
      answer(std::move(op), std::move(e));
      return;
    }
    logger.debug("pooled connection to {} was stale; retrying once", *op->origin);
    op->conn = pooled();  // closes it
    auto self = std::move(op->self);
    const auto left = std::max(
        nanoseconds(0),
        std::chrono::duration_cast<nanoseconds>(op->deadline - std::chrono::steady_clock::now()));
    // The destination again, from the pool's key ("http://host:port") and the target.
    auto dest = url::parse(*op->origin);
    if (!dest) {
      answer(std::move(op), std::move(dest).error());
      return;
    }
    dest->target = op->target;
    auto log_exception = [](std::exception_ptr ep) {
      if (ep) logger.error("HTTP client coroutine ended by an exception");
    };
    if (op->to) {
      // run() sends the borrowed request again (`to` keeps it).
      const request& req = *op->req;
      asio::co_spawn(self->context,
                     self->run_and_answer(std::move(*dest), req, left, std::move(op->to), 1),
                     log_exception);
      return;
    }
    asio::co_spawn(
        self->context,
        self->run_and_report(std::move(*dest), std::move(op->owned), left, std::move(op->done), 1),
        log_exception);
  }
};

client::client(asio::io_context& context, client_options opts)
    : impl_(std::make_shared<impl>(context, std::move(opts))) {}

client::~client() = default;

void client::send(const url& destination, request&& req, nanoseconds timeout, callback done) {
  auto self = impl_;
  if (self->start_fast(destination, req, timeout, done)) return;
  asio::co_spawn(self->context,
                 self->run_and_report(destination, std::move(req), timeout, std::move(done)),
                 [](std::exception_ptr ep) {
                   if (ep) logger.error("HTTP client coroutine ended by an exception");
                 });
}

void client::send(const url& destination, const request& req, nanoseconds timeout,
                  std::shared_ptr<receiver> to) {
  auto self = impl_;
  if (self->start_fast(destination, req, timeout, to)) return;
  asio::co_spawn(self->context, self->run_and_answer(destination, req, timeout, std::move(to)),
                 [](std::exception_ptr ep) {
                   if (ep) logger.error("HTTP client coroutine ended by an exception");
                 });
}

std::size_t client::idle_connections() const {
  std::size_t n = 0;
  for (const auto& [origin, q] : impl_->idle) n += q.size();
  return n;
}

}  // namespace outrider::http
