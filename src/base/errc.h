// Error codes of every module and the one catalog that maps them to HTTP.
//
// Expected failures are values: functions return result<T> (result.h) whose
// error carries one of these codes plus a human-readable message. The catalog
// below is the single source of truth for
//   - the numeric value (stable, never reused; grouped by module in ranges),
//   - the stable machine-readable name returned to clients as `errorCode`,
//   - the HTTP status a server answers with,
//   - whether a client may retry the same request later (`retryable`),
//   - what the code means and what the caller should do.
// docs/errors.md lists the same rows; a unit test checks they agree.
//
// Adding a code: append a row in its module's range; never renumber.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace outrider {

// X(identifier, value, http_status, "STABLE_NAME", retryable, "meaning")
#define OUTRIDER_ERROR_CATALOG(X)                                                                  \
  /* 1xx: general, any module */                                                                   \
  X(invalid_argument, 100, 400, "ERR_INVALID_ARGUMENT", false,                                     \
    "A value supplied by the caller is malformed or out of range; fix the request.")               \
  X(not_found, 101, 404, "ERR_NOT_FOUND", false, "The named thing does not exist.")                \
  X(already_exists, 102, 409, "ERR_ALREADY_EXISTS", false,                                         \
    "A thing with that name or id exists already.")                                                \
  X(failed_precondition, 103, 409, "ERR_FAILED_PRECONDITION", false,                               \
    "The system is not in a state that allows the operation; change the state first.")             \
  X(resource_exhausted, 104, 429, "ERR_RESOURCE_EXHAUSTED", true,                                  \
    "A configured limit or quota is reached; retry later or raise the limit.")                     \
  X(unavailable, 105, 503, "ERR_UNAVAILABLE", true,                                                \
    "A dependency is unreachable or not ready; retry with backoff.")                               \
  X(deadline_exceeded, 106, 504, "ERR_TIMEOUT", true,                                              \
    "The operation did not finish in time; its outcome may be unknown.")                           \
  X(cancelled, 107, 503, "ERR_CANCELLED", true,                                                    \
    "The operation was cancelled, usually by shutdown.")                                           \
  X(shutting_down, 108, 503, "ERR_SHUTTING_DOWN", true,                                            \
    "The process is shutting down and takes no new work; retry against another instance.")         \
  X(unauthenticated, 109, 401, "ERR_UNAUTHENTICATED", false, "Missing or wrong API token.")        \
  X(internal, 110, 500, "ERR_INTERNAL", false, "A bug or an unexpected condition; see the logs.")  \
  /* 2xx: io and filesystem */                                                                     \
  X(io_error, 200, 500, "ERR_IO", true, "A read, write or sync failed at the operating system.")   \
  X(disk_full, 201, 507, "ERR_DISK_FULL", true,                                                    \
    "No space left on the data disk; nothing was accepted; free space and retry.")                 \
  X(data_corruption, 202, 500, "ERR_DATA_CORRUPTION", false,                                       \
    "Stored data failed its checksum or format check.")                                            \
  /* 3xx: config */                                                                                \
  X(config_invalid, 300, 400, "ERR_CONFIG", false,                                                 \
    "A configuration file, variable or flag is unknown or has a bad value.")                       \
  /* 4xx: http */                                                                                  \
  X(malformed_request, 400, 400, "ERR_MALFORMED_REQUEST", false,                                   \
    "The HTTP request or its body could not be parsed.")                                           \
  X(route_not_found, 401, 404, "ERR_ROUTE_NOT_FOUND", false, "No handler for that path.")          \
  X(method_not_allowed, 402, 405, "ERR_METHOD_NOT_ALLOWED", false,                                 \
    "The path exists but not for that method; see the Allow header.")                              \
  X(header_too_large, 403, 431, "ERR_HEADER_TOO_LARGE", false,                                     \
    "The request line and headers exceed the configured limit.")                                   \
  X(body_too_large, 404, 413, "ERR_BODY_TOO_LARGE", false,                                         \
    "The request body exceeds the configured limit.")                                              \
  X(upstream_error, 405, 502, "ERR_UPSTREAM", true,                                                \
    "An upstream HTTP server answered with a broken response or closed the connection.")           \
  /* 5xx: broker */                                                                                \
  X(queue_not_found, 500, 404, "ERR_QUEUE_NOT_FOUND", false,                                       \
    "No queue with that name; declare it first.")                                                  \
  X(topic_not_found, 501, 404, "ERR_TOPIC_NOT_FOUND", false,                                       \
    "No topic with that name; declare it first.")                                                  \
  X(message_not_found, 502, 404, "ERR_MESSAGE_NOT_FOUND", false,                                   \
    "No pending message with that id (never published, already acknowledged or cancelled).")       \
  X(message_too_large, 503, 413, "ERR_MESSAGE_TOO_LARGE", false,                                   \
    "The message body or headers exceed the configured limit; send less or raise the limit.")      \
  X(delivery_not_found, 504, 409, "ERR_DELIVERY_NOT_FOUND", false,                                 \
    "Unknown delivery tag or its lease expired; the message is or will be redelivered.")           \
  X(message_not_scheduled, 505, 409, "ERR_MESSAGE_NOT_SCHEDULED", false,                           \
    "The message is no longer scheduled (already due or delivered), so it cannot be cancelled.")   \
  X(consumer_not_found, 506, 404, "ERR_CONSUMER_NOT_FOUND", false,                                 \
    "No consumer with that id (never subscribed or already unsubscribed).")                        \
  /* 52x: broker wire protocol */                                                                  \
  X(protocol_error, 520, 400, "ERR_PROTOCOL", false,                                               \
    "A broker protocol frame was malformed, oversized, failed its checksum or came out of order; " \
    "the connection is closed. Fix the client.")                                                   \
  X(protocol_version_unsupported, 521, 400, "ERR_PROTOCOL_VERSION", false,                         \
    "Client and broker share no protocol version; upgrade the older side.")                        \
  /* 6xx: sidecar */                                                                               \
  X(pubsub_not_found, 600, 404, "ERR_PUBSUB_NOT_FOUND", false,                                     \
    "No pub/sub component with that name is configured in this sidecar; fix the name.")            \
  X(pubsub_request_metadata, 601, 400, "ERR_PUBSUB_REQUEST_METADATA", false,                       \
    "A metadata.* query parameter of a publish has a bad value (ttlInSeconds, deliverAt, ...).")   \
  X(pubsub_publish_message, 602, 500, "ERR_PUBSUB_PUBLISH_MESSAGE", true,                          \
    "The backend refused or failed to store the message; nothing was published; retry.")           \
  X(pubsub_events_ser, 603, 400, "ERR_PUBSUB_EVENTS_SER", false,                                   \
    "The bulk publish body is not a JSON array of entries {entryId, event, contentType}.")         \
  X(pubsub_cloud_events_ser, 604, 400, "ERR_PUBSUB_CLOUD_EVENTS_SER", false,                       \
    "An application/cloudevents+json body is not a JSON object with the required attributes.")     \
  X(health_not_ready, 605, 500, "ERR_HEALTH_NOT_READY", true,                                      \
    "The sidecar is not ready: the backend or the app is not healthy yet; retry shortly.")         \
  X(configuration_store_not_found, 630, 400, "ERR_CONFIGURATION_STORE_NOT_FOUND", false,           \
    "The named configuration store is not declared in the sidecar's configurationStores.")         \
  X(configuration_subscription_not_found, 631, 404, "ERR_CONFIGURATION_SUBSCRIPTION_NOT_FOUND",    \
    false, "No configuration subscription with that id on that store.")                            \
  /* 64x: jobs API (/v1.0-alpha1/jobs), Dapr's scheduler error codes */                            \
  X(job_schedule, 640, 500, "DAPR_SCHEDULER_SCHEDULE_JOB", true,                                   \
    "The job could not be stored with the scheduler (the broker is unavailable or refused it).")   \
  X(job_name, 641, 400, "DAPR_SCHEDULER_JOB_NAME", false,                                          \
    "The job name is invalid, or a name was given in the body; set it only in the URL.")           \
  X(job_name_empty, 642, 400, "DAPR_SCHEDULER_JOB_NAME_EMPTY", false, "The job name is empty.")    \
  X(job_get, 643, 500, "DAPR_SCHEDULER_GET_JOB", false,                                            \
    "The job could not be read: no job with that name, or the job table failed.")                  \
  X(job_delete, 644, 500, "DAPR_SCHEDULER_DELETE_JOB", false,                                      \
    "The job could not be deleted: no job with that name, or the job table failed.")               \
  X(job_request_empty, 645, 400, "DAPR_SCHEDULER_EMPTY", false,                                    \
    "A required argument of the job (its body or a field) is empty or malformed.")                 \
  X(job_schedule_empty, 646, 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY", false,                          \
    "The job has neither a schedule nor a dueTime, or one of them does not parse.")                \
  X(job_list, 647, 500, "DAPR_SCHEDULER_LIST_JOBS", false, "The jobs could not be listed.")        \
  /* 7xx: ambassador (invocation, bindings, forward proxy) */                                      \
  X(circuit_open, 700, 503, "ERR_CIRCUIT_OPEN", true,                                              \
    "The target's circuit breaker is open after repeated failures; retry after Retry-After.")      \
  X(invoke_output_binding, 701, 500, "ERR_INVOKE_OUTPUT_BINDING", false,                           \
    "An output binding call failed: unknown binding or operation, a bad request body, or a "       \
    "non-2xx answer from the bound service.")                                                      \
  X(direct_invoke, 702, 500, "ERR_DIRECT_INVOKE", true,                                            \
    "Service invocation could not resolve or reach the target app's sidecar; check the app id "    \
    "and the name resolution (--resolve-file).")                                                   \
  X(proxy_connect_unsupported, 703, 501, "ERR_PROXY_CONNECT_UNSUPPORTED", false,                   \
    "The forward proxy does not tunnel CONNECT (https); call https services through an output "    \
    "binding or an HTTPEndpoint so the sidecar originates TLS.")

enum class errc : std::uint16_t {
#define OUTRIDER_X_ENUM(id, value, status, name, retryable, meaning) id = value,
  OUTRIDER_ERROR_CATALOG(OUTRIDER_X_ENUM)
#undef OUTRIDER_X_ENUM
};

struct error_info {
  errc code;
  std::string_view name;  // stable, e.g. "ERR_NOT_FOUND"
  int http_status;
  bool retryable;
  std::string_view meaning;
};

// The catalog row for `code`. Every errc value has exactly one row.
const error_info& describe(errc code) noexcept;

// All rows, in catalog order (for docs and tests).
std::span<const error_info> error_catalog() noexcept;

}  // namespace outrider
