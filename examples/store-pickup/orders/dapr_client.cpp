#include "dapr_client.h"

#include <httplib.h>

namespace store_pickup {

dapr_client::dapr_client(std::uint16_t port, std::string pubsub, std::string api_token)
    : port_(port), pubsub_(std::move(pubsub)), api_token_(std::move(api_token)) {}

call_result dapr_client::send(const std::string& method, const std::string& path,
                              const std::string& body, const trace_context& trace) const {
  // One short-lived client per call: httplib clients are not shared between threads.
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  // The payment call may spend several seconds in the sidecar's retries.
  client.set_read_timeout(std::chrono::seconds(60));
  httplib::Headers headers;
  if (!trace.traceparent.empty()) headers.emplace("traceparent", trace.traceparent);
  if (!trace.tracestate.empty()) headers.emplace("tracestate", trace.tracestate);
  if (!api_token_.empty()) headers.emplace("dapr-api-token", api_token_);
  httplib::Result r = method == "DELETE" ? client.Delete(path, headers)
                                         : client.Post(path, headers, body, "application/json");
  call_result out;
  if (!r) {
    out.body = "sidecar unreachable: " + httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.message_id = r->get_header_value("outrider-message-id");
  return out;
}

call_result dapr_client::invoke(const std::string& app, const std::string& method,
                                const std::string& json, const trace_context& trace) const {
  return send("POST", "/v1.0/invoke/" + app + "/method/" + method, json, trace);
}

call_result dapr_client::publish(const std::string& topic, const std::string& json,
                                 const trace_context& trace,
                                 const std::string& deliver_after) const {
  std::string path = "/v1.0/publish/" + pubsub_ + "/" + topic;
  if (!deliver_after.empty()) path += "?metadata.deliverAfter=" + deliver_after;
  return send("POST", path, json, trace);
}

call_result dapr_client::cancel_scheduled(const std::string& message_id,
                                          const trace_context& trace) const {
  return send("DELETE", "/v1.0-alpha1/outrider/scheduled/" + pubsub_ + "/" + message_id, "", trace);
}

}  // namespace store_pickup
