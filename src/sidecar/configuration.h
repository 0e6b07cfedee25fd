// configuration: Dapr's configuration API over file and environment stores.
//
//   GET /v1.0/configuration/{store}?key=a&key=b      -> {"a": {"value", "version", "metadata"}}
//   GET /v1.0/configuration/{store}/subscribe?key=a  -> {"id": "<subscription id>"}
//   GET /v1.0/configuration/{store}/{id}/unsubscribe -> {"ok": true}
// (also under /v1.0-alpha1/). When a watched key changes, the app receives
// POST /configuration/{store}/{key} with {"id", "items": {key: item}}.
//
// Stores are declared in the sidecar's YAML:
//   configurationStores:
//     - name: appconfig
//       file: config/app.yaml     # a YAML mapping; nested maps flatten to dotted keys
//     - name: env
//       envPrefix: SHOP_          # variables SHOP_X become key X (read once at start)
// A file store is re-read every `poll_interval`; a key's version counts its
// changes since the sidecar started ("1" at first load). A file that becomes
// unreadable or invalid keeps the last good items (logged once per failure).
//
// Threading: handle_*() from any thread; poll() from the owner's timer
// thread. One mutex guards the items and subscriptions; notifications are
// handed to `notify` outside it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/node.h"
#include "http/message.h"
#include "io/file_system.h"

namespace outrider::sidecar {

struct config_store_spec {
  std::string name;
  std::string file;        // file store: path of a YAML mapping
  std::string env_prefix;  // environment store: variable name prefix
};

// Parses the `configurationStores:` YAML section (errors name file:line:key).
result<std::vector<config_store_spec>> parse_config_stores_yaml(const config::node& n);

// Flattens a YAML mapping into dotted keys with scalar values. Sequences are
// kept as their YAML-to-JSON text. Errors: config_invalid.
result<std::map<std::string, std::string>> flatten_config_yaml(std::string_view text,
                                                               std::string_view file_name);

struct config_item {
  std::string value;
  std::string version;
};

class configuration_stores {
 public:
  // Called with the app path ("/configuration/{store}/{key}") and JSON body of
  // each notification.
  using notifier = std::function<void(std::string path, std::string body)>;
  // `env` returns every environment variable as name=value.
  configuration_stores(std::vector<config_store_spec> specs, io::file_system& fs,
                       std::vector<std::string> env, notifier notify);

  // Loads every store. Errors: config_invalid / not_found naming the file.
  status load();
  // Re-reads file stores and notifies subscribers of changed or removed keys.
  void poll();
  bool empty() const { return stores_.empty(); }

  http::response handle_get(const http::request& req);
  http::response handle_subscribe(const http::request& req);
  http::response handle_unsubscribe(const http::request& req);

 private:
  struct store {
    config_store_spec spec;
    std::map<std::string, config_item> items;
    std::string last_text;  // file content of the last load (skip unchanged)
    bool failing = false;
  };
  struct subscription {
    std::string store;
    std::vector<std::string> keys;  // empty: every key
  };
  result<std::map<std::string, std::string>> read(store& s);
  store* find(std::string_view name);

  io::file_system& fs_;
  std::vector<std::string> env_;
  notifier notify_;
  mutable std::mutex mutex_;
  std::vector<store> stores_;
  std::map<std::string, subscription> subscriptions_;
};

}  // namespace outrider::sidecar
