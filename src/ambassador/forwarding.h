// forwarding: the pure pieces of passing requests on — hop-by-hop header
// removal, the invocation path, the output-binding request and response
// shapes — as functions from values to values (unit-tested without a network).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ambassador/policy.h"
#include "base/result.h"
#include "http/client.h"
#include "http/message.h"

namespace outrider::ambassador {

// Removes the hop-by-hop fields of RFC 9110 §7.6.1 (Connection and the fields
// it names, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade), and Host and
// Content-Length (the client sets both for the next hop), and Expect (this
// hop already answered 100-continue); and the fields named in `also`. One pass
// over the fields to find Connection's names, one to erase.
void strip_hop_by_hop(http::fields& headers, std::initializer_list<std::string_view> also = {});

// The same for a response that http::server writes, except Content-Length,
// Transfer-Encoding and Connection, which the server's writers drop themselves
// (http::serialize_response, the streamed writer: the server owns framing), so a
// usual upstream answer (Content-Length, Connection: keep-alive) needs no erase.
// The fields Connection names still go.
void strip_hop_by_hop_but_framing(http::fields& headers);

// "/v1.0/invoke/{app-id}/method/{path}" (raw target, query kept).
struct invoke_target {
  std::string app_id;         // percent-decoded
  std::string method_target;  // "/" + the path after "method/" and the query, not decoded
};
// Errors: invalid_argument (not that shape, empty app id, bad escape).
result<invoke_target> parse_invoke_target(std::string_view raw_target);

// The body of POST /v1.0/bindings/{name}: {"data": ..., "metadata": {...}, "operation": "..."}.
struct binding_request {
  std::string operation;  // lower case
  std::string data;       // a JSON string value as its text; anything else serialized as JSON
  bool data_is_json = false;
  std::vector<std::pair<std::string, std::string>> metadata;
};
// Errors: invalid_argument naming what is wrong.
result<binding_request> parse_binding_request(std::string_view body);

// The HTTP request the HTTP binding sends: operation → method (get, post,
// put, delete, patch, head, options; "create" = POST as in Dapr), URL =
// binding url + metadata `path`, the binding's default headers, then every
// other metadata item as a header. Errors: invalid_argument (unknown operation).
struct binding_call {
  http::url destination;
  http::request request;
};
result<binding_call> make_binding_call(const http_binding& binding, const binding_request& in);

// Dapr's answer for an output binding: 200 with the upstream body as data and
// its metadata as `metadata.<key>` headers (statusCode, status, and each
// response header); with errorIfNot2XX a non-2xx upstream answer becomes 500
// ERR_INVOKE_OUTPUT_BINDING naming the status (its body stays in the message).
http::response binding_response(const http_binding& binding, http::response upstream);

}  // namespace outrider::ambassador
