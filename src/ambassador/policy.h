// policy: resiliency policies in Dapr's `kind: Resiliency` YAML shape, and the
// resources the ambassador reads from `--resources-path` (HTTP bindings,
// HTTPEndpoints).
//
//   spec:
//     policies:
//       timeouts:        {general: 5s}
//       retries:
//         important: {policy: exponential, initialInterval: 100ms, maxInterval: 5s,
//                     multiplier: 1.5, randomizationFactor: 0.5, maxRetries: 3,
//                     matching: {httpStatusCodes: "429,500-599"},
//                     retryNonIdempotent: false}            # Outrider extension
//         fixed:     {policy: constant, duration: 1s, maxRetries: 5}
//       circuitBreakers:
//         cb: {maxRequests: 1, interval: 10s, timeout: 30s, trip: "consecutiveFailures > 5"}
//       retryBudget: {budgetPercent: 20, minRetryConcurrency: 3}   # Outrider extension
//     targets:
//       apps:       {orders: {timeout: general, retry: important, circuitBreaker: cb}}
//       endpoints:  {"api.example.com": {...}, my-http-endpoint: {...}}
//       components: {payments: {outbound: {...}}}
//
// A timeout is the call's overall deadline: it covers every attempt and the
// backoff between them (Dapr applies it per attempt; see README.md).
// Parsing is pure (config::node in, values out); errors are config_invalid and
// name the file, line and key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/node.h"

namespace outrider::ambassador {

struct status_range {
  int low = 0;
  int high = 0;  // inclusive
};

struct retry_policy {
  enum class kind { constant, exponential };
  kind type = kind::constant;
  nanoseconds duration = std::chrono::seconds(5);                 // constant
  nanoseconds initial_interval = std::chrono::milliseconds(500);  // exponential
  nanoseconds max_interval = std::chrono::seconds(60);
  double multiplier = 1.5;
  double randomization_factor = 0.5;  // jitter: each delay spread by ±factor
  std::int64_t max_retries = -1;      // -1: unlimited (the deadline and the budget still bound)
  // Statuses that count as a failed attempt worth retrying. Empty: 5xx
  // except 501, 505 (Dapr retries every error response; we keep 4xx final).
  std::vector<status_range> retry_on;
  bool retry_non_idempotent = false;  // POST/PATCH/CONNECT are retried only when true

  // The delay before retry number `retry` (1-based); `unit_random` in [0, 1).
  nanoseconds backoff(std::uint32_t retry, double unit_random) const;
  bool retries_status(int status) const;
};

// Trip condition "consecutiveFailures > N" / "totalFailures >= N" (the
// counters of the current interval).
struct trip_condition {
  enum class counter { consecutive_failures, total_failures };
  counter what = counter::consecutive_failures;
  std::uint32_t threshold = 5;  // trips when the counter is > threshold (">=" is stored as >= - 1)
  bool tripped(std::uint32_t consecutive, std::uint32_t total) const;
};

struct breaker_policy {
  std::uint32_t max_requests = 1;              // probes let through while half-open
  nanoseconds interval = nanoseconds::zero();  // closed: counters reset every interval (0: never)
  nanoseconds timeout = std::chrono::seconds(60);  // how long the circuit stays open
  trip_condition trip;
};

struct budget_policy {
  double budget_percent = 20.0;             // retries in flight ≤ this % of active calls...
  std::uint32_t min_retry_concurrency = 3;  // ...but always at least this many
};

// The policies that apply to one target (resolved names).
struct target_policy {
  std::optional<nanoseconds> timeout;
  std::optional<retry_policy> retry;
  std::optional<breaker_policy> breaker;
};

struct resiliency {
  std::map<std::string, nanoseconds> timeouts;
  std::map<std::string, retry_policy> retries;
  std::map<std::string, breaker_policy> breakers;
  budget_policy budget;
  std::map<std::string, target_policy> apps;
  std::map<std::string, target_policy> endpoints;   // HTTPEndpoint names and host[:port]
  std::map<std::string, target_policy> components;  // bindings (outbound)

  // Merges `other` into this (names defined twice are an error).
  status merge(const resiliency& other, const config::node& where);
};

struct http_header {
  std::string name;
  std::string value;
};

// `kind: Component` with `spec.type: bindings.http`.
struct http_binding {
  std::string name;
  std::string url;                   // base URL; metadata `path` is appended
  std::vector<http_header> headers;  // `header.<Name>` metadata items, securityToken(+Header)
  bool error_if_not_2xx = true;
  // TLS (https URLs): CA bundle file, client certificate and key files, verification.
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  bool insecure_skip_verify = false;
};

// `kind: HTTPEndpoint`: a named external service, invocable as an app id.
struct http_endpoint {
  std::string name;
  std::string base_url;
  std::vector<http_header> headers;
};

// Everything read from the resources directories.
struct resources {
  resiliency policies;
  std::vector<http_binding> bindings;
  std::vector<http_endpoint> endpoints;
};

// Parses one `kind: Resiliency` document (the whole document node).
result<resiliency> parse_resiliency(const config::node& doc);
// Adds one YAML document to `out` by its kind (Resiliency, Component with
// type bindings.http, HTTPEndpoint). Other kinds and component types are
// skipped (with `skipped` set to a reason) so one directory can hold
// resources for other tools.
status add_resource(const config::node& doc, resources& out, std::string* skipped = nullptr);
// Reads every *.yaml / *.yml file of `dirs` (sorted by name; a file may hold
// several documents separated by `---`). Errors: not_found (a missing
// directory), config_invalid (with file and line).
result<resources> load_resources(const std::vector<std::string>& dirs);

// Parses "429,500-599" (also a YAML list of numbers or ranges).
result<std::vector<status_range>> parse_status_ranges(const config::node& n);

}  // namespace outrider::ambassador
