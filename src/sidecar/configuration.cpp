#include "sidecar/configuration.h"

#include <algorithm>
#include <boost/json.hpp>
#include <span>

#include "base/id.h"
#include "base/log.h"

namespace outrider::sidecar {
namespace json = boost::json;
namespace {

const log::logger logger{"configuration"};

// YAML scalars and sequences as configuration values: a scalar as its text, a
// sequence or a nested sequence/map inside it as JSON.
json::value to_json(const config::node& n) {
  switch (n.type()) {
    case config::node::kind::null: return nullptr;
    case config::node::kind::scalar: return json::string(n.scalar());
    case config::node::kind::sequence: {
      json::array a;
      for (const auto& i : n.items()) a.push_back(to_json(i));
      return a;
    }
    case config::node::kind::map: {
      json::object o;
      for (const auto& [k, v] : n.entries()) o[k] = to_json(v);
      return o;
    }
  }
  return nullptr;
}

void flatten(const config::node& n, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (n.is_map()) {
    for (const auto& [k, v] : n.entries()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  if (n.is_scalar()) {
    out[prefix] = n.scalar();
  } else if (n.is_null()) {
    out[prefix] = "";
  } else {
    out[prefix] = json::serialize(to_json(n));
  }
}

json::object item_json(const config_item& item) {
  return json::object{
      {"value", item.value}, {"version", item.version}, {"metadata", json::object{}}};
}

http::response config_error(errc code, std::string message) {
  return http::response::from_error(error(code, std::move(message)));
}

// The `key` query parameters of a request (repeated or comma-separated).
result<std::vector<std::string>> requested_keys(const http::request& req) {
  auto pairs = http::parse_query(req.query);
  if (!pairs) return error(errc::malformed_request, "bad query string: " + pairs.error().message);
  std::vector<std::string> keys;
  for (auto& [k, v] : *pairs) {
    if (k != "key") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view one = rest.substr(0, comma);
      if (!one.empty()) keys.emplace_back(one);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return keys;
}

}  // namespace

result<std::vector<config_store_spec>> parse_config_stores_yaml(const config::node& n) {
  if (!n.is_sequence()) return n.fail("must be a list of {name, file | envPrefix}");
  std::vector<config_store_spec> out;
  for (const auto& item : n.items()) {
    if (!item.is_map()) return item.fail("must be a map {name, file | envPrefix}");
    config_store_spec spec;
    for (const auto& [k, v] : item.entries()) {
      if (!v.is_scalar()) return v.fail("must be a string");
      if (k == "name") {
        spec.name = v.scalar();
      } else if (k == "file") {
        spec.file = v.scalar();
      } else if (k == "envPrefix") {
        spec.env_prefix = v.scalar();
      } else {
        return v.fail("unknown key (expected name, file or envPrefix)");
      }
    }
    if (spec.name.empty()) return item.fail("a configuration store needs a name");
    if (spec.file.empty() == spec.env_prefix.empty()) {
      return item.fail("give exactly one of file or envPrefix");
    }
    for (const auto& other : out) {
      if (other.name == spec.name) return item.fail("duplicate store name '" + spec.name + "'");
    }
    out.push_back(std::move(spec));
  }
  return out;
}

result<std::map<std::string, std::string>> flatten_config_yaml(std::string_view text,
                                                               std::string_view file_name) {
  auto doc = config::parse_yaml(text, file_name);
  if (!doc) return doc.error();
  std::map<std::string, std::string> out;
  if (doc->is_null()) return out;
  if (!doc->is_map()) {
    return error(errc::config_invalid,
                 std::string(file_name) + ": a configuration file must be a YAML mapping");
  }
  flatten(*doc, "", out);
  return out;
}

configuration_stores::configuration_stores(std::vector<config_store_spec> specs,
                                           io::file_system& fs, std::vector<std::string> env,
                                           notifier notify)
    : fs_(fs), env_(std::move(env)), notify_(std::move(notify)) {
  for (auto& spec : specs) stores_.push_back(store{std::move(spec), {}, {}, false});
}

configuration_stores::store* configuration_stores::find(std::string_view name) {
  for (auto& s : stores_) {
    if (s.spec.name == name) return &s;
  }
  return nullptr;
}

result<std::map<std::string, std::string>> configuration_stores::read(store& s) {
  std::map<std::string, std::string> values;
  if (!s.spec.env_prefix.empty()) {
    for (const auto& kv : env_) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos ||
          kv.compare(0, s.spec.env_prefix.size(), s.spec.env_prefix) != 0) {
        continue;
      }
      std::string key = kv.substr(s.spec.env_prefix.size(), eq - s.spec.env_prefix.size());
      if (!key.empty()) values[key] = kv.substr(eq + 1);
    }
    return values;
  }
  auto file = fs_.open_for_read(s.spec.file);
  if (!file) return file.error();
  auto size = (*file)->size();
  if (!size) return size.error();
  if (*size > 16U * 1024 * 1024) {
    return error(errc::config_invalid, s.spec.file + ": configuration file larger than 16 MiB");
  }
  std::string text(*size, '\0');
  auto got = (*file)->read_at(0, std::as_writable_bytes(std::span(text.data(), text.size())));
  if (!got) return got.error();
  text.resize(*got);
  if (text == s.last_text && !s.items.empty()) {
    for (const auto& [k, item] : s.items) values[k] = item.value;
    return values;
  }
  auto parsed = flatten_config_yaml(text, s.spec.file);
  if (parsed) s.last_text = std::move(text);
  return parsed;
}

status configuration_stores::load() {
  std::lock_guard lock(mutex_);
  for (auto& s : stores_) {
    auto values = read(s);
    if (!values) {
      return error(values.error().code,
                   "configuration store '" + s.spec.name + "': " + values.error().message);
    }
    for (auto& [k, v] : *values) s.items[k] = config_item{std::move(v), "1"};
  }
  return ok_status();
}

void configuration_stores::poll() {
  std::vector<std::pair<std::string, std::string>> outbox;  // path, body
  {
    std::lock_guard lock(mutex_);
    for (auto& s : stores_) {
      if (s.spec.file.empty()) continue;
      auto values = read(s);
      if (!values) {
        if (!s.failing) {
          logger.warn("configuration store '{}': keeping the last good values: {}", s.spec.name,
                      values.error().message);
        }
        s.failing = true;
        continue;
      }
      if (s.failing) logger.info("configuration store '{}' readable again", s.spec.name);
      s.failing = false;
      std::map<std::string, config_item> changed;
      for (auto& [k, v] : *values) {
        auto it = s.items.find(k);
        if (it == s.items.end()) {
          changed[k] = s.items[k] = config_item{v, "1"};
        } else if (it->second.value != v) {
          it->second.value = v;
          it->second.version = std::to_string(std::stoull(it->second.version) + 1);
          changed[k] = it->second;
        }
      }
      for (auto it = s.items.begin(); it != s.items.end();) {
        if (values->count(it->first) == 0) {
          // A removed key is announced with an empty value and a new version.
          changed[it->first] = config_item{"", std::to_string(std::stoull(it->second.version) + 1)};
          it = s.items.erase(it);
        } else {
          ++it;
        }
      }
      if (changed.empty()) continue;
      logger.info("configuration store '{}': {} key(s) changed", s.spec.name, changed.size());
      for (const auto& [id, sub] : subscriptions_) {
        if (sub.store != s.spec.name) continue;
        for (const auto& [key, item] : changed) {
          if (!sub.keys.empty() &&
              std::find(sub.keys.begin(), sub.keys.end(), key) == sub.keys.end()) {
            continue;
          }
          json::object items;
          items[key] = item_json(item);
          json::object body{{"id", id}, {"items", std::move(items)}};
          outbox.emplace_back("/configuration/" + s.spec.name + "/" + key, json::serialize(body));
        }
      }
    }
  }
  for (auto& [path, body] : outbox) notify_(std::move(path), std::move(body));
}

http::response configuration_stores::handle_get(const http::request& req) {
  const std::string name(req.params.at("store"));
  auto keys = requested_keys(req);
  if (!keys) return http::response::from_error(keys.error());
  std::lock_guard lock(mutex_);
  store* s = find(name);
  if (s == nullptr) {
    return config_error(errc::configuration_store_not_found,
                        "configuration store " + name + " not found");
  }
  json::object out;
  if (keys->empty()) {
    for (const auto& [k, item] : s->items) out[k] = item_json(item);
  } else {
    for (const auto& k : *keys) {
      if (auto it = s->items.find(k); it != s->items.end()) out[k] = item_json(it->second);
    }
  }
  return http::response::json(200, json::serialize(out));
}

http::response configuration_stores::handle_subscribe(const http::request& req) {
  const std::string name(req.params.at("store"));
  auto keys = requested_keys(req);
  if (!keys) return http::response::from_error(keys.error());
  std::lock_guard lock(mutex_);
  if (find(name) == nullptr) {
    return config_error(errc::configuration_store_not_found,
                        "configuration store " + name + " not found");
  }
  std::string id = id128::random().to_string();
  subscriptions_[id] = subscription{name, std::move(*keys)};
  return http::response::json(200, json::serialize(json::object{{"id", id}}));
}

http::response configuration_stores::handle_unsubscribe(const http::request& req) {
  const std::string name(req.params.at("store"));
  const std::string id(req.params.at("id"));
  std::lock_guard lock(mutex_);
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end() || it->second.store != name) {
    return config_error(errc::configuration_subscription_not_found,
                        "no configuration subscription " + id + " on store " + name);
  }
  subscriptions_.erase(it);
  return http::response::json(200, R"({"ok":true,"message":""})");
}

}  // namespace outrider::sidecar
