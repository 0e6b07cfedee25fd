// simple_response: the client's parse of the usual upstream answer without Beast's
// parser (internal to client.cpp).
//
// Most answers an upstream sends are one shape: "HTTP/1.1 <status> <reason>", a few
// plain fields, Content-Length, a body that is all in the first read. Beast's
// basic_parser spends ~700 instructions per field on that (its field-name table
// lookup, the Connection token list, the generic state machine); this scan takes
// such an answer in one pass with the same result as detail::message_parser (the
// status, the fields in order with Beast's trimming, the body; keep_alive() as
// basic_parser's). Anything else, or anything it is not sure of, it declines, with
// nothing consumed: the caller then parses with Beast, which applies every rule and
// reports every error as before. Declined: another version than HTTP/1.1; a status
// outside 200-599, 204 or 304; any byte Beast would reject or treat specially
// (controls, a bare LF, an obs-fold, a field name that is not a token); no
// Content-Length, or two, or one that is not plain digits; Transfer-Encoding,
// Upgrade, Proxy-Connection, or a Connection other than "keep-alive" or "close";
// a head over the header limit, a body over the body limit or the streaming
// threshold; a message not ending exactly at the end of `data` (more to read, or
// bytes after it).
#pragma once

#include <cstdint>
#include <string_view>

#include "http/message.h"

namespace outrider::http::detail {

struct simple_response_limits {
  std::size_t header_limit = 0;        // bytes of the head, its final CRLF included
  std::uint64_t body_limit = 0;        // Content-Length at most
  std::uint64_t stream_threshold = 0;  // when non-zero: Content-Length at most (else it streams)
};

// Parses `data` into `out` (REQUIRES: `out` as a fresh message_parser's: status 200,
// no fields, empty body) and sets `keep_alive`; false, with `out` as it was, when it
// declines.
bool parse_simple_response(std::string_view data, const simple_response_limits& limits,
                           response& out, bool& keep_alive);

}  // namespace outrider::http::detail
