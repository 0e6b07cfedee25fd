#include "dev/runner.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "base/json_text.h"
#include "broker_client/client.h"
#include "dev/backoff.h"
#include "dev/child.h"
#include "dev/console.h"
#include "dev/ports.h"
#include "dev/status.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "io/runtime.h"

namespace outrider::dev {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto tick = 50ms;                  // main loop: signals, exits, restarts
constexpr auto probe_interval = 1s;          // sidecar health
constexpr auto queue_interval = 2s;          // broker queue depths
constexpr auto probe_timeout = 2s;           // one health request
constexpr auto status_request_timeout = 5s;  // `outrider dev status`
const std::string runner_source = "dev";

// Sidecar flags other parts add over time: passed only when `outrider sidecar --help` lists them.
struct sidecar_features {
  bool resolve_file = false;
  bool resources_path = false;
  bool trace_endpoint = false;
  bool app_otlp_port = false;
};

sidecar_features probe_sidecar_features(const std::string& binary) {
  sidecar_features f;
  std::string quoted = "'";
  for (char c : binary) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  std::FILE* p = ::popen((quoted + " sidecar --help 2>&1").c_str(), "r");
  if (p == nullptr) return f;
  std::string help;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) help.append(buf, n);
  ::pclose(p);
  f.resolve_file = help.find("--resolve-file") != std::string::npos;
  f.resources_path = help.find("--resources-path") != std::string::npos;
  f.trace_endpoint = help.find("--trace-endpoint") != std::string::npos;
  f.app_otlp_port = help.find("--app-otlp-port") != std::string::npos;
  return f;
}

std::string seconds_text(nanoseconds d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

// The pid in a dev.json whose runner still runs, else 0.
int running_runner_pid(const std::string& dev_file) {
  std::ifstream in(dev_file);
  if (!in) return 0;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const auto doc = json::parse(text.str(), ec);
  if (ec || !doc.is_object()) return 0;
  const auto* pid = doc.as_object().if_contains("pid");
  if (pid == nullptr || !pid->is_int64()) return 0;
  const auto p = static_cast<pid_t>(pid->as_int64());
  return p > 0 && p != ::getpid() && ::kill(p, 0) == 0 ? p : 0;
}

enum class role { broker, collector, sidecar, app };

// One supervised process (restarted as its policy says).
struct proc {
  std::string name;
  role kind = role::app;
  std::size_t app = 0;  // index into apps (sidecar, app)
  child_spec spec;
  restart_policy policy = restart_policy::always;
  restart_backoff backoff;
  std::unique_ptr<child> running;
  steady::time_point started{};
  std::optional<steady::time_point> restart_at;
  std::uint32_t restarts = 0;
  std::optional<int> last_exit;
  bool stopping = false;  // we asked it to stop
  bool ever_started = false;
};

struct app_ports {
  std::uint16_t app = 0;
  std::uint16_t sidecar = 0;
  std::uint16_t metrics = 0;
  std::uint16_t otlp = 0;  // the sidecar's app OTLP receiver (0: not supported)
};

}  // namespace

struct runner::impl {
  dev_config cfg;
  runner_options opts;
  console con;
  sigset_t signals{};
  int stop_signal = 0;   // first SIGINT/SIGTERM
  bool killing = false;  // second signal: no more grace

  port_allocator ports;
  std::uint16_t broker_port = 0, broker_metrics_port = 0;
  std::uint16_t otlp_port = 0, query_port = 0, status_port = 0;
  std::vector<app_ports> app_port;
  sidecar_features features;
  std::string run_dir, resolve_file, broker_ready, collector_ready, dev_file;

  std::vector<std::unique_ptr<proc>> procs;  // broker, collector, sidecars, apps
  proc* broker = nullptr;
  proc* collector = nullptr;
  std::vector<proc*> sidecars, apps;

  // I/O thread: probes, queue polling, the status endpoint.
  std::unique_ptr<io::runtime> rt;
  std::unique_ptr<http::client> http_client;
  std::unique_ptr<http::router> routes;  // outlives status_server (its handler points here)
  std::unique_ptr<http::server> status_server;
  std::shared_ptr<broker_client::client> queue_client;  // I/O thread only
  bool queue_poll_in_flight = false;                    // I/O thread only

  // Shared between the I/O thread and the main thread.
  std::mutex mutex;
  std::vector<std::string> health;    // per app
  std::vector<bool> probe_in_flight;  // per app
  std::vector<queue_status> queues;
  bool queues_known = false;
  system_status snapshot;  // what /status answers; refreshed by the main thread

  impl(dev_config c, runner_options o)
      : cfg(std::move(c)),
        opts(std::move(o)),
        con(opts.out, opts.color,
            cfg.ui.status == ui_config::view::block ||
                (cfg.ui.status == ui_config::view::automatic && opts.tty)) {}

  void say(const std::string& text) { con.line(runner_source, text); }

  // --- set-up ---

  status prepare() {
    std::error_code ec;
    run_dir = cfg.state_dir + "/run";
    fs::create_directories(run_dir, ec);
    if (ec)
      return error(errc::io_error, fmt::format("cannot create {}: {}", run_dir, ec.message()));
    resolve_file = run_dir + "/resolve.yaml";
    broker_ready = run_dir + "/broker.ready";
    collector_ready = run_dir + "/collector.ready";
    dev_file = cfg.state_dir + "/dev.json";
    if (const int other = running_runner_pid(dev_file); other != 0)
      return error(errc::already_exists,
                   fmt::format("`outrider dev` already runs for {} (pid {}); stop it first",
                               cfg.state_dir, other));
    features = probe_sidecar_features(opts.outrider_binary);

    if (cfg.broker.enabled) {
      auto p = ports.assign(cfg.broker.port, "the broker");
      if (!p) return p.error();
      broker_port = *p;
      auto m = ports.pick();
      if (!m) return m.error();
      broker_metrics_port = *m;
    } else {
      broker_port = cfg.broker.port != 0 ? cfg.broker.port : 7450;
    }
    if (cfg.collector.enabled) {
      auto o = ports.assign(cfg.collector.otlp_port, "the collector (otlpPort)");
      if (!o) return o.error();
      otlp_port = *o;
      auto q = ports.assign(cfg.collector.query_port, "the collector (queryPort)");
      if (!q) return q.error();
      query_port = *q;
    }
    auto s = ports.assign(cfg.ui.status_port, "the status endpoint (ui.statusPort)");
    if (!s) return s.error();
    status_port = *s;
    for (const auto& a : cfg.apps) {
      app_ports p;
      auto ap = ports.assign(a.port, "app '" + a.id + "'");
      if (!ap) return ap.error();
      p.app = *ap;
      for (auto* port : {&p.sidecar, &p.metrics}) {
        auto picked = ports.pick();
        if (!picked) return picked.error();
        *port = *picked;
      }
      if (features.app_otlp_port) {
        auto picked = ports.pick();
        if (!picked) return picked.error();
        p.otlp = *picked;
      }
      app_port.push_back(p);
    }
    health.assign(cfg.apps.size(), "unknown");
    probe_in_flight.assign(cfg.apps.size(), false);
    return write_resolve_file();
  }

  status write_resolve_file() {
    std::string yaml = "# written by outrider dev: app id -> its sidecar\napps:\n";
    for (std::size_t i = 0; i < cfg.apps.size(); ++i)
      yaml += fmt::format("  {}: \"127.0.0.1:{}\"\n", cfg.apps[i].id, app_port[i].sidecar);
    return write_text(resolve_file, yaml);
  }

  static status write_text(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      if (!out) return error(errc::io_error, "cannot write " + tmp);
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) return error(errc::io_error, fmt::format("cannot write {}: {}", path, ec.message()));
    return {};
  }

  std::string otlp_endpoint_for(std::size_t app) const {
    if (app_port[app].otlp != 0) return fmt::format("http://127.0.0.1:{}", app_port[app].otlp);
    if (otlp_port != 0) return fmt::format("http://127.0.0.1:{}", otlp_port);
    return "";
  }

  void build_procs() {
    const std::string& bin = opts.outrider_binary;
    auto add = [this](std::string name, role kind, std::size_t app, child_spec spec,
                      restart_policy policy) {
      auto p = std::make_unique<proc>();
      p->name = std::move(name);
      p->kind = kind;
      p->app = app;
      p->spec = std::move(spec);
      p->spec.name = p->name;
      p->policy = policy;
      p->backoff = restart_backoff(cfg.restart);
      con.add_source(p->name);
      procs.push_back(std::move(p));
      return procs.back().get();
    };
    const std::string broker_address = fmt::format("127.0.0.1:{}", broker_port);
    if (cfg.broker.enabled) {
      const std::string data =
          cfg.broker.data_dir.empty() ? cfg.state_dir + "/broker" : cfg.broker.data_dir;
      broker =
          add("broker", role::broker, 0,
              {"",
               {bin, "broker", "--data-dir", data, "--listen", broker_address, "--metrics-listen",
                fmt::format("127.0.0.1:{}", broker_metrics_port), "--ready-file", broker_ready},
               cfg.base_dir,
               {},
               SIGTERM},
              restart_policy::always);
    }
    if (cfg.collector.enabled) {
      const std::string data =
          cfg.collector.data_dir.empty() ? cfg.state_dir + "/traces" : cfg.collector.data_dir;
      collector = add("collector", role::collector, 0,
                      {"",
                       {bin, "collector", "--data-dir", data, "--otlp-listen",
                        fmt::format("127.0.0.1:{}", otlp_port), "--zipkin-listen",
                        fmt::format("127.0.0.1:{}", query_port), "--ready-file", collector_ready},
                       cfg.base_dir,
                       {},
                       SIGTERM},
                      restart_policy::always);
    }
    for (std::size_t i = 0; i < cfg.apps.size(); ++i) {
      const auto& a = cfg.apps[i];
      const auto& p = app_port[i];
      std::vector<std::string> argv{bin,
                                    "sidecar",
                                    "--app-id",
                                    a.id,
                                    "--app-port",
                                    std::to_string(p.app),
                                    "--dapr-http-port",
                                    std::to_string(p.sidecar),
                                    "--metrics-port",
                                    std::to_string(p.metrics),
                                    "--broker",
                                    broker_address};
      if (!a.health_path.empty()) {
        argv.insert(argv.end(), {"--enable-app-health-check", "true", "--app-health-check-path",
                                 a.health_path});
      }
      if (features.resolve_file) argv.insert(argv.end(), {"--resolve-file", resolve_file});
      if (features.resources_path && !a.resources.empty())
        argv.insert(argv.end(), {"--resources-path", a.resources});
      if (features.trace_endpoint && otlp_port != 0)
        argv.insert(argv.end(),
                    {"--trace-endpoint", fmt::format("http://127.0.0.1:{}/v1/traces", otlp_port)});
      if (p.otlp != 0) argv.insert(argv.end(), {"--app-otlp-port", std::to_string(p.otlp)});
      argv.insert(argv.end(), a.sidecar_args.begin(), a.sidecar_args.end());
      sidecars.push_back(add(a.id + "-sidecar", role::sidecar, i,
                             {"", std::move(argv), cfg.base_dir, {}, SIGTERM},
                             restart_policy::always));
    }
    for (std::size_t i = 0; i < cfg.apps.size(); ++i) {
      const auto& a = cfg.apps[i];
      const auto& p = app_port[i];
      std::vector<std::pair<std::string, std::string>> env{
          {"APP_ID", a.id},
          {"APP_PORT", std::to_string(p.app)},
          {"DAPR_HTTP_PORT", std::to_string(p.sidecar)},
          {"DAPR_HOST", "127.0.0.1"},
          {"DAPR_HTTP_ENDPOINT", fmt::format("http://127.0.0.1:{}", p.sidecar)},
          {"OTEL_SERVICE_NAME", a.id},
      };
      if (const auto otlp = otlp_endpoint_for(i); !otlp.empty())
        env.emplace_back("OTEL_EXPORTER_OTLP_ENDPOINT", otlp);
      env.insert(env.end(), a.env.begin(), a.env.end());
      apps.push_back(
          add(a.id, role::app, i, {"", a.command, a.workdir, std::move(env), SIGKILL}, a.restart));
    }
  }

  // --- processes ---

  void spawn(proc& p) {
    p.restart_at.reset();
    p.stopping = false;
    if (p.ever_started) ++p.restarts;
    p.ever_started = true;
    p.started = steady::now();
    auto c = child::spawn(p.spec,
                          [this, name = p.name](std::string_view line) { con.line(name, line); });
    if (!c) {
      say(fmt::format("cannot start {}: {}", p.name, c.error().message));
      handle_exit(p, 127);
      return;
    }
    p.running = std::move(*c);
  }

  void handle_exit(proc& p, int code) {
    p.last_exit = code;
    const auto ran = steady::now() - p.started;
    p.running.reset();
    if (p.stopping || stop_signal != 0) return;
    const bool restart =
        p.policy == restart_policy::always || (p.policy == restart_policy::on_failure && code != 0);
    if (!restart) {
      say(fmt::format("{} exited with code {} after {}", p.name, code, seconds_text(ran)));
      return;
    }
    const auto delay = p.backoff.on_exit(ran);
    p.restart_at = steady::now() + delay;
    say(fmt::format("{} exited with code {} after {}; restarting in {}", p.name, code,
                    seconds_text(ran), seconds_text(delay)));
  }

  void reap() {
    for (auto& p : procs) {
      if (!p->running) continue;
      if (auto code = p->running->poll_exit()) handle_exit(*p, *code);
    }
  }

  void restart_due() {
    const auto now = steady::now();
    for (auto& p : procs) {
      if (p->restart_at && *p->restart_at <= now && stop_signal == 0) spawn(*p);
    }
  }

  // Waits one tick for SIGINT/SIGTERM. Returns true when one arrived.
  bool poll_signal(nanoseconds wait) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(wait);
    timespec ts{static_cast<time_t>(s.count()), static_cast<long>((wait - s).count())};
    const int sig = ::sigtimedwait(&signals, nullptr, &ts);
    if (sig != SIGINT && sig != SIGTERM) return false;
    if (stop_signal == 0) {
      stop_signal = sig;
      say(fmt::format("{}: stopping (apps, sidecars, collector, broker); again to kill",
                      sig == SIGINT ? "interrupt" : "terminate"));
    } else if (!killing) {
      killing = true;
      say("second signal: killing every process");
      for (auto& p : procs)
        if (p->running) p->running->signal_group(SIGKILL);
    }
    return true;
  }

  static constexpr int max_sidecar_start_attempts = 3;
  static constexpr int max_server_start_attempts = 3;

  // Gives sidecar `s` fresh ports (its API, metrics and app OTLP ports are always picked, never
  // configured), in its command line, in its app's environment and in the resolve file.
  bool repick_sidecar_ports(proc& s) {
    auto& p = app_port[s.app];
    const std::pair<std::uint16_t app_ports::*, const char*> fields[] = {
        {&app_ports::sidecar, "--dapr-http-port"},
        {&app_ports::metrics, "--metrics-port"},
        {&app_ports::otlp, "--app-otlp-port"}};
    for (const auto& [field, flag] : fields) {
      if (p.*field == 0) continue;
      auto picked = ports.pick();
      if (!picked) return false;
      auto& argv = s.spec.argv;
      for (std::size_t i = 0; i + 1 < argv.size(); ++i)
        if (argv[i] == flag) argv[i + 1] = std::to_string(*picked);
      p.*field = *picked;
    }
    for (auto* a : apps) {
      if (a->app != s.app) continue;
      // The runner's entries come first; a later one with the same key is the app's own `env:`.
      std::set<std::string> done;
      for (auto& [key, value] : a->spec.env) {
        if (!done.insert(key).second) continue;
        if (key == "DAPR_HTTP_PORT") value = std::to_string(p.sidecar);
        if (key == "DAPR_HTTP_ENDPOINT") value = fmt::format("http://127.0.0.1:{}", p.sidecar);
        if (key == "OTEL_EXPORTER_OTLP_ENDPOINT") value = otlp_endpoint_for(s.app);
      }
    }
    if (auto w = write_resolve_file(); !w) {
      say(w.error().message);
      return false;
    }
    return true;
  }

  // Moves every "127.0.0.1:<from>" in the children's arguments and environment
  // to `to` (a port repicked after a lost pick-then-bind race).
  void move_port(std::uint16_t from, std::uint16_t to) {
    const std::string old_address = fmt::format("127.0.0.1:{}", from);
    const std::string new_address = fmt::format("127.0.0.1:{}", to);
    auto fix = [&](std::string& text) {
      for (std::size_t at = text.find(old_address); at != std::string::npos;
           at = text.find(old_address, at)) {
        const std::size_t end = at + old_address.size();
        if (end < text.size() && text[end] >= '0' && text[end] <= '9') {
          at = end;  // another port with this one as a prefix
          continue;
        }
        text.replace(at, old_address.size(), new_address);
        at += new_address.size();
      }
    };
    for (auto& p : procs) {
      for (auto& arg : p->spec.argv) fix(arg);
      for (auto& kv : p->spec.env) fix(kv.second);
    }
  }

  // Starts the broker or the collector and waits for its ready file. One that
  // exits before it is ready has most likely lost a picked port between the
  // pick and its bind: the ports not fixed by the configuration are picked
  // again, every user of them follows, and it is started again.
  bool start_server(proc& p, const std::string& ready_file,
                    std::initializer_list<std::pair<std::uint16_t*, bool>> ports_used,
                    const std::string& what) {
    for (int attempt = 1;; ++attempt) {
      std::error_code ec;
      fs::remove(ready_file, ec);
      spawn(p);
      if (wait_until([&ready_file] { return fs::exists(ready_file); }, cfg.start_timeout, &p, what))
        return true;
      bool repicked = false;
      if (stop_signal != 0 || p.running || attempt == max_server_start_attempts) return false;
      for (const auto& [port, fixed] : ports_used) {
        if (fixed) continue;
        auto picked = ports.pick();
        if (!picked) return false;
        move_port(*port, *picked);
        *port = *picked;
        repicked = true;
      }
      if (!repicked) return false;
      if (auto w = write_resolve_file(); !w) {
        say(w.error().message);
        return false;
      }
      say(fmt::format("{}: starting again on other ports (attempt {} of {})", p.name, attempt + 1,
                      max_server_start_attempts));
    }
  }

  // Waits until `ready()` or the deadline; false on a signal, on timeout (with
  // a message), or when `watched` exited (with a message).
  template <class Ready>
  bool wait_until(Ready ready, nanoseconds timeout, proc* watched, const std::string& what) {
    const auto deadline = steady::now() + timeout;
    for (;;) {
      if (ready()) return true;
      if (poll_signal(tick) || stop_signal != 0) return false;
      reap();
      if (watched != nullptr && !watched->running) {
        say(fmt::format("{} exited with code {} before it was ready", watched->name,
                        watched->last_exit.value_or(-1)));
        return false;
      }
      if (steady::now() >= deadline) {
        say(fmt::format("{} not ready after {}", what, seconds_text(timeout)));
        return false;
      }
    }
  }

  // Synchronous GET on the I/O thread's client: the HTTP status, 0 when unreachable.
  int get_status(std::uint16_t port, const std::string& target) {
    auto promise = std::make_shared<std::promise<int>>();
    auto future = promise->get_future();
    http::url u{"http", "127.0.0.1", port, target};
    http::request req;
    req.method = "GET";
    req.target = target;
    http_client->send(u, std::move(req), probe_timeout, [promise](result<http::response> r) {
      promise->set_value(r ? r->status : 0);
    });
    return future.get();
  }

  status run_builds() {
    for (const auto& a : cfg.apps) {
      if (a.build.empty()) continue;
      const std::string name = a.id + "-build";
      con.add_source(name);
      say(fmt::format("building {}", a.id));
      auto c = child::spawn({name, a.build, a.workdir, {}, SIGKILL},
                            [this, name](std::string_view line) { con.line(name, line); });
      if (!c)
        return error(errc::failed_precondition,
                     fmt::format("build of {}: {}", a.id, c.error().message));
      std::optional<int> code;
      while (!(code = (*c)->poll_exit())) {
        if (poll_signal(tick)) {
          (*c)->signal_group(SIGTERM);
          return error(errc::cancelled, "interrupted while building");
        }
      }
      if (*code != 0)
        return error(errc::failed_precondition,
                     fmt::format("the build of {} failed with code {}", a.id, *code));
    }
    return {};
  }

  // --- I/O thread work ---

  void probe_health() {
    for (std::size_t i = 0; i < sidecars.size(); ++i) {
      {
        std::lock_guard lock(mutex);
        if (probe_in_flight[i]) continue;
        if (!sidecars[i]->running) {
          health[i] = "unknown";
          continue;
        }
        probe_in_flight[i] = true;
      }
      http::url u{"http", "127.0.0.1", app_port[i].sidecar, "/v1.0/healthz"};
      http::request req;
      req.method = "GET";
      req.target = u.target;
      http_client->send(u, std::move(req), probe_timeout, [this, i](result<http::response> r) {
        std::string h;
        if (!r) {
          h = "not ready: sidecar unreachable";
        } else if (r->status / 100 == 2) {
          h = "ready";
        } else {
          h = "not ready";
          boost::system::error_code ec;
          const auto v = json::parse(r->body, ec);
          if (!ec && v.is_object()) {
            if (const auto* m = v.as_object().if_contains("message"); m && m->is_string())
              h += ": " + std::string(m->as_string());
          }
        }
        std::lock_guard lock(mutex);
        health[i] = std::move(h);
        probe_in_flight[i] = false;
      });
    }
  }

  // Runs on the I/O thread.
  void poll_queues() {
    if (queue_poll_in_flight) return;
    queue_poll_in_flight = true;
    auto list = [this] {
      queue_client->list_queues([this](result<std::vector<broker_client::queue_info>> r) {
        queue_poll_in_flight = false;
        std::lock_guard lock(mutex);
        if (!r) {
          queues_known = false;
          return;
        }
        queues.clear();
        for (const auto& q : *r)
          queues.push_back(
              {q.name, q.ready, q.in_flight, q.scheduled, q.dead_letters, q.consumers});
        queues_known = true;
      });
    };
    if (queue_client && queue_client->connected()) {
      list();
      return;
    }
    if (queue_client) queue_client->close();
    broker_client::client_options o;
    o.address = fmt::format("127.0.0.1:{}", broker_port);
    o.client_name = "outrider-dev";
    queue_client = broker_client::client::create(rt->context(0), o);
    queue_client->connect([this, list](status s) {
      if (!s) {
        queue_poll_in_flight = false;
        std::lock_guard lock(mutex);
        queues_known = false;
        return;
      }
      list();
    });
  }

  // --- status ---

  process_status describe(const proc& p) const {
    process_status s;
    s.name = p.name;
    s.restarts = p.restarts;
    s.last_exit = p.last_exit;
    if (p.running) {
      s.pid = p.running->pid();
      s.state = p.stopping ? "stopping" : "running";
    } else if (p.restart_at) {
      s.state = "restarting";
      s.restart_in_seconds =
          std::max(0.0, std::chrono::duration<double>(*p.restart_at - steady::now()).count());
    } else if (!p.ever_started) {
      s.state = "starting";
    } else {
      s.state = stop_signal != 0 ? "stopped" : "exited";
    }
    return s;
  }

  std::string storefront() const {
    for (std::size_t i = 0; i < cfg.apps.size(); ++i) {
      const auto& a = cfg.apps[i];
      if (!a.is_public && a.open.empty()) continue;
      if (a.open.rfind("http://", 0) == 0 || a.open.rfind("https://", 0) == 0) return a.open;
      std::string path = a.open.empty() ? "/" : a.open;
      if (path.front() != '/') path.insert(path.begin(), '/');
      return fmt::format("http://127.0.0.1:{}{}", app_port[i].app, path);
    }
    return "";
  }

  void refresh_snapshot() {
    system_status s;
    s.config_file = cfg.file;
    if (broker) s.broker = describe(*broker);
    if (collector) s.collector = describe(*collector);
    s.broker_address = fmt::format("127.0.0.1:{}", broker_port);
    if (otlp_port != 0) s.otlp_endpoint = fmt::format("http://127.0.0.1:{}", otlp_port);
    if (query_port != 0) s.trace_ui = fmt::format("http://127.0.0.1:{}/", query_port);
    s.storefront = storefront();
    s.status_url = fmt::format("http://127.0.0.1:{}/status", status_port);
    s.stopping = stop_signal != 0;
    std::lock_guard lock(mutex);
    for (std::size_t i = 0; i < cfg.apps.size(); ++i) {
      app_status a;
      a.id = cfg.apps[i].id;
      a.app_port = app_port[i].app;
      a.sidecar_port = app_port[i].sidecar;
      if (i < apps.size()) a.app = describe(*apps[i]);
      if (i < sidecars.size()) a.sidecar = describe(*sidecars[i]);
      a.health = health[i];
      s.apps.push_back(std::move(a));
    }
    s.queues_known = queues_known;
    s.queues = queues;
    snapshot = std::move(s);
  }

  system_status current() {
    std::lock_guard lock(mutex);
    return snapshot;
  }

  status start_status_server() {
    routes = std::make_unique<http::router>();
    routes->add_sync("GET", "/status", [this](const http::request&) {
      return http::response::json(200, to_json(current()));
    });
    routes->add_sync("GET", "/status.txt", [this](const http::request&) {
      std::string text;
      for (const auto& l : to_lines(current())) text += l + "\n";
      return http::response::with_body(200, std::move(text), "text/plain; charset=utf-8");
    });
    http::server_options so;
    so.listen = fmt::format("127.0.0.1:{}", status_port);
    status_server = std::make_unique<http::server>(*rt, so, routes->as_handler());
    OUTRIDER_TRY(status_server->start());
    std::string doc = fmt::format("{{\"pid\":{},\"status\":", ::getpid());
    append_json_string(doc, fmt::format("http://127.0.0.1:{}", status_port));
    doc += "}\n";
    return write_text(dev_file, doc);
  }

  // --- stop ---

  void stop_stage(const std::vector<proc*>& stage) {
    bool any = false;
    for (auto* p : stage) {
      p->restart_at.reset();
      if (!p->running) continue;
      p->stopping = true;
      p->running->signal_group(killing ? SIGKILL : SIGTERM);
      any = true;
    }
    if (!any) return;
    const auto deadline = steady::now() + cfg.stop_grace;
    bool escalated = killing;
    for (;;) {
      reap();
      if (std::none_of(stage.begin(), stage.end(), [](proc* p) { return p->running != nullptr; }))
        return;
      if (!escalated && (killing || steady::now() >= deadline)) {
        escalated = true;
        for (auto* p : stage) {
          if (!p->running) continue;
          if (!killing)
            say(fmt::format("{} still running after {}: killing it", p->name,
                            seconds_text(cfg.stop_grace)));
          p->running->signal_group(SIGKILL);
        }
      }
      poll_signal(tick);
    }
  }

  void stop_all() {
    if (stop_signal == 0) stop_signal = SIGTERM;
    stop_stage(apps);
    stop_stage(sidecars);
    if (collector) stop_stage({collector});
    if (broker) stop_stage({broker});
  }

  // --- the whole run ---

  int run() {
    ::sigemptyset(&signals);
    ::sigaddset(&signals, SIGINT);
    ::sigaddset(&signals, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    con.add_source(runner_source);

    if (auto s = prepare(); !s) {
      say(s.error().message);
      return 1;
    }
    build_procs();
    if (opts.build) {
      if (auto s = run_builds(); !s) {
        say(s.error().message);
        return stop_signal != 0 ? 128 + stop_signal : 1;
      }
    }
    rt = std::make_unique<io::runtime>(1);
    http_client = std::make_unique<http::client>(rt->context(0));
    rt->start();
    int code = 0;
    if (auto s = start_status_server(); !s) {
      say(s.error().message);
      code = 1;
    } else if (!start_system()) {
      code = stop_signal != 0 ? 128 + stop_signal : 1;
    } else {
      supervise();
    }
    stop_all();
    con.clear_status();
    say(code == 0 ? "stopped" : "stopped (the system did not start)");
    if (status_server) status_server->stop(std::chrono::seconds(1));
    std::promise<void> closed;
    boost::asio::post(rt->context(0), [this, &closed] {
      if (queue_client) queue_client->close();
      queue_client.reset();
      http_client.reset();  // the client's pool lives on this thread
      closed.set_value();
    });
    closed.get_future().wait();
    rt->stop();
    std::error_code ec;
    fs::remove(dev_file, ec);
    return code;
  }

  bool start_system() {
    if (broker &&
        !start_server(*broker, broker_ready,
                      {{&broker_port, cfg.broker.port != 0}, {&broker_metrics_port, false}},
                      "the broker"))
      return false;
    if (collector && !start_server(*collector, collector_ready,
                                   {{&otlp_port, cfg.collector.otlp_port != 0},
                                    {&query_port, cfg.collector.query_port != 0}},
                                   "the collector"))
      return false;
    for (auto* s : sidecars) spawn(*s);
    for (auto* s : sidecars) {
      for (int attempt = 1;; ++attempt) {
        const auto port = app_port[s->app].sidecar;
        if (wait_until([this, port] { return get_status(port, "/v1.0/healthz/outbound") == 204; },
                       cfg.start_timeout, s, s->name))
          break;
        // A sidecar that exited before it was ready has most likely lost one of its picked
        // ports to another process between the pick and its bind: new ports, another try.
        if (stop_signal != 0 || s->running || attempt == max_sidecar_start_attempts ||
            !repick_sidecar_ports(*s))
          return false;
        say(fmt::format("{}: starting again on other ports (attempt {} of {})", s->name,
                        attempt + 1, max_sidecar_start_attempts));
        spawn(*s);
      }
    }
    for (auto* a : apps) spawn(*a);
    refresh_snapshot();
    const auto st = current();
    if (!st.storefront.empty()) say("storefront: " + st.storefront);
    if (!st.trace_ui.empty()) say("traces:     " + st.trace_ui);
    say(fmt::format("status:     {} (or: outrider dev status)", st.status_url));
    say(fmt::format("{} app(s) started; Ctrl-C stops everything", apps.size()));
    return true;
  }

  void supervise() {
    auto next_probe = steady::now();
    auto next_queues = steady::now();
    auto next_draw = steady::now();
    auto next_summary = steady::now() + cfg.ui.summary_interval;
    const bool block = cfg.ui.status == ui_config::view::block ||
                       (cfg.ui.status == ui_config::view::automatic && opts.tty);
    const bool line = cfg.ui.status == ui_config::view::line ||
                      (cfg.ui.status == ui_config::view::automatic && !opts.tty);
    while (stop_signal == 0) {
      if (poll_signal(tick)) break;
      reap();
      restart_due();
      const auto now = steady::now();
      if (now >= next_probe) {
        next_probe = now + probe_interval;
        boost::asio::post(rt->context(0), [this] { probe_health(); });
      }
      if (broker && now >= next_queues) {
        next_queues = now + queue_interval;
        boost::asio::post(rt->context(0), [this] { poll_queues(); });
      }
      refresh_snapshot();
      if (block && now >= next_draw) {
        next_draw = now + cfg.ui.refresh;
        con.set_status(to_lines(current()));
      }
      if (line && now >= next_summary) {
        next_summary = now + cfg.ui.summary_interval;
        say(to_summary(current()));
      }
    }
  }
};

runner::runner(dev_config config, runner_options options)
    : impl_(std::make_unique<impl>(std::move(config), std::move(options))) {}
runner::~runner() = default;
int runner::run() {
  return impl_->run();
}

status print_status(const std::string& state_dir, bool as_json, std::FILE* out) {
  const std::string path = state_dir + "/dev.json";
  std::ifstream in(path);
  if (!in)
    return error(
        errc::not_found,
        fmt::format("no running `outrider dev` for this configuration ({} not found)", path));
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const auto doc = json::parse(text.str(), ec);
  const json::value* address = nullptr;
  if (!ec && doc.is_object()) address = doc.as_object().if_contains("status");
  if (address == nullptr || !address->is_string())
    return error(errc::data_corruption, fmt::format("{} is not a status file", path));
  auto base =
      http::url::parse(std::string(address->as_string()) + (as_json ? "/status" : "/status.txt"));
  if (!base) return base.error();
  boost::asio::io_context ctx;
  http::client c(ctx);
  result<http::response> answer = error(errc::unavailable, "no answer");
  http::request req;
  req.method = "GET";
  req.target = base->target;
  bool done = false;
  c.send(*base, std::move(req), status_request_timeout, [&](result<http::response> r) {
    answer = std::move(r);
    done = true;
  });
  // Not run(): the client's pool may keep the context busy after the answer.
  while (!done && ctx.run_one() > 0) {
  }
  if (!answer)
    return error(errc::unavailable,
                 fmt::format("the runner at {} does not answer: {}",
                             std::string(address->as_string()), answer.error().message));
  if (answer->status != 200)
    return error(errc::unavailable, fmt::format("the runner answered {}", answer->status));
  std::fwrite(answer->body.data(), 1, answer->body.size(), out);
  if (as_json) std::fputc('\n', out);
  return {};
}

}  // namespace outrider::dev
