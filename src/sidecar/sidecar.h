// sidecar: the Dapr v1.0 compatible pub/sub API next to one app, and delivery
// of subscribed messages to that app. See README.md for the endpoints.
//
//   io::runtime rt(2); rt.start();
//   metrics::registry reg;
//   sidecar sc(rt, opts, {{"pubsub", "embedded", backend}}, reg);
//   sc.start();   // binds, then discovers subscriptions and consumes in the background
//   ...
//   sc.stop();    // stops taking requests, finishes or releases deliveries
//
// Threading: start()/stop() from one owner thread that is not a runtime
// thread. Handlers run on the HTTP server's threads; calls to the app and all
// timers run on runtime context 0, except, given a delivery runtime, the
// deliveries' calls to the app, which run on its context 0 (with the backend's
// subscriptions: see backends::backend_context::delivery_runtime); backend
// callbacks on the backend's threads. Delivery state is guarded by one mutex,
// never held while calling out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "base/result.h"
#include "metrics/registry.h"
#include "sidecar/options.h"

namespace outrider::io {
class runtime;
}  // namespace outrider::io

namespace outrider::sidecar {

struct pubsub_component {
  std::string name;  // what apps put in /v1.0/publish/{name}/...
  std::string type;  // registry type, reported by /v1.0/metadata as "pubsub.<type>"
  std::shared_ptr<backends::backend> backend;  // the caller closes it after stop()
};

class sidecar {
 public:
  // `rt`, `delivery_rt` (when given) and `metrics` must outlive the sidecar.
  // `delivery_rt`: where the app calls of deliveries run (give the backends the
  // same one, so a delivery, its app call and its ack stay on one thread and
  // off the API's); null: on `rt`. REQUIRES: at least one component.
  sidecar(io::runtime& rt, sidecar_options options, std::vector<pubsub_component> components,
          metrics::registry& metrics, io::runtime* delivery_rt = nullptr);
  ~sidecar();  // stop()
  sidecar(const sidecar&) = delete;
  sidecar& operator=(const sidecar&) = delete;

  // Binds the API (and metrics) ports and starts serving; then, in the
  // background, asks the app for its subscriptions (GET /dapr/subscribe,
  // retried until the app answers), adds the declarative ones and starts
  // consuming. Errors: the server's (unavailable: port in use), config_invalid
  // (a declarative subscription names an unknown pub/sub).
  status start();

  // Stops taking requests, lets deliveries in flight finish (up to
  // shutdown_grace), releases the rest to the backend without penalty and
  // stops consuming. Idempotent.
  void stop();

  std::uint16_t http_port() const;
  std::uint16_t metrics_port() const;   // 0 when metrics are not served
  std::uint16_t app_otlp_port() const;  // 0 when the app OTLP receiver is off
  std::uint16_t statsd_port() const;    // 0 when StatsD is not received
  // True once subscriptions are established (what /v1.0/healthz reports with
  // backend and app health).
  bool subscribed() const;
  bool app_healthy() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace outrider::sidecar
