#include "sidecar/outbound.h"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <condition_variable>
#include <fmt/core.h>
#include <mutex>

#include "ambassador/forwarding.h"
#include "ambassador/resolver.h"
#include "base/log.h"
#include "base/random.h"
#include "io/asio_clock.h"
#include "io/file_system.h"
#include "io/runtime.h"
#include "sidecar/options.h"

namespace outrider::sidecar {
namespace {

const log::logger logger{"sidecar.outbound"};

constexpr std::string_view app_id_header = "dapr-app-id";
constexpr std::string_view caller_header = "dapr-caller-app-id";
constexpr std::string_view token_header = "dapr-api-token";
constexpr std::string_view invoke_prefix = "/v1.0/invoke/";

http::response fail(errc code, std::string message) {
  return http::response::from_error(error(code, std::move(message)));
}

ambassador::target_policy policy_for(const std::map<std::string, ambassador::target_policy>& m,
                                     const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? ambassador::target_policy{} : it->second;
}

// base + "/path?query" without doubling the slash.
std::string join_url(std::string base, std::string_view target) {
  if (!base.empty() && base.back() == '/' && target.starts_with('/')) base.pop_back();
  base += target;
  return base;
}

// Whether `target` ("/...") is an origin-form target (RFC 9112: absolute-path
// ["?" query]) made only of unreserved, sub-delims, ":", "@", "/", "?" and valid
// percent escapes: what boost::urls::parse_origin_form accepts, checked in one
// loop (~100 instructions instead of ~850 for the usual short target). A false
// answer is not a rejection: the caller then asks parse_origin_form.
bool plain_origin_form(std::string_view target) {
  static constexpr auto allowed = [] {
    std::array<bool, 256> a{};
    for (unsigned char c = 'a'; c <= 'z'; ++c) a[c] = true;
    for (unsigned char c = 'A'; c <= 'Z'; ++c) a[c] = true;
    for (unsigned char c = '0'; c <= '9'; ++c) a[c] = true;
    for (unsigned char c : std::string_view("-._~!$&'()*+,;=:@/?")) a[c] = true;
    return a;
  }();
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  for (std::size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (c == '%') {
      if (i + 2 >= target.size() || !hex(target[i + 1]) || !hex(target[i + 2])) return false;
      i += 2;
    } else if (!allowed[static_cast<unsigned char>(c)]) {
      return false;
    }
  }
  return true;
}

// An HTTPEndpoint with its baseUrl parsed once, at start.
struct endpoint_entry {
  ambassador::http_endpoint endpoint;
  std::optional<http::url> base;  // the parsed baseUrl (if it parses)
  // When the baseUrl has no query or fragment, a call's URL is `base` with
  // target = base_path + the call's origin-form target: the URL that parsing
  // join_url(baseUrl, target) gives (anything else takes that slower path,
  // with its errors).
  bool joins_fast = false;
  std::string base_path;  // base's path without one trailing '/' ("" for "/")
  std::string target;     // "endpoint:<name>"

  explicit endpoint_entry(ambassador::http_endpoint e)
      : endpoint(std::move(e)), target("endpoint:" + endpoint.name) {
    auto parsed = http::url::parse(endpoint.base_url);
    if (!parsed) return;
    base = std::move(*parsed);
    if (base->target.find('?') != std::string::npos ||
        endpoint.base_url.find('#') != std::string::npos) {
      return;
    }
    joins_fast = true;
    // url::parse makes an empty path "/"; join_url keeps the base as written.
    const bool written_path =
        endpoint.base_url.find('/', endpoint.base_url.find("//") + 2) != std::string::npos;
    base_path = written_path ? base->target : std::string();
    if (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
  }

  // The URL of a call to `call_target` (an origin-form "/path?query" for the fast
  // path), into `out` (the call's own: no URL moved). Errors: invalid_argument.
  status url_into(std::string_view call_target, http::url& out) const {
    if (joins_fast && call_target.starts_with('/') &&
        (plain_origin_form(call_target) || boost::urls::parse_origin_form(call_target))) {
      out.scheme = base->scheme;
      out.host = base->host;
      out.port = base->port;
      out.target.reserve(base_path.size() + call_target.size());
      out.target.assign(base_path);
      out.target.append(call_target);
      return ok_status();
    }
    auto parsed = http::url::parse(join_url(endpoint.base_url, call_target));
    if (!parsed) return parsed.error();
    out = std::move(*parsed);
    return ok_status();
  }
};

}  // namespace

struct outbound::state : std::enable_shared_from_this<state> {
  struct binding_entry {
    ambassador::http_binding binding;
    // One client (and its connection pool) per I/O context, indexed like `slots`.
    std::vector<std::unique_ptr<http::client>> clients;
    std::vector<std::unique_ptr<ambassador::client_upstream>> vias;
  };
  // What one I/O context owns: an engine with its clock and randomness, and a
  // client with its keep-alive pool. Touched only on that context's thread
  // once started (built on the starting thread before any use).
  struct context_slot {
    std::unique_ptr<io::asio_clock> clock;
    std::unique_ptr<xoshiro_random> random;
    std::unique_ptr<ambassador::engine> engine;
    std::unique_ptr<http::client> client;
    std::unique_ptr<ambassador::client_upstream> via;
  };

  state(io::runtime& r, outbound_options o, metrics::registry& m)
      : rt(r), opts(std::move(o)), reg(m) {}

  io::runtime& rt;
  outbound_options opts;
  metrics::registry& reg;
  std::shared_ptr<ambassador::call_observer> observer;
  ambassador::resources res;
  std::map<std::string, endpoint_entry, std::less<>> endpoints;
  ambassador::chain_resolver resolver;
  std::unique_ptr<http::server> proxy;
  std::shared_ptr<ambassador::target_table> shared_targets;  // breakers, budgets, metrics
  std::vector<context_slot> slots;                           // one per runtime context
  std::unique_ptr<io::asio_clock> resolver_clock;            // the file resolver's (reads only)
  std::map<std::string, binding_entry> bindings;
  std::atomic<bool> stopped{false};

  // The index of the runtime context running the caller, if any.
  std::optional<std::size_t> current_context() const {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (rt.context(i).get_executor().running_in_this_thread()) return i;
    }
    return std::nullopt;
  }

  // The client of the caller's context (context 0's off the runtime).
  http::client& local_client() { return *slots[current_context().value_or(0)].client; }

  // Shapes the engine's answer in place for the app (`b`: the call's binding, if any).
  // A plain function: no std::function to carry through the call.
  using shape_fn = void (*)(http::response&, bool from_upstream, const binding_entry* b);

  using call_ptr = std::shared_ptr<ambassador::engine::call_state>;

  // A call whose answer goes through `shape` (`b`: the call's binding, if any) to
  // `r`. The caller fills its spec in place, then hands it to on_engine().
  static call_ptr new_call(const http::responder& r, shape_fn shape,
                           const binding_entry* b = nullptr) {
    return ambassador::engine::make_call([r, shape, b](http::response&& resp, bool from_upstream) {
      if (shape != nullptr) shape(resp, from_upstream, b);
      r.send(std::move(resp));
    });
  }

  // Runs the call on the caller's context's engine (handlers run on their
  // connection's context, so there is no thread hop), or on context 0's when
  // called off the runtime. Answers 503 if stopped meanwhile. `b`: the
  // binding whose clients carry the call (else the slot's client). The spec was
  // built in the call's state (a move of a call_spec, its request and URL, costs
  // ~400 instructions).
  void on_engine(call_ptr c, const binding_entry* b = nullptr) {
    if (auto i = current_context()) {
      run_call(*i, std::move(c), b);
      return;
    }
    rt.post(0, [self = shared_from_this(), c = std::move(c), b]() mutable {
      self->run_call(0, std::move(c), b);
    });
  }

  // On context i's thread.
  void run_call(std::size_t i, call_ptr c, const binding_entry* b) {
    auto& slot = slots[i];
    if (stopped || !slot.engine) {
      c->deliver(fail(errc::shutting_down, "the sidecar is stopping"), false);
      return;
    }
    c->spec.via = b != nullptr ? b->vias[i].get() : slot.via.get();
    slot.engine->start(std::move(c));
  }

  // The answer goes to the app through http::server, whose writers drop the framing
  // fields (Content-Length, Transfer-Encoding, Connection) themselves.
  static void pass_back(http::response& resp, bool from_upstream, const binding_entry*) {
    if (from_upstream) ambassador::strip_hop_by_hop_but_framing(resp.headers);
  }

  // ------------------------------------------------------------ invocation

  void invoke(http::request&& req, const http::responder& r, const std::string& app_id,
              const std::string& method_target) {
    const auto from = req.headers.get(invoke_from_header);
    const bool from_sidecar = from.has_value();
    const bool to_our_app = app_id == opts.app_id;
    std::string caller;  // (copied: the strip below erases what `from` shows)
    if (to_our_app) caller = from_sidecar ? *from : std::string_view(opts.app_id);
    if (!from_sidecar && !opts.api_token.empty()) {
      auto got = req.headers.get(token_header);
      if (!got || *got != opts.api_token) {
        r.send(fail(errc::unauthenticated, "missing or invalid dapr-api-token header"));
        return;
      }
    }
    // (Never leak the caller's token to the callee.)
    ambassador::strip_hop_by_hop(req.headers, {app_id_header, invoke_from_header, token_header});

    if (to_our_app) {
      if (opts.app_url.port == 0) {
        r.send(fail(errc::direct_invoke, "app '" + app_id + "' has no app port configured"));
        return;
      }
      req.target = method_target;
      if (!opts.app_api_token.empty()) req.headers.set(token_header, opts.app_api_token);
      req.headers.set(caller_header, caller);
      if (from_sidecar) {
        // The calling sidecar applies the policies; this hop only delivers.
        local_client().send(opts.app_url, std::move(req), opts.inbound_timeout,
                            [r](result<http::response> answer) {
                              if (!answer) {
                                r.send(http::response::from_error(answer.error()));
                                return;
                              }
                              pass_back(*answer, true, nullptr);
                              r.send(std::move(*answer));
                            });
        return;
      }
      auto c = new_call(r, pass_back);
      auto& spec = c->spec;
      spec.target = "app:" + app_id;
      spec.policy = policy_for(res.policies.apps, app_id);
      spec.destination = opts.app_url;
      spec.request = std::move(req);
      on_engine(std::move(c));
      return;
    }
    if (from_sidecar) {
      r.send(fail(errc::direct_invoke, "this sidecar serves app '" + opts.app_id + "', not '" +
                                           app_id + "' (stale name resolution?)"));
      return;
    }
    if (auto ep = endpoints.find(app_id); ep != endpoints.end()) {
      // The spec built in the call's state; the endpoint's target name is not copied
      // (it lives as long as the state).
      auto c = new_call(r, pass_back);
      auto& spec = c->spec;
      if (auto joined = ep->second.url_into(method_target, spec.destination); !joined) {
        r.send(fail(errc::invalid_argument, joined.error().message));
        return;
      }
      for (const auto& h : ep->second.endpoint.headers) req.headers.set(h.name, h.value);
      req.target = spec.destination.target;
      spec.policy = policy_for(res.policies.endpoints, app_id);
      spec.request = std::move(req);
      spec.stable_target = &ep->second.target;
      on_engine(std::move(c));
      return;
    }
    auto address = resolver.resolve(app_id);
    if (!address) {
      r.send(fail(errc::direct_invoke,
                  "failed to invoke app '" + app_id + "': " + address.error().message));
      return;
    }
    auto url = http::url::parse("http://" + *address + "/");
    if (!url) {
      r.send(fail(errc::direct_invoke,
                  "app '" + app_id + "' resolves to a bad address '" + *address + "'"));
      return;
    }
    req.target = std::string(invoke_prefix) + app_id + "/method" + method_target;
    req.headers.set(invoke_from_header, opts.app_id);
    auto c = new_call(r, pass_back);
    auto& spec = c->spec;
    spec.target = "app:" + app_id;
    spec.policy = policy_for(res.policies.apps, app_id);
    spec.destination = std::move(*url);
    spec.request = std::move(req);
    on_engine(std::move(c));
  }

  // -------------------------------------------------------------- bindings

  void binding(http::request&& req, const http::responder& r) {
    const std::string name(req.params.at("name"));
    auto it = bindings.find(name);
    if (it == bindings.end()) {
      r.send(fail(errc::invoke_output_binding, "output binding '" + name + "' not found"));
      return;
    }
    auto in = ambassador::parse_binding_request(req.body);
    if (!in) {
      r.send(fail(errc::malformed_request, "binding '" + name + "': " + in.error().message));
      return;
    }
    auto call = ambassador::make_binding_call(it->second.binding, *in);
    if (!call) {
      r.send(http::response::from_error(call.error()));
      return;
    }
    for (std::string_view h : {"traceparent", "tracestate"}) {
      if (auto v = req.headers.get(h)) call->request.headers.set(h, *v);
    }
    const binding_entry* entry = &it->second;  // fixed after start()
    auto c = new_call(
        r,
        [](http::response& resp, bool from_upstream, const binding_entry* b) {
          if (from_upstream) resp = ambassador::binding_response(b->binding, std::move(resp));
        },
        entry);
    auto& spec = c->spec;
    spec.target = "component:" + name;
    spec.policy = policy_for(res.policies.components, name);
    spec.destination = std::move(call->destination);
    spec.request = std::move(call->request);
    on_engine(std::move(c), entry);
  }

  // ----------------------------------------------------------------- proxy

  void forward(http::request&& req, const http::responder& r) {
    if (req.method == "CONNECT") {
      r.send(fail(errc::proxy_connect_unsupported,
                  "the Outrider forward proxy does not tunnel CONNECT (https): use an output "
                  "binding (POST /v1.0/bindings/{name}) or an HTTPEndpoint "
                  "(/v1.0/invoke/{endpoint}/method/...) for https services, so the sidecar "
                  "originates TLS and applies the policies"));
      return;
    }
    if (!req.target.starts_with("http://")) {
      r.send(fail(errc::invalid_argument,
                  req.target.starts_with("https://")
                      ? "https:// URLs cannot go through the forward proxy; use an output binding"
                      : "a forward proxy request needs an absolute http:// URL as its target "
                        "(set HTTP_PROXY=http://127.0.0.1:<proxy-port>)"));
      return;
    }
    auto url = http::url::parse(req.target);
    if (!url) {
      r.send(http::response::from_error(url.error()));
      return;
    }
    ambassador::strip_hop_by_hop(req.headers);
    const std::string host_port = url->host + ":" + std::to_string(url->port);
    auto c = new_call(r, pass_back);
    auto& spec = c->spec;
    spec.target = "endpoint:" + host_port;
    auto& targets = res.policies.endpoints;
    if (targets.count(host_port) != 0) {
      spec.policy = targets.at(host_port);
    } else if (targets.count(url->host) != 0) {
      spec.target = "endpoint:" + url->host;
      spec.policy = targets.at(url->host);
    } else {
      for (const auto& [name, ep] : endpoints) {
        const auto& base = ep.base;
        if (base && base->scheme == "http" && base->host == url->host && base->port == url->port) {
          spec.target = ep.target;
          spec.policy = policy_for(targets, name);
          for (const auto& h : ep.endpoint.headers) req.headers.set(h.name, h.value);
          break;
        }
      }
    }
    req.target = url->target;
    spec.destination = std::move(*url);
    spec.request = std::move(req);
    on_engine(std::move(c));
  }
};

outbound_options outbound_options_for(const sidecar_options& o, const http::url& app_url,
                                      const http::server_options& limits) {
  outbound_options out;
  out.app_id = o.app_id;
  out.app_url = app_url;
  if (o.app_port == 0) out.app_url.port = 0;
  out.app_api_token = o.app_api_token;
  out.api_token = o.api_token;
  out.inbound_timeout = o.invoke_timeout;
  out.default_timeout = o.invoke_timeout;
  out.resources_paths = o.resources_paths;
  out.resolve_file = o.resolve_file;
  out.apps = o.apps;
  out.proxy_port = o.proxy_port;
  out.listen_host = o.listen_host;
  out.server_limits = limits;
  return out;
}

outbound::outbound(io::runtime& rt, outbound_options opts, metrics::registry& metrics)
    : state_(std::make_shared<state>(rt, std::move(opts), metrics)) {}

outbound::~outbound() {
  stop();
}

void outbound::set_observer(std::shared_ptr<ambassador::call_observer> observer) {
  state_->observer = std::move(observer);
}

status outbound::start() {
  auto& s = *state_;
  if (!s.opts.resources_paths.empty()) {
    auto loaded = ambassador::load_resources(s.opts.resources_paths);
    if (!loaded) return loaded.error();
    s.res = std::move(*loaded);
  }
  ambassador::engine_options eo;
  eo.default_timeout = s.opts.default_timeout;
  s.shared_targets = std::make_shared<ambassador::target_table>(s.reg, s.res.policies.budget);
  s.slots.resize(s.rt.size());
  for (std::size_t i = 0; i < s.slots.size(); ++i) {
    auto& ctx = s.rt.context(i);
    auto& slot = s.slots[i];
    slot.clock = std::make_unique<io::asio_clock>(ctx);
    std::uint64_t seed = 0;
    os_random_bytes(&seed, sizeof seed);
    slot.random = std::make_unique<xoshiro_random>(seed);
    slot.engine =
        std::make_unique<ambassador::engine>(*slot.clock, *slot.random, s.shared_targets, eo);
    if (s.observer) slot.engine->set_observer(s.observer);
    // Invocation and proxy answers that are chunked or large stream back to the app.
    http::client_options streaming;
    streaming.stream_response_threshold = s.opts.server_limits.stream_threshold;
    slot.client = std::make_unique<http::client>(ctx, streaming);
    slot.via = std::make_unique<ambassador::client_upstream>(*slot.client);
  }
  s.resolver_clock = std::make_unique<io::asio_clock>(s.rt.context(0));
  for (const auto& b : s.res.bindings) {
    http::client_options co;
    co.tls_ca_file = b.ca_file;
    co.tls_client_cert_file = b.client_cert_file;
    co.tls_client_key_file = b.client_key_file;
    co.tls_verify_peer = !b.insecure_skip_verify;
    state::binding_entry e{b, {}, {}};
    for (std::size_t i = 0; i < s.slots.size(); ++i) {
      e.clients.push_back(std::make_unique<http::client>(s.rt.context(i), co));
      e.vias.push_back(std::make_unique<ambassador::client_upstream>(*e.clients.back()));
    }
    if (!s.bindings.emplace(b.name, std::move(e)).second) {
      return error(errc::config_invalid, "output binding '" + b.name + "' is defined twice");
    }
  }
  for (const auto& e : s.res.endpoints) {
    s.endpoints.erase(e.name);
    s.endpoints.emplace(e.name, endpoint_entry(e));
  }
  if (!s.opts.resolve_file.empty()) {
    s.resolver.add(std::make_shared<ambassador::file_resolver>(
        io::posix_file_system(), s.opts.resolve_file, *s.resolver_clock));
  }
  if (!s.opts.apps.empty())
    s.resolver.add(std::make_shared<ambassador::static_resolver>(s.opts.apps));
  if (s.opts.proxy_port != 0) {
    http::server_options po = s.opts.server_limits;
    po.listen = s.opts.listen_host + ":" + std::to_string(s.opts.proxy_port);
    po.stream_request = [](const http::request&) { return true; };  // every proxied body
    // A plain pointer, no weak_ptr lock per request (an atomic update of the state's
    // use count, a cache line every I/O thread writes): the state owns the proxy
    // server, whose stop() (before the state goes) returns once no handler runs.
    s.proxy = std::make_unique<http::server>(
        s.rt, po, [self = state_.get()](http::request&& req, http::responder r) {
          self->forward(std::move(req), r);
        });
    OUTRIDER_TRY(s.proxy->start());
    logger.info("forward proxy listening on {}", s.proxy->address());
  }
  logger.debug("{} output bindings, {} HTTP endpoints", s.bindings.size(), s.endpoints.size());
  return ok_status();
}

void outbound::add_routes(http::router& api,
                          const std::function<http::handler(http::handler)>& guard) {
  api.add("POST", "/v1.0/bindings/{name}",
          guard([weak = std::weak_ptr(state_)](http::request&& req, http::responder r) {
            if (auto self = weak.lock()) self->binding(std::move(req), r);
          }));
}

http::handler outbound::wrap(http::handler next) {
  // The handler holds the state (after stop() calls get 503 ERR_SHUTTING_DOWN from
  // run_call): a weak_ptr locked per request was an atomic update of the state's
  // use count, a cache line every I/O thread wrote on every request.
  return [self = state_, next = std::move(next)](http::request&& req, http::responder r) {
    if (req.path.starts_with(invoke_prefix)) {
      auto t = ambassador::parse_invoke_target(req.target);
      if (!t) {
        r.send(http::response::from_error(t.error()));
        return;
      }
      self->invoke(std::move(req), r, t->app_id, t->method_target);
      return;
    }
    if (auto id = req.headers.get(app_id_header); id && !id->empty()) {
      const std::string app_id(*id);
      const std::string target = req.target;
      self->invoke(std::move(req), r, app_id, target);
      return;
    }
    next(std::move(req), std::move(r));
  };
}

void outbound::stop() {
  auto& s = *state_;
  if (s.stopped.exchange(true)) return;
  if (s.proxy) s.proxy->stop(std::chrono::seconds(1));
  if (s.slots.empty()) return;
  // Each engine and its timers belong to their context: retire them there.
  struct latch {
    std::mutex m;
    std::condition_variable cv;
    std::size_t left = 0;
  };
  auto l = std::make_shared<latch>();
  l->left = s.slots.size();
  for (std::size_t i = 0; i < s.slots.size(); ++i) {
    s.rt.post(i, [self = state_, l, i] {
      self->slots[i].engine.reset();
      self->slots[i].clock.reset();
      std::lock_guard lock(l->m);
      if (--l->left == 0) l->cv.notify_all();
    });
  }
  std::unique_lock lock(l->m);
  l->cv.wait_for(lock, std::chrono::seconds(5), [&] { return l->left == 0; });
}

bool outbound::streams_request(const http::request& head) {
  if (head.path.starts_with(invoke_prefix)) return true;
  const auto id = head.headers.get(app_id_header);
  return id && !id->empty();
}

std::uint16_t outbound::proxy_port() const {
  return state_->proxy ? state_->proxy->port() : 0;
}

std::size_t outbound::binding_count() const {
  return state_->bindings.size();
}

std::vector<outbound::component_info> outbound::output_bindings() const {
  std::vector<component_info> out;
  for (const auto& [name, b] : state_->bindings) out.push_back({name, "bindings.http"});
  return out;
}

std::vector<std::string> outbound::http_endpoints() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : state_->endpoints) out.push_back(name);
  return out;
}

}  // namespace outrider::sidecar
