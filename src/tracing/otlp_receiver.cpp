#include "tracing/otlp_receiver.h"

#include "base/json_text.h"
#include "tracing/codec.h"

namespace outrider::tracing {
namespace {

constexpr std::string_view protobuf_type = "application/x-protobuf";
constexpr std::string_view json_type = "application/json";
constexpr int http_ok = 200;
constexpr int http_bad_request = 400;
constexpr int http_payload_too_large = 413;
constexpr int http_unsupported_media_type = 415;

bool has_media_type(std::string_view content_type, std::string_view type) {
  const auto semicolon = content_type.find(';');
  std::string_view media = content_type.substr(0, semicolon);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  return http::iequals(media, type);
}

// google.rpc.Status as OTLP/JSON (the protobuf form is answered as JSON too:
// SDKs only log the message).
http::response failure(int status, std::string_view message) {
  std::string body = "{\"code\":3,\"message\":";
  append_json_string(body, message);
  body += '}';
  return http::response::with_body(status, std::move(body), json_type);
}

}  // namespace

http::response receive_otlp_traces(http::request&& req, span_sink& sink,
                                   std::size_t max_decompressed_bytes) {
  const auto content_type = req.headers.get("content-type").value_or("");
  const bool is_json = has_media_type(content_type, json_type);
  if (!is_json && !has_media_type(content_type, protobuf_type)) {
    return failure(http_unsupported_media_type,
                   "Content-Type must be application/x-protobuf or application/json");
  }
  std::string body = std::move(req.body);
  if (auto encoding = req.headers.get("content-encoding");
      encoding && !encoding->empty() && !http::iequals(*encoding, "identity")) {
    if (!http::iequals(*encoding, "gzip") && !http::iequals(*encoding, "deflate")) {
      return failure(http_unsupported_media_type,
                     "unsupported Content-Encoding " + std::string(*encoding));
    }
    auto inflated = gunzip(body, max_decompressed_bytes);
    if (!inflated) {
      return failure(
          inflated.error().code == errc::body_too_large ? http_payload_too_large : http_bad_request,
          inflated.error().message);
    }
    body = std::move(*inflated);
  }
  auto decoded = is_json ? decode_otlp_json(body) : decode_otlp_protobuf(body);
  if (!decoded) return failure(http_bad_request, decoded.error().message);
  for (auto& s : decoded->spans) sink.export_span(std::move(s));
  const auto rejected = decoded->rejected;
  return is_json ? http::response::with_body(
                       http_ok, encode_otlp_response_json(rejected, decoded->rejection_message),
                       json_type)
                 : http::response::with_body(
                       http_ok, encode_otlp_response_protobuf(rejected, decoded->rejection_message),
                       protobuf_type);
}

}  // namespace outrider::tracing
