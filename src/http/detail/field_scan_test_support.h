// Test support for simple_request_test and simple_response_test: Beast's parse of a
// message (the reference both scans are checked against), a message's fields as text,
// and the byte mutations both scans are checked on. Included by tests only.
#pragma once

#include <boost/asio/buffer.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "http/detail/message_parser.h"
#include "http/message.h"

namespace outrider::http::detail::scan_testing {

template <bool IsRequest>
struct beast_result {
  bool ok = false;       // parsed to the message's end with no error
  std::size_t used = 0;  // bytes of `wire` the message took
  std::conditional_t<IsRequest, request, response> message;
  bool keep_alive = false;
};

// What Beast's parser (message_parser, as the server or the client runs it) makes of
// the message at the start of `wire`.
template <bool IsRequest>
beast_result<IsRequest> beast_parse(std::string_view wire, std::size_t header_limit,
                                    std::uint64_t body_limit) {
  beast_result<IsRequest> out;
  message_parser<IsRequest> p;
  p.header_limit(static_cast<std::uint32_t>(header_limit));
  p.body_limit(body_limit);
  boost::system::error_code ec;
  while (out.used < wire.size() && !p.is_done()) {
    const auto n = p.put(boost::asio::buffer(wire.data() + out.used, wire.size() - out.used), ec);
    out.used += n;
    if (ec || n == 0) break;
  }
  out.ok = !ec && p.is_done();
  out.message = std::move(p.get());
  out.keep_alive = p.keep_alive();
  return out;
}

inline std::string fields_of(const fields& f) {
  std::string s;
  for (const auto& one : f) s += one.name + "=[" + one.value + "];";
  return s;
}

// Every byte of each seed replaced by, and preceded by, each byte that matters to the
// grammar, and every prefix of each seed: `taken(wire)` checks a scan on each (and
// says whether the scan took it). Returns how many were taken.
template <class Taken>
int count_taken_mutations(const std::vector<std::string>& seeds, Taken taken) {
  const std::string_view bytes(
      "\0\t\n\r :,\x7f\x80\xff"
      "aA0+-\"",
      16);
  int n = 0;
  for (const auto& seed : seeds) {
    for (std::size_t i = 0; i < seed.size(); ++i) {
      for (char b : bytes) {
        std::string wire = seed;
        wire[i] = b;
        if (taken(std::string_view(wire))) ++n;
        wire.insert(i, 1, b);
        if (taken(std::string_view(wire))) ++n;
      }
      if (taken(std::string_view(seed).substr(0, i))) ++n;
    }
  }
  return n;
}

}  // namespace outrider::http::detail::scan_testing
