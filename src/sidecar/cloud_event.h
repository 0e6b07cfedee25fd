// cloud_event: what a publish request becomes in the backend. Pure functions
// (no I/O), shared by the single and bulk publish handlers.
//
//  - parse_publish_metadata(): the `metadata.*` and `cloudevent.*` query
//    parameters (Dapr's names plus Outrider's delayed-publish extension).
//  - build_message(): the CloudEvents 1.0 envelope Dapr builds (or the
//    passthrough of an application/cloudevents+json body, or the raw payload),
//    as a backends::message with the headers the delivery side reads.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "base/clock.h"
#include "base/id.h"
#include "base/result.h"

namespace outrider::sidecar {

// Message header names (stored with the message in the backend).
inline constexpr std::string_view header_content_type = "content-type";
inline constexpr std::string_view header_traceparent = "traceparent";
inline constexpr std::string_view header_tracestate = "tracestate";
// Unix milliseconds after which the message is dropped instead of delivered (ttlInSeconds).
inline constexpr std::string_view header_expires_at = "outrider-expires-at";
// "true" when the body is the raw payload (metadata.rawPayload), not a CloudEvent.
inline constexpr std::string_view header_raw_payload = "outrider-raw-payload";
// Prefix of every publish metadata entry kept with the message ("metadata.<key>").
inline constexpr std::string_view header_metadata_prefix = "metadata.";

inline constexpr std::string_view cloudevents_content_type = "application/cloudevents+json";
inline constexpr std::string_view default_event_type = "com.dapr.event.sent";
inline constexpr std::string_view cloudevents_spec_version = "1.0";

struct publish_metadata {
  bool raw_payload = false;
  std::optional<nanoseconds> ttl;
  // Set only for a delivery time in the future; a past deliverAt means "now".
  std::optional<wall_time> deliver_at;
  // Every metadata.<key> given (key without the prefix), in order.
  std::vector<std::pair<std::string, std::string>> entries;
  // cloudevent.<attr> overrides (attribute name without the prefix).
  std::vector<std::pair<std::string, std::string>> overrides;
};

// Parses the decoded query pairs of a publish. Keys `metadata.<k>` and
// `metadata.cloudevent.<attr>` / `cloudevent.<attr>`; other keys are ignored.
// Recognised metadata (case-insensitive names):
//   rawPayload (bool), ttlInSeconds (non-negative integer),
//   deliverAt / scheduledSendTime / ScheduledEnqueueTimeUtc (RFC 3339),
//   deliverAfter (duration "90s", "7d").
// Errors: pubsub_request_metadata naming the parameter and the expected form
// (also when more than one delivery time is given).
result<publish_metadata> parse_publish_metadata(
    const std::vector<std::pair<std::string, std::string>>& query, wall_time now);

// As above for metadata given as a map without the "metadata." prefix (bulk entries).
result<publish_metadata> parse_metadata_entries(
    const std::vector<std::pair<std::string, std::string>>& entries, wall_time now);

struct envelope_input {
  std::string app_id;
  std::string pubsub_name;
  std::string topic;
  std::string content_type;  // of the request body ("" means text/plain)
  std::string body;
  std::string traceparent;  // from the request headers, may be empty
  std::string tracestate;
  id128 message_id;  // the backend message id (also the CloudEvent id unless given)
  wall_time now;
};

// in.message_id's text (id128::to_chars).
using message_id_text = std::array<char, id128::text_size>;

// Builds the message for the backend. Errors: pubsub_cloud_events_ser when an
// application/cloudevents+json body is not a JSON object. `id_text` not null:
// the message id's text goes there too (computed once for the CloudEvent and
// the caller, e.g. the PRODUCER span's messaging.message.id).
result<backends::message> build_message(const envelope_input& in, const publish_metadata& meta,
                                        message_id_text* id_text = nullptr);
// The same from an input that is not needed afterwards: its trace context
// strings become the message's headers and a raw payload's body becomes the
// message's body, moved instead of copied (no allocation for them).
result<backends::message> build_message(envelope_input&& in, const publish_metadata& meta,
                                        message_id_text* id_text = nullptr);

// True for application/json, text/json and any "+json" media type.
bool is_json_content_type(std::string_view content_type);

}  // namespace outrider::sidecar
