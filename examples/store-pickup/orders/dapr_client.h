// dapr_client: the few calls orders makes to its sidecar, over the Dapr v1.0
// HTTP API on 127.0.0.1:$DAPR_HTTP_PORT (and one Outrider extension: cancel a
// scheduled message). The app knows no broker, no payment service address and
// no tracing SDK: it forwards the W3C trace context it was given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace store_pickup {

struct trace_context {
  std::string traceparent;
  std::string tracestate;
};

struct call_result {
  int status = 0;  // HTTP status; 0 when the sidecar could not be reached
  std::string body;
  std::string message_id;  // publish: the `outrider-message-id` header
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

class dapr_client {
 public:
  // `api_token`: DAPR_API_TOKEN, sent as `dapr-api-token` when not empty.
  dapr_client(std::uint16_t port, std::string pubsub, std::string api_token);

  // POST /v1.0/invoke/{app}/method/{method} with a JSON body.
  call_result invoke(const std::string& app, const std::string& method, const std::string& json,
                     const trace_context& trace) const;
  // POST /v1.0/publish/{pubsub}/{topic}; `deliver_after` ("20s", "7d") delays it.
  call_result publish(const std::string& topic, const std::string& json, const trace_context& trace,
                      const std::string& deliver_after = "") const;
  // DELETE /v1.0-alpha1/outrider/scheduled/{pubsub}/{id}: 204 cancelled,
  // 404 gone (delivered or cancelled), 409 already due.
  call_result cancel_scheduled(const std::string& message_id, const trace_context& trace) const;

 private:
  call_result send(const std::string& method, const std::string& path, const std::string& body,
                   const trace_context& trace) const;
  std::uint16_t port_;
  std::string pubsub_;
  std::string api_token_;
};

}  // namespace store_pickup
