#include "http/message.h"

#include <algorithm>
#include <charconv>
#include <fmt/core.h>

#include "base/assert.h"
#include "base/json_text.h"
#include "http/detail/wire.h"

namespace outrider::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t initial_field_capacity = 8;

}  // namespace

std::optional<std::string_view> fields::get(std::string_view name) const {
  for (const auto& f : items_) {
    if (iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

void fields::set(std::string_view name, std::string_view value) {
  parsed_only_ = false;
  // The first field of that name takes the value in place (its storage is
  // reused: no allocation when the value fits, as a traceparent rewritten per
  // request does); later ones go.
  const auto first = std::find_if(items_.begin(), items_.end(),
                                  [&](const field& f) { return iequals(f.name, name); });
  if (first == items_.end()) {
    add(name, value);
    return;
  }
  first->value.assign(value);
  const auto rest = std::remove_if(std::next(first), items_.end(),
                                   [&](const field& f) { return iequals(f.name, name); });
  items_.erase(rest, items_.end());
}

bool fields::overwrite_value(std::string_view value, std::string_view text) noexcept {
  OUTRIDER_DEBUG_ASSERT(text.find_first_of("\r\n") == std::string_view::npos,
                        "a field value with a CR or LF");
  if (value.size() != text.size()) return false;
  for (auto& f : items_) {
    if (f.value.data() == value.data() && f.value.size() == value.size()) {
      std::copy(text.begin(), text.end(), f.value.begin());
      return true;
    }
  }
  return false;
}

void fields::add(std::string_view name, std::string_view value) {
  parsed_only_ = false;
  add_parsed(name, value);
}

void fields::add_parsed(std::string_view name, std::string_view value) {
  // Room for a usual message's fields at once, not 1, 2, 4, 8 (a reallocation
  // and moves each time).
  if (items_.empty()) items_.reserve(initial_field_capacity);
  items_.emplace_back(name, value);  // built in place: no temporary field to move
}

void fields::erase(std::string_view name) {
  std::erase_if(items_, [&](const field& f) { return iequals(f.name, name); });
}

std::optional<std::string_view> path_params::get(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view path_params::at(std::string_view name) const {
  auto v = get(name);
  OUTRIDER_ASSERT(v.has_value(), "route has no such path parameter");
  return *v;
}

std::optional<std::string> request::query_param(std::string_view name) const {
  auto pairs = parse_query(query);
  if (!pairs) return std::nullopt;
  for (auto& [k, v] : *pairs) {
    if (k == name) return std::move(v);
  }
  return std::nullopt;
}

response response::with_body(int status, std::string body, std::string_view content_type) {
  response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.set("Content-Type", content_type);
  return r;
}

response response::from_error(const error& e, std::optional<int> retry_after_seconds) {
  const auto& info = e.info();
  std::string body = "{\"errorCode\":";
  append_json_string(body, info.name);
  body += ",\"message\":";
  append_json_string(body, e.message);
  body += '}';
  auto r = json(info.http_status, std::move(body));
  if (info.retryable && retry_after_seconds) {
    r.headers.set("Retry-After", std::to_string(*retry_after_seconds));
  }
  return r;
}

void split_target(std::string_view target, std::string& path, std::string& query) {
  auto q = target.find('?');
  if (q == std::string_view::npos) {
    path.assign(target);
    query.clear();
  } else {
    path.assign(target.substr(0, q));
    query.assign(target.substr(q + 1));
  }
}

result<std::string> percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return error(errc::invalid_argument, fmt::format("malformed percent-escape in '{}'", text));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq), true);
    if (!key) return std::move(key).error();
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = percent_decode(part.substr(eq + 1), true);
      if (!v) return std::move(v).error();
      value = std::move(*v);
    }
    out.emplace_back(std::move(*key), std::move(value));
  }
  return out;
}

void serialize_response(std::string& out, const response& r, unsigned version, bool keep_alive,
                        bool head_request, std::string_view server_header) {
  // Two passes over the fields: the first decides which are written and counts the
  // bytes, the second copies into the string grown once (detail/wire.h).
  auto is = [](std::string_view name, std::string_view what) {
    return name.size() == what.size() && iequals(name, what);
  };
  const bool no_body = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  char status_text[12];
  const std::string_view status(
      status_text, static_cast<std::size_t>(
                       std::to_chars(status_text, status_text + sizeof status_text, r.status).ptr -
                       status_text));
  auto reason = reason_phrase(r.status);
  if (reason.empty()) reason = "Unknown";
  char length_text[20];
  const std::string_view length(
      length_text,
      static_cast<std::size_t>(
          std::to_chars(length_text, length_text + sizeof length_text, r.body.size()).ptr -
          length_text));
  // Fields a parser read hold no CR or LF (fields::add_parsed): no check.
  const bool parsed = r.headers.parsed_only();
  // Fields written: bit i of `kept` for field i (fields past 64 are judged again).
  auto decide = [&](const fields::field& f, bool& server) {
    bool framing = false;
    switch (f.name.size()) {  // one comparison at most
      case 6: server = is(f.name, "Server"); break;
      case 10: framing = is(f.name, "Connection"); break;
      case 14: framing = is(f.name, "Content-Length"); break;
      case 17: framing = is(f.name, "Transfer-Encoding"); break;
      default: break;
    }
    return !framing && !f.name.empty() &&
           (parsed || (!detail::has_crlf(f.name) && !detail::has_crlf(f.value)));
  };
  std::uint64_t kept = 0;
  bool has_server = false;
  std::size_t bytes = 9 + status.size() + 1 + reason.size() + 2;  // "HTTP/1.1 200 OK\r\n"
  std::size_t i = 0;
  for (const auto& f : r.headers) {
    bool server = false;
    if (decide(f, server)) {
      if (i < 64) kept |= std::uint64_t{1} << i;
      has_server = has_server || server;
      bytes += detail::field_bytes(f.name, f.value);
    }
    ++i;
  }
  const bool own_server = !has_server && !server_header.empty();
  if (own_server) bytes += detail::field_bytes("Server", server_header);
  static constexpr std::string_view keep_alive_line = "Connection: keep-alive\r\n";
  static constexpr std::string_view close_line = "Connection: close\r\n";
  std::string_view connection = "";  // (not a null pointer: put() copies it)
  if (version == 10 && keep_alive) connection = keep_alive_line;
  if (version != 10 && !keep_alive) connection = close_line;
  bytes += connection.size();
  if (!no_body) bytes += detail::field_bytes("Content-Length", length);
  bytes += 2;
  const bool with_body = !no_body && !head_request;
  if (with_body) bytes += r.body.size();

  detail::wire_writer w(out, bytes);
  w.put(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  w.put(status);
  w.put(' ');
  w.put(reason);
  w.put("\r\n");
  i = 0;
  for (const auto& f : r.headers) {
    bool server = false;
    if (i < 64 ? (kept >> i) & 1U : decide(f, server)) w.field(f.name, f.value);
    ++i;
  }
  if (own_server) w.field("Server", server_header);
  w.put(connection);
  if (!no_body) w.field("Content-Length", length);
  w.put("\r\n");
  if (with_body) w.put(r.body);
  OUTRIDER_ASSERT(w.full(), "serialize_response counted its bytes wrong");
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "";
  }
}

}  // namespace outrider::http
