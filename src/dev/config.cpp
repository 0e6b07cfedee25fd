#include "dev/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <set>

#include "config/settings.h"
#include "dev/child.h"

namespace outrider::dev {
namespace {

namespace fs = std::filesystem;

// Fails on keys of `n` (a map) that are not in `known`.
status check_keys(const config::node& n, const std::vector<std::string>& known) {
  for (const auto& [key, child] : n.entries()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string best = config::closest_match(key, known);
    return child.fail(best.empty()
                          ? fmt::format("unknown key (expected one of: {})", fmt::join(known, ", "))
                          : fmt::format("unknown key (did you mean '{}'?)", best));
  }
  return {};
}

result<std::string> scalar(const config::node& n) {
  if (!n.is_scalar()) return n.fail("expected a single value");
  return n.scalar();
}

template <class T>
status value(const config::node& n, T& out) {
  if (!n.is_scalar()) return n.fail("expected a single value");
  if (auto s = config::parse_value(n.scalar(), out); !s) return n.fail(s.error().message);
  return {};
}

// "text" (run by /bin/sh -c) or [argv...].
status command_value(const config::node& n, std::vector<std::string>& out) {
  out.clear();
  if (n.is_scalar()) {
    if (n.scalar().empty()) return n.fail("expected a command");
    out = {"/bin/sh", "-c", n.scalar()};
    return {};
  }
  if (!n.is_sequence() || n.items().empty())
    return n.fail("expected a command: a string or a non-empty list of arguments");
  for (const auto& item : n.items()) {
    if (!item.is_scalar()) return item.fail("expected a string argument");
    out.push_back(item.scalar());
  }
  if (out.front().empty()) return n.fail("the program name is empty");
  return {};
}

std::string resolve_path(std::string_view base_dir, const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::path(base_dir) / path;
  return path.lexically_normal().string();
}

status directory_value(const config::node& n, std::string_view base_dir, std::string& out) {
  OUTRIDER_TRY(value(n, out));
  out = resolve_path(base_dir, out);
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return n.fail(fmt::format("no such directory: {}", out));
  return {};
}

bool valid_id(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

// A program given by name must be on PATH (a path may come from the build step).
status check_program(const config::node& n, const std::vector<std::string>& argv) {
  if (auto found = find_program(argv.front()); !found) return n.fail(found.error().message);
  return {};
}

status parse_app(const config::node& n, std::string_view base_dir, app_config& app) {
  if (!n.is_map()) return n.fail("expected an app: a map with at least 'id' and 'command'");
  OUTRIDER_TRY(check_keys(n, {"id", "command", "workdir", "port", "env", "healthPath", "resources",
                              "build", "sidecarArgs", "public", "open", "restart"}));
  app.where = n.where();
  app.workdir = std::string(base_dir);
  const config::node* id = n.find("id");
  if (id == nullptr) return n.fail("missing key 'id'");
  OUTRIDER_TRY(value(*id, app.id));
  if (!valid_id(app.id)) return id->fail("expected letters, digits, '-', '_' or '.'");
  const config::node* command = n.find("command");
  if (command == nullptr) return n.fail("missing key 'command'");
  OUTRIDER_TRY(command_value(*command, app.command));
  OUTRIDER_TRY(check_program(*command, app.command));
  if (const auto* w = n.find("workdir")) OUTRIDER_TRY(directory_value(*w, base_dir, app.workdir));
  if (const auto* p = n.find("port")) OUTRIDER_TRY(value(*p, app.port));
  if (const auto* e = n.find("env")) {
    if (!e->is_map() && !e->is_null()) return e->fail("expected a map of NAME: value");
    for (const auto& [key, v] : e->entries()) {
      if (!v.is_scalar() && !v.is_null()) return v.fail("expected a single value");
      app.env.emplace_back(key, v.scalar());
    }
  }
  if (const auto* h = n.find("healthPath")) {
    OUTRIDER_TRY(value(*h, app.health_path));
    if (app.health_path.empty() || app.health_path.front() != '/')
      return h->fail("expected a path starting with '/'");
  }
  if (const auto* r = n.find("resources"))
    OUTRIDER_TRY(directory_value(*r, base_dir, app.resources));
  if (const auto* b = n.find("build")) OUTRIDER_TRY(command_value(*b, app.build));
  if (const auto* a = n.find("sidecarArgs")) {
    if (!a->is_sequence()) return a->fail("expected a list of arguments");
    for (const auto& item : a->items()) {
      if (!item.is_scalar()) return item.fail("expected a string argument");
      app.sidecar_args.push_back(item.scalar());
    }
  }
  if (const auto* p = n.find("public")) OUTRIDER_TRY(value(*p, app.is_public));
  if (const auto* o = n.find("open")) OUTRIDER_TRY(value(*o, app.open));
  if (const auto* r = n.find("restart")) {
    const auto text = scalar(*r);
    if (!text) return text.error();
    if (*text == "on-failure")
      app.restart = restart_policy::on_failure;
    else if (*text == "always")
      app.restart = restart_policy::always;
    else if (*text == "never" || *text == "no")
      app.restart = restart_policy::never;
    else
      return r->fail("expected on-failure, always or never");
  }
  return {};
}

status parse_enabled(const config::node& n, bool& enabled) {
  if (const auto* e = n.find("enabled")) OUTRIDER_TRY(value(*e, enabled));
  return {};
}

}  // namespace

result<dev_config> parse_config(const config::node& root, std::string_view file,
                                std::string_view base_dir) {
  dev_config c;
  c.file = std::string(file);
  c.base_dir = std::string(base_dir);
  c.state_dir = resolve_path(base_dir, ".outrider");
  if (!root.is_map()) return root.fail("expected a map with an 'apps' list");
  OUTRIDER_TRY(check_keys(root, {"apps", "broker", "collector", "ui", "restart", "dataDir",
                                 "startTimeout", "stopGrace"}));
  if (const auto* d = root.find("dataDir")) {
    OUTRIDER_TRY(value(*d, c.state_dir));
    c.state_dir = resolve_path(base_dir, c.state_dir);
  }
  if (const auto* t = root.find("startTimeout")) OUTRIDER_TRY(value(*t, c.start_timeout));
  if (const auto* t = root.find("stopGrace")) OUTRIDER_TRY(value(*t, c.stop_grace));

  const config::node* apps = root.find("apps");
  if (apps == nullptr) return root.fail("missing key 'apps' (the list of apps to run)");
  if (!apps->is_sequence() || apps->items().empty())
    return apps->fail("expected a non-empty list of apps");
  std::set<std::string> ids;
  std::set<std::uint16_t> ports;
  for (const auto& item : apps->items()) {
    app_config app;
    OUTRIDER_TRY(parse_app(item, base_dir, app));
    if (!ids.insert(app.id).second)
      return item.find("id")->fail(fmt::format("app id '{}' is used twice", app.id));
    if (app.port != 0 && !ports.insert(app.port).second)
      return item.find("port")->fail(fmt::format("port {} is used twice", app.port));
    c.apps.push_back(std::move(app));
  }

  if (const auto* b = root.find("broker")) {
    if (!b->is_map()) return b->fail("expected a map");
    OUTRIDER_TRY(check_keys(*b, {"enabled", "port", "dataDir"}));
    OUTRIDER_TRY(parse_enabled(*b, c.broker.enabled));
    if (const auto* p = b->find("port")) OUTRIDER_TRY(value(*p, c.broker.port));
    if (const auto* d = b->find("dataDir")) {
      OUTRIDER_TRY(value(*d, c.broker.data_dir));
      c.broker.data_dir = resolve_path(base_dir, c.broker.data_dir);
    }
  }
  if (const auto* col = root.find("collector")) {
    if (!col->is_map()) return col->fail("expected a map");
    OUTRIDER_TRY(check_keys(*col, {"enabled", "otlpPort", "queryPort", "dataDir"}));
    OUTRIDER_TRY(parse_enabled(*col, c.collector.enabled));
    if (const auto* p = col->find("otlpPort")) OUTRIDER_TRY(value(*p, c.collector.otlp_port));
    if (const auto* p = col->find("queryPort")) OUTRIDER_TRY(value(*p, c.collector.query_port));
    if (const auto* d = col->find("dataDir")) {
      OUTRIDER_TRY(value(*d, c.collector.data_dir));
      c.collector.data_dir = resolve_path(base_dir, c.collector.data_dir);
    }
  }
  if (const auto* ui = root.find("ui")) {
    if (!ui->is_map()) return ui->fail("expected a map");
    OUTRIDER_TRY(check_keys(*ui, {"status", "color", "refresh", "summaryInterval", "statusPort"}));
    if (const auto* s = ui->find("status")) {
      const auto text = scalar(*s);
      if (!text) return text.error();
      if (*text == "auto")
        c.ui.status = ui_config::view::automatic;
      else if (*text == "block")
        c.ui.status = ui_config::view::block;
      else if (*text == "line")
        c.ui.status = ui_config::view::line;
      else if (*text == "off")
        c.ui.status = ui_config::view::off;
      else
        return s->fail("expected auto, block, line or off");
    }
    if (const auto* s = ui->find("color")) {
      const auto text = scalar(*s);
      if (!text) return text.error();
      if (*text == "auto")
        c.ui.color = ui_config::colour::automatic;
      else if (*text == "always")
        c.ui.color = ui_config::colour::always;
      else if (*text == "never")
        c.ui.color = ui_config::colour::never;
      else
        return s->fail("expected auto, always or never");
    }
    if (const auto* r = ui->find("refresh")) OUTRIDER_TRY(value(*r, c.ui.refresh));
    if (const auto* r = ui->find("summaryInterval")) OUTRIDER_TRY(value(*r, c.ui.summary_interval));
    if (const auto* p = ui->find("statusPort")) OUTRIDER_TRY(value(*p, c.ui.status_port));
  }
  if (const auto* r = root.find("restart")) {
    if (!r->is_map()) return r->fail("expected a map");
    OUTRIDER_TRY(check_keys(*r, {"initialDelay", "maxDelay", "multiplier", "resetAfter"}));
    if (const auto* v = r->find("initialDelay")) OUTRIDER_TRY(value(*v, c.restart.initial_delay));
    if (const auto* v = r->find("maxDelay")) OUTRIDER_TRY(value(*v, c.restart.max_delay));
    if (const auto* v = r->find("multiplier")) {
      OUTRIDER_TRY(value(*v, c.restart.multiplier));
      if (c.restart.multiplier < 1.0) return v->fail("expected a number of at least 1");
    }
    if (const auto* v = r->find("resetAfter")) OUTRIDER_TRY(value(*v, c.restart.reset_after));
    if (c.restart.max_delay < c.restart.initial_delay)
      return r->fail("maxDelay is shorter than initialDelay");
  }
  return c;
}

result<dev_config> load_config(const std::string& path) {
  auto doc = config::load_yaml_file(path);
  if (!doc) return std::move(doc).error();
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  if (ec) return error(errc::io_error, fmt::format("cannot resolve {}: {}", path, ec.message()));
  return parse_config(*doc, path, absolute.parent_path().lexically_normal().string());
}

}  // namespace outrider::dev
