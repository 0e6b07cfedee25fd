// subscription: what the app subscribes to, from `GET /dapr/subscribe`
// (programmatic, Dapr's JSON) or the `subscriptions:` YAML section
// (declarative), validated and compiled once at start-up.
//
// JSON (Dapr v1.0): an array of
//   {"pubsubname", "topic", "route"} or {..., "routes": {"rules": [{"match", "path"}],
//   "default"}}, optional "deadLetterTopic" and "metadata" (a map whose values
//   may be strings, numbers, booleans or JSON-stringified strings; the whole
//   map may also arrive as a JSON-stringified object).
// YAML: the same keys under `subscriptions:` (a list), errors with file:line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "config/node.h"
#include "sidecar/routing.h"

namespace outrider::sidecar {

struct route_rule {
  std::string match;
  std::string path;
};

struct subscription {
  std::string pubsub_name;
  std::string topic;
  std::string route;  // "route", or routes.default
  std::vector<route_rule> rules;
  std::string dead_letter_topic;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool raw_payload = false;           // metadata rawPayload
  std::string kind = "programmatic";  // or "declarative"
  routing_table routes;               // compiled from route + rules
};

// Parses the app's /dapr/subscribe answer. Errors: invalid_argument naming the
// entry index and what is wrong (bad JSON, missing topic, a rejected routing
// expression, no route at all).
result<std::vector<subscription>> parse_subscriptions_json(std::string_view body);

// Parses the `subscriptions:` YAML section. Errors: config_invalid with
// FILE:LINE:COL and the key (node::fail).
result<std::vector<subscription>> parse_subscriptions_yaml(const config::node& section);

// Checks and compiles one subscription (route paths get a leading '/').
// Errors: invalid_argument.
status compile(subscription& s);

}  // namespace outrider::sidecar
