// simple_request: the server's parse of the usual request without Beast's parser
// (internal to server.cpp).
//
// Most requests a server gets are one shape: "<method> <target> HTTP/1.1", a few plain
// fields, no body or a Content-Length body, all in the buffer already. Beast's
// basic_parser spends ~1,700 instructions on a three-field GET (its field-name table,
// the generic state machine, then moving the parsed message out); this scan takes
// such a request in one pass with the same result as detail::message_parser (method,
// target, version, the fields in order with Beast's trimming, the body;
// keep_alive() as basic_parser's). Anything else, or anything it is not sure of, it
// declines, with nothing consumed: the server then parses with Beast, which applies
// every rule and reports every error (400, 413, 431) as before. Declined: a method
// that is not a token; a target with a byte outside 0x21-0x7E; another version than
// HTTP/1.1; any byte Beast would reject or treat specially in a field (controls, a
// bare LF, an obs-fold, a name that is not a token); two Content-Length fields, or
// one that is not plain digits; Transfer-Encoding, Upgrade, Expect,
// Proxy-Connection, or a Connection other than "keep-alive" or "close"; a head
// that reaches the header limit; a body over the body limit or not all in `data`.
// (The same scan as detail::simple_response's, for the other start line and with
// bytes after the message allowed: a pipelined next request.)
#pragma once

#include <cstdint>
#include <string_view>

#include "http/message.h"

namespace outrider::http::detail {

struct simple_request_limits {
  std::size_t header_limit = 0;  // the head must be shorter (its final CRLF included)
  std::uint64_t body_limit = 0;  // Content-Length at most
};

// Parses the request at the start of `data` into `out` (REQUIRES: a default-built
// request) and sets `keep_alive`; returns the bytes it took (head and body), or 0,
// with `out` as it was, when it declines. Sets method, target, version, headers and
// body (path, query, keep_alive and the peer are the caller's).
std::size_t parse_simple_request(std::string_view data, const simple_request_limits& limits,
                                 request& out, bool& keep_alive);

}  // namespace outrider::http::detail
