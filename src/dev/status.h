// system_status: what `outrider dev` shows about the system it runs, as the
// status block, a one-line summary and the JSON of its GET /status endpoint.
// Pure data and formatting (unit-tested); the runner fills it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outrider::dev {

struct process_status {
  std::string name;   // "broker", "collector", "orders", "orders-sidecar"
  std::string state;  // "starting", "running", "restarting", "exited", "stopping", "stopped"
  int pid = 0;        // 0 when not running
  std::uint32_t restarts = 0;
  std::optional<int> last_exit;   // exit code of the last run (128 + signal when killed)
  double restart_in_seconds = 0;  // while "restarting"
};

struct app_status {
  std::string id;
  std::uint16_t app_port = 0;
  std::uint16_t sidecar_port = 0;
  process_status app;
  process_status sidecar;
  // From the sidecar's /v1.0/healthz: "ready", "not ready: <why>", or "unknown".
  std::string health = "unknown";
};

struct queue_status {
  std::string name;
  std::uint64_t ready = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t scheduled = 0;
  std::uint64_t dead_letters = 0;
  std::uint32_t consumers = 0;
};

struct system_status {
  std::string config_file;
  std::optional<process_status> broker;     // absent when disabled
  std::optional<process_status> collector;  // absent when disabled
  std::string broker_address;               // "127.0.0.1:7450"
  std::string otlp_endpoint;                // "http://127.0.0.1:4318"
  std::string trace_ui;                     // "http://127.0.0.1:9411/"
  std::string storefront;                   // "" when no app is public
  std::string status_url;                   // the runner's own endpoint
  std::vector<app_status> apps;
  bool queues_known = false;  // false until the broker answered
  std::vector<queue_status> queues;
  bool stopping = false;
};

std::string to_json(const system_status& s);
// The status block: a header, one line per app, the busiest queues.
std::vector<std::string> to_lines(const system_status& s);
// One line: apps ready, restarts, queue totals, the UI address.
std::string to_summary(const system_status& s);

}  // namespace outrider::dev
