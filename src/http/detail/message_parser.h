// message_parser: Beast's HTTP/1 parser (basic_parser: the grammar, framing,
// limits and the smuggling checks) filling our http::request / http::response
// directly (internal to server.cpp and client.cpp).
//
// Beast's parser<isRequest, Body> keeps the head in a basic_fields (a heap
// element per field) that server.cpp and client.cpp then copied into
// http::fields, and a streamed body needed a second parser (buffer_body)
// converted from the first. Here each field goes straight into the message's
// `fields`, and the same parser carries on with a streamed body: set_window()
// switches it from accumulating `body` to filling a caller's window, as Beast's
// buffer_body does (need_buffer when the window is full).
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>
#include <type_traits>

#include "http/message.h"

namespace outrider::http::detail {
namespace bhttp = boost::beast::http;

template <bool isRequest>
class message_parser final : public bhttp::basic_parser<isRequest> {
 public:
  using message_type = std::conditional_t<isRequest, request, response>;
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;

  message_parser() = default;
  message_parser(message_parser&&) = default;

  // The message read so far (the head once is_header_done()). For a request:
  // method, target, headers, version and body (path, query, keep_alive and the
  // peer are the caller's); for a response: status, headers and body.
  message_type& get() noexcept { return m_; }
  const message_type& get() const noexcept { return m_; }
  unsigned version() const noexcept { return version_; }

  // From now on the body goes into [data, data + size) instead of get().body;
  // with no room left the parser stops with need_buffer.
  void set_window(char* data, std::size_t size) noexcept {
    windowed_ = true;
    window_ = data;
    window_left_ = size;
  }
  // Room left in the window.
  std::size_t window_left() const noexcept { return window_left_; }

 private:
  void on_request_impl(bhttp::verb, string_view method, string_view target, int version,
                       error_code&) override {
    if constexpr (isRequest) {
      m_.method.assign(method.data(), method.size());
      m_.target.assign(target.data(), target.size());
      m_.version = static_cast<unsigned>(version);
    }
    version_ = static_cast<unsigned>(version);
  }

  void on_response_impl(int code, string_view, int version, error_code&) override {
    if constexpr (!isRequest) m_.status = code;
    version_ = static_cast<unsigned>(version);
  }

  void on_field_impl(bhttp::field, string_view name, string_view value, error_code&) override {
    m_.headers.add_parsed(std::string_view(name.data(), name.size()),
                          std::string_view(value.data(), value.size()));
  }

  void on_header_impl(error_code&) override {}

  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override {
    // As Beast's string_body: the whole declared length at once (basic_parser has
    // already held it to the body limit).
    if (!windowed_ && length) {
      if (*length > m_.body.max_size()) {
        ec = bhttp::error::buffer_overflow;
        return;
      }
      m_.body.reserve(static_cast<std::size_t>(*length));
    }
  }

  std::size_t on_body_impl(string_view body, error_code& ec) override {
    return take_body(body, ec);
  }

  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return take_body(body, ec);
  }

  void on_finish_impl(error_code&) override {}

  std::size_t take_body(string_view body, error_code& ec) {
    if (!windowed_) {
      if (body.size() > m_.body.max_size() - m_.body.size()) {
        ec = bhttp::error::buffer_overflow;
        return 0;
      }
      m_.body.append(body.data(), body.size());
      return body.size();
    }
    // As Beast's buffer_body.
    if (window_ == nullptr) {
      ec = bhttp::error::need_buffer;
      return 0;
    }
    const std::size_t n = std::min(body.size(), window_left_);
    if (n > 0) std::memcpy(window_, body.data(), n);
    window_ += n;
    window_left_ -= n;
    if (n < body.size()) ec = bhttp::error::need_buffer;
    return n;
  }

  message_type m_;
  unsigned version_ = 11;
  bool windowed_ = false;
  char* window_ = nullptr;
  std::size_t window_left_ = 0;
};

}  // namespace outrider::http::detail
