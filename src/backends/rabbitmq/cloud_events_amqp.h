// cloud_events_amqp: CloudEvents in AMQP, per the CloudEvents AMQP protocol
// binding 1.0. The sidecar hands the backend structured-mode events (body =
// the event as JSON, content-type application/cloudevents+json); in binary
// mode the backend puts each attribute in an application property
// `cloudEvents:<name>`, `datacontenttype` in the content-type property and
// the event data in the body. Receiving converts binary back to structured
// (both the `cloudEvents:` and the `cloudEvents_` prefix), so apps and the
// sidecar see the same event whichever mode the publisher used.
#pragma once

#include <string>
#include <string_view>

#include "backends/backend.h"

namespace outrider::backends::cloud_events_amqp {

inline constexpr std::string_view structured_content_type = "application/cloudevents+json";
inline constexpr std::string_view attribute_prefix = "cloudEvents:";

// Structured -> binary. Leaves the message unchanged and returns false when it
// is not a structured CloudEvent (content-type) or its body is not a JSON
// object.
bool to_binary(header_list& headers, std::string& body);

// Binary -> structured. Leaves the message unchanged and returns false when
// its headers carry no `cloudEvents:specversion` (or `cloudEvents_specversion`).
bool to_structured(header_list& headers, std::string& body);

}  // namespace outrider::backends::cloud_events_amqp
