// outbound: the sidecar's ambassador — service invocation
// (/v1.0/invoke/{app-id}/method/{path} and the dapr-app-id header), output
// bindings (POST /v1.0/bindings/{name}, bindings.http) and the forward-proxy
// listener (--proxy-port) — on top of ambassador::engine, which applies the
// resiliency policies. Logic lives in src/ambassador; this file wires it to
// the sidecar's server, router and runtime.
//
// Invocation hops: the app's request reaches this sidecar; a local app id
// (our own) goes straight to our app at /{path}; an HTTPEndpoint name goes to
// its baseUrl; any other app id is resolved (resolver chain: --resolve-file,
// then the static `apps:` table) to the target's sidecar, which receives the
// same /v1.0/invoke path with the `outrider-invoke-from` marker header and
// calls its own app at /{path} (with `dapr-caller-app-id`).
//
// Threading: every runtime context has its own engine (with its clock and
// randomness) and HTTP clients (keep-alive pools); a call runs on the context
// of the connection that received it, with no thread hop. The engines share
// one ambassador::target_table, so circuit breakers, retry budgets and metrics
// are per target across contexts. stop() tears each engine down on its context.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ambassador/engine.h"
#include "base/result.h"
#include "http/router.h"
#include "http/server.h"
#include "metrics/registry.h"

namespace outrider::io {
class runtime;
}  // namespace outrider::io

namespace outrider::sidecar {

struct outbound_options {
  std::string app_id;
  http::url app_url;                                       // port 0: no app
  std::string app_api_token;                               // sent to our app as dapr-api-token
  std::string api_token;                                   // required from our app (dapr-api-token)
  nanoseconds inbound_timeout = std::chrono::seconds(60);  // calls from other sidecars to our app
  nanoseconds default_timeout = std::chrono::seconds(60);  // calls without a timeout policy
  std::vector<std::string> resources_paths;
  std::string resolve_file;
  std::map<std::string, std::string> apps;  // static name resolution
  std::uint16_t proxy_port = 0;             // 0: no forward proxy
  std::string listen_host = "127.0.0.1";
  http::server_options server_limits;  // header/body limits for the proxy listener
};

// The marker a sidecar puts on an invocation it forwards to another sidecar.
inline constexpr std::string_view invoke_from_header = "outrider-invoke-from";

struct sidecar_options;
// The outbound options a sidecar with `o` uses (its app at `app_url`, its API
// server's limits for the proxy listener).
outbound_options outbound_options_for(const sidecar_options& o, const http::url& app_url,
                                      const http::server_options& limits);

class outbound {
 public:
  // `rt` and `metrics` must outlive this object.
  outbound(io::runtime& rt, outbound_options opts, metrics::registry& metrics);
  ~outbound();
  outbound(const outbound&) = delete;
  outbound& operator=(const outbound&) = delete;

  // Loads the resources (bindings, HTTPEndpoints, Resiliency), builds the
  // engine and clients and, if configured, starts the forward proxy.
  // Errors: config_invalid / not_found (resources), unavailable (proxy port).
  status start();
  // Adds POST /v1.0/bindings/{name}, each handler passed through `guard`.
  void add_routes(http::router& api, const std::function<http::handler(http::handler)>& guard);
  // The sidecar API handler: invocation (by path or dapr-app-id header) is
  // handled here, everything else goes to `next`.
  http::handler wrap(http::handler next);
  // Stops the proxy listener and tears down the engine. Idempotent.
  void stop();

  // The sidecar API server's streaming predicate (server_options::stream_request):
  // invocation requests (by path or dapr-app-id header) may stream their bodies.
  static bool streams_request(const http::request& head);

  std::uint16_t proxy_port() const;
  // Tracing hook (a CLIENT span per attempt); set before start().
  void set_observer(std::shared_ptr<ambassador::call_observer> observer);
  std::size_t binding_count() const;
  // For /v1.0/metadata: the loaded output bindings ({name, type}) and
  // HTTPEndpoint names, sorted by name. Valid after start().
  struct component_info {
    std::string name;
    std::string type;  // "bindings.http"
  };
  std::vector<component_info> output_bindings() const;
  std::vector<std::string> http_endpoints() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace outrider::sidecar
