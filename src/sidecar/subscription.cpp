#include "sidecar/subscription.h"

#include <boost/json.hpp>

namespace outrider::sidecar {
namespace json = boost::json;
namespace {

std::string normalise_path(std::string p) {
  if (!p.empty() && p.front() != '/') {
    p.insert(p.begin(), '/');
  }
  return p;
}

bool is_true(std::string_view v) {
  return v == "true" || v == "True" || v == "TRUE" || v == "1";
}

// A metadata value as text; a JSON-stringified string ("\"true\"") is unquoted.
std::string metadata_text(const json::value& v) {
  if (v.is_string()) {
    std::string s(v.get_string());
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
      boost::system::error_code ec;
      json::value inner = json::parse(s, ec);
      if (!ec && inner.is_string()) {
        return std::string(inner.get_string());
      }
    }
    return s;
  }
  return json::serialize(v);
}

result<std::string> get_string(const json::object& o, std::string_view key, std::size_t index,
                               bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    if (required) {
      return error(errc::invalid_argument, "subscription " + std::to_string(index) +
                                               ": missing \"" + std::string(key) + "\"");
    }
    return std::string();
  }
  if (!it->value().is_string()) {
    return error(errc::invalid_argument, "subscription " + std::to_string(index) + ": \"" +
                                             std::string(key) + "\" must be a string");
  }
  return std::string(it->value().get_string());
}

}  // namespace

status compile(subscription& s) {
  const std::string where = "subscription to topic '" + s.topic + "'";
  if (s.pubsub_name.empty()) {
    return error(errc::invalid_argument, where + ": pubsubname is empty");
  }
  if (s.topic.empty()) {
    return error(errc::invalid_argument, "subscription on '" + s.pubsub_name + "': topic is empty");
  }
  if (s.route.empty() && s.rules.empty()) {
    return error(errc::invalid_argument, where + ": needs a route or routes.rules");
  }
  s.route = normalise_path(std::move(s.route));
  std::vector<routing_table::rule> rules;
  for (auto& r : s.rules) {
    if (r.path.empty()) {
      return error(errc::invalid_argument, where + ": rule '" + r.match + "' has no path");
    }
    r.path = normalise_path(std::move(r.path));
    auto e = route_expression::parse(r.match);
    if (!e) {
      return error(errc::invalid_argument, where + ": " + e.error().message);
    }
    rules.push_back({std::move(*e), r.path});
  }
  for (const auto& [k, v] : s.metadata) {
    if (k == "rawPayload") {
      s.raw_payload = is_true(v);
    }
  }
  s.routes = routing_table(std::move(rules), s.route);
  return ok_status();
}

result<std::vector<subscription>> parse_subscriptions_json(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) {
    return error(errc::invalid_argument, "/dapr/subscribe answer is not JSON: " + ec.message());
  }
  if (doc.is_null()) {
    return std::vector<subscription>{};
  }
  if (!doc.is_array()) {
    return error(errc::invalid_argument, "/dapr/subscribe answer must be a JSON array");
  }
  std::vector<subscription> out;
  std::size_t index = 0;
  for (const auto& item : doc.get_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) {
      return error(errc::invalid_argument,
                   "subscription " + std::to_string(index) + ": must be a JSON object");
    }
    subscription s;
    auto pubsub = get_string(*o, "pubsubname", index, true);
    if (!pubsub) return pubsub.error();
    auto topic = get_string(*o, "topic", index, true);
    if (!topic) return topic.error();
    auto route = get_string(*o, "route", index, false);
    if (!route) return route.error();
    auto dlt = get_string(*o, "deadLetterTopic", index, false);
    if (!dlt) return dlt.error();
    s.pubsub_name = std::move(*pubsub);
    s.topic = std::move(*topic);
    s.route = std::move(*route);
    s.dead_letter_topic = std::move(*dlt);
    if (auto it = o->find("routes"); it != o->end() && !it->value().is_null()) {
      const auto* routes = it->value().if_object();
      if (routes == nullptr) {
        return error(errc::invalid_argument,
                     "subscription " + std::to_string(index) + ": \"routes\" must be an object");
      }
      auto def = get_string(*routes, "default", index, false);
      if (!def) return def.error();
      if (!def->empty()) s.route = std::move(*def);
      if (auto r = routes->find("rules"); r != routes->end() && !r->value().is_null()) {
        if (!r->value().is_array()) {
          return error(errc::invalid_argument, "subscription " + std::to_string(index) +
                                                   ": \"routes.rules\" must be an array");
        }
        for (const auto& rule : r->value().get_array()) {
          const auto* ro = rule.if_object();
          if (ro == nullptr) {
            return error(errc::invalid_argument,
                         "subscription " + std::to_string(index) + ": each rule must be an object");
          }
          auto match = get_string(*ro, "match", index, false);
          if (!match) return match.error();
          auto path = get_string(*ro, "path", index, true);
          if (!path) return path.error();
          if (match->empty()) {
            s.route = std::move(*path);  // a rule without a match is the default
          } else {
            s.rules.push_back({std::move(*match), std::move(*path)});
          }
        }
      }
    }
    if (auto it = o->find("metadata"); it != o->end() && !it->value().is_null()) {
      json::value meta = it->value();
      if (meta.is_string()) {
        json::value inner = json::parse(meta.get_string(), ec);
        if (ec || !inner.is_object()) {
          return error(errc::invalid_argument, "subscription " + std::to_string(index) +
                                                   ": \"metadata\" string is not a JSON object");
        }
        meta = std::move(inner);
      }
      if (!meta.is_object()) {
        return error(errc::invalid_argument,
                     "subscription " + std::to_string(index) + ": \"metadata\" must be an object");
      }
      for (const auto& kv : meta.get_object()) {
        s.metadata.emplace_back(std::string(kv.key()), metadata_text(kv.value()));
      }
    }
    if (auto st = compile(s); !st) {
      return error(errc::invalid_argument,
                   "subscription " + std::to_string(index) + ": " + st.error().message);
    }
    out.push_back(std::move(s));
    ++index;
  }
  return out;
}

result<std::vector<subscription>> parse_subscriptions_yaml(const config::node& section) {
  if (!section.is_sequence()) {
    return section.fail("expected a list of subscriptions");
  }
  std::vector<subscription> out;
  for (const auto& item : section.items()) {
    if (!item.is_map()) {
      return item.fail("expected a map with pubsubname, topic and route or routes");
    }
    subscription s;
    s.kind = "declarative";
    auto scalar = [](const config::node& n, std::string& target) -> status {
      if (!n.is_scalar()) return n.fail("expected a string");
      target = n.scalar();
      return ok_status();
    };
    for (const auto& [key, value] : item.entries()) {
      if (key == "pubsubname") {
        OUTRIDER_TRY(scalar(value, s.pubsub_name));
      } else if (key == "topic") {
        OUTRIDER_TRY(scalar(value, s.topic));
      } else if (key == "route") {
        OUTRIDER_TRY(scalar(value, s.route));
      } else if (key == "deadLetterTopic") {
        OUTRIDER_TRY(scalar(value, s.dead_letter_topic));
      } else if (key == "metadata") {
        if (!value.is_map()) return value.fail("expected a map of strings");
        for (const auto& [mk, mv] : value.entries()) {
          std::string text;
          OUTRIDER_TRY(scalar(mv, text));
          s.metadata.emplace_back(mk, std::move(text));
        }
      } else if (key == "routes") {
        if (!value.is_map()) return value.fail("expected a map with rules and default");
        for (const auto& [rk, rv] : value.entries()) {
          if (rk == "default") {
            OUTRIDER_TRY(scalar(rv, s.route));
          } else if (rk == "rules") {
            if (!rv.is_sequence()) return rv.fail("expected a list of {match, path}");
            for (const auto& rule : rv.items()) {
              const auto* match = rule.find("match");
              const auto* path = rule.find("path");
              if (!rule.is_map() || match == nullptr || path == nullptr) {
                return rule.fail("expected a map with match and path");
              }
              route_rule r;
              OUTRIDER_TRY(scalar(*match, r.match));
              OUTRIDER_TRY(scalar(*path, r.path));
              if (auto e = route_expression::parse(r.match); !e) {
                return match->fail(e.error().message);
              }
              s.rules.push_back(std::move(r));
            }
          } else {
            return rv.fail("unknown key '" + rk + "' (expected rules or default)");
          }
        }
      } else {
        return value.fail(
            "unknown key '" + key +
            "' (expected pubsubname, topic, route, routes, deadLetterTopic, metadata)");
      }
    }
    if (auto st = compile(s); !st) {
      return item.fail(st.error().message);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace outrider::sidecar
