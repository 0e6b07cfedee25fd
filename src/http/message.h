// HTTP messages as plain values: what handlers see and return. No Beast or Asio
// here (compilation firewall); server.cpp and client.cpp convert.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace outrider::http {

class body_stream;  // http/body_stream.h

// Header fields in arrival order; names compare case-insensitively.
class fields {
 public:
  struct field {
    field() = default;
    field(std::string_view n, std::string_view v) : name(n), value(v) {}
    std::string name;
    std::string value;
  };

  // First value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  // Replaces every `name` field by one with `value`.
  void set(std::string_view name, std::string_view value);
  // Writes `text` over the field value that `value` views (a whole value of
  // this object, as get() or iteration gives it out), in place: a value
  // rewritten with one of the same size, as the SERVER span's traceparent over
  // the caller's. False, changing nothing, when `value` is no field's whole
  // value here or the sizes differ. `text` holds no CR or LF.
  bool overwrite_value(std::string_view value, std::string_view text) noexcept;
  // Appends a field (duplicates allowed).
  void add(std::string_view name, std::string_view value);
  // Appends a field a parser read: HTTP's grammar leaves no CR or LF in a field
  // line (Beast's parser and the detail/simple_* scans). While every field came
  // this way, parsed_only() holds and serialize_response() skips its CR/LF check.
  void add_parsed(std::string_view name, std::string_view value);
  // No field was added or set but by add_parsed(): none holds a CR or an LF.
  bool parsed_only() const noexcept { return parsed_only_; }
  void erase(std::string_view name);
  // Erases every field for which pred(field) is true, in one pass.
  template <class Pred>
  void erase_if(Pred pred) {
    std::erase_if(items_, pred);
  }

  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }

 private:
  std::vector<field> items_;
  bool parsed_only_ = true;
};

// ASCII case-insensitive equality. Inline, and 8 bytes at a time while they are
// equal byte for byte (header names usually arrive as the code spells them).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) break;
  }
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  for (; i < n; ++i) {
    if (a[i] != b[i] && lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Path parameters captured by the router ({name} segments, {*name} tails), percent-decoded.
class path_params {
 public:
  std::optional<std::string_view> get(std::string_view name) const;
  // REQUIRES: the route declares `name` (a missing one is a routing bug).
  std::string_view at(std::string_view name) const;
  void add(std::string name, std::string value) {
    items_.emplace_back(std::move(name), std::move(value));
  }
  void clear() { items_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct request {
  std::string method;  // upper case, as sent ("GET", "POST", ...)
  std::string target;  // raw request-target ("/v1.0/publish/p/t?metadata.x=1")
  std::string path;    // target up to '?', not decoded
  std::string query;   // after '?', not decoded ("" if none)
  fields headers;
  std::string body;
  // Set instead of `body` when the body is streamed (see http/body_stream.h).
  std::shared_ptr<body_stream> stream;
  unsigned version = 11;  // 10 or 11
  bool keep_alive = true;
  std::string remote_address;  // "ip:port" of the peer
  path_params params;          // set by the router

  // Value of query parameter `name` (first occurrence, decoded).
  std::optional<std::string> query_param(std::string_view name) const;
};

struct response {
  int status = 200;
  fields headers;
  std::string body;
  // Set instead of `body` to stream the body (see http/body_stream.h).
  std::shared_ptr<body_stream> stream;

  // A response with `body` and Content-Type.
  static response with_body(int status, std::string body, std::string_view content_type);
  static response json(int status, std::string body) {
    return with_body(status, std::move(body), "application/json");
  }
  static response no_content() { return response{204, {}, {}}; }
  // The catalog's status and {"errorCode": NAME, "message": ...}; adds
  // Retry-After for retryable codes when `retry_after_seconds` is given.
  static response from_error(const error& e, std::optional<int> retry_after_seconds = std::nullopt);
};

// Splits a raw target into path and query.
void split_target(std::string_view target, std::string& path, std::string& query);

// Percent-decodes `text` ('+' stays '+' unless `plus_as_space`). Errors on a
// malformed escape (invalid_argument).
result<std::string> percent_decode(std::string_view text, bool plus_as_space = false);

// Parses an application/x-www-form-urlencoded style query into decoded pairs,
// in order. Malformed escapes are errors.
result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

// Appends the HTTP/1.x wire form of `r` to `out`: status line, headers,
// Content-Length (never for 1xx/204/304, whose body is dropped), Connection
// when it differs from the version's default, `Server` unless `r` sets one,
// then the body unless `head_request`. Content-Length, Transfer-Encoding and
// Connection fields of `r` are ignored (the server owns framing), and a field
// whose name or value holds CR or LF is dropped (no response splitting).
void serialize_response(std::string& out, const response& r, unsigned version, bool keep_alive,
                        bool head_request, std::string_view server_header);

// Canonical reason phrase for a status code ("Not Found"); "" if unknown.
std::string_view reason_phrase(int status) noexcept;

}  // namespace outrider::http
