#include "dev/status.h"

#include <algorithm>
#include <fmt/format.h>

#include "base/json_text.h"

namespace outrider::dev {
namespace {

// Queues listed in the block at most (the busiest first).
constexpr std::size_t max_queue_lines = 6;

void append_process(std::string& out, const process_status& p) {
  out += "{\"name\":";
  append_json_string(out, p.name);
  out += ",\"state\":";
  append_json_string(out, p.state);
  out += fmt::format(",\"pid\":{},\"restarts\":{}", p.pid, p.restarts);
  if (p.last_exit) out += fmt::format(",\"lastExit\":{}", *p.last_exit);
  if (p.state == "restarting") out += fmt::format(",\"restartIn\":{:.1f}", p.restart_in_seconds);
  out += '}';
}

void append_field(std::string& out, std::string_view key, const std::string& value) {
  out += ',';
  append_json_string(out, key);
  out += ':';
  append_json_string(out, value);
}

std::string describe(const process_status& p) {
  if (p.state == "restarting") return fmt::format("restart in {:.1f}s", p.restart_in_seconds);
  if (p.state == "exited" && p.last_exit) return fmt::format("exited ({})", *p.last_exit);
  return p.state;
}

}  // namespace

std::string to_json(const system_status& s) {
  std::string out = "{\"config\":";
  append_json_string(out, s.config_file);
  append_field(out, "brokerAddress", s.broker_address);
  append_field(out, "otlpEndpoint", s.otlp_endpoint);
  append_field(out, "traceUi", s.trace_ui);
  append_field(out, "storefront", s.storefront);
  append_field(out, "statusUrl", s.status_url);
  out += fmt::format(",\"stopping\":{}", s.stopping ? "true" : "false");
  if (s.broker) {
    out += ",\"broker\":";
    append_process(out, *s.broker);
  }
  if (s.collector) {
    out += ",\"collector\":";
    append_process(out, *s.collector);
  }
  out += ",\"apps\":[";
  for (std::size_t i = 0; i < s.apps.size(); ++i) {
    const auto& a = s.apps[i];
    if (i > 0) out += ',';
    out += "{\"id\":";
    append_json_string(out, a.id);
    out += fmt::format(",\"appPort\":{},\"sidecarPort\":{}", a.app_port, a.sidecar_port);
    append_field(out, "health", a.health);
    out += ",\"app\":";
    append_process(out, a.app);
    out += ",\"sidecar\":";
    append_process(out, a.sidecar);
    out += '}';
  }
  out += "],\"queues\":";
  if (!s.queues_known) {
    out += "null";
  } else {
    out += '[';
    for (std::size_t i = 0; i < s.queues.size(); ++i) {
      const auto& q = s.queues[i];
      if (i > 0) out += ',';
      out += "{\"name\":";
      append_json_string(out, q.name);
      out += fmt::format(
          ",\"ready\":{},\"inFlight\":{},\"scheduled\":{},\"deadLetters\":{},\"consumers\":{}}}",
          q.ready, q.in_flight, q.scheduled, q.dead_letters, q.consumers);
    }
    out += ']';
  }
  out += "}";
  return out;
}

std::vector<std::string> to_lines(const system_status& s) {
  std::vector<std::string> lines;
  std::string head = "outrider dev";
  if (s.stopping) head += " (stopping)";
  if (!s.storefront.empty()) head += "  storefront " + s.storefront;
  if (!s.trace_ui.empty()) head += "  traces " + s.trace_ui;
  lines.push_back(head);
  std::size_t width = 3;
  for (const auto& a : s.apps) width = std::max(width, a.id.size());
  lines.push_back(fmt::format("  {:<{}}  {:<18} {:<24} {:>8}  {:>5}  {:<18}", "APP", width, "STATE",
                              "HEALTH", "RESTARTS", "PORT", "SIDECAR"));
  for (const auto& a : s.apps) {
    std::string sidecar = fmt::format("{} {}", a.sidecar_port, describe(a.sidecar));
    lines.push_back(fmt::format("  {:<{}}  {:<18} {:<24} {:>8}  {:>5}  {:<18}", a.id, width,
                                describe(a.app), a.health.substr(0, 24),
                                a.app.restarts + a.sidecar.restarts, a.app_port, sidecar));
  }
  if (s.broker && s.broker->state != "running") lines.push_back("  broker: " + describe(*s.broker));
  if (s.collector && s.collector->state != "running")
    lines.push_back("  collector: " + describe(*s.collector));
  if (s.queues_known) {
    std::vector<queue_status> busy = s.queues;
    std::sort(busy.begin(), busy.end(), [](const queue_status& x, const queue_status& y) {
      return x.ready + x.in_flight + x.scheduled + x.dead_letters >
             y.ready + y.in_flight + y.scheduled + y.dead_letters;
    });
    if (busy.size() > max_queue_lines) busy.resize(max_queue_lines);
    if (busy.empty()) lines.push_back("  queues: none yet");
    for (const auto& q : busy) {
      lines.push_back(fmt::format("  queue {}: {} ready, {} in flight, {} scheduled, {} dead",
                                  q.name, q.ready, q.in_flight, q.scheduled, q.dead_letters));
    }
  }
  for (auto& l : lines) l.erase(l.find_last_not_of(' ') + 1);
  return lines;
}

std::string to_summary(const system_status& s) {
  std::size_t ready = 0;
  std::uint32_t restarts = 0;
  for (const auto& a : s.apps) {
    if (a.health == "ready") ++ready;
    restarts += a.app.restarts + a.sidecar.restarts;
  }
  std::string out = fmt::format("{}/{} apps ready, {} restart(s)", ready, s.apps.size(), restarts);
  if (s.queues_known) {
    std::uint64_t r = 0, f = 0, sch = 0, dead = 0;
    for (const auto& q : s.queues) {
      r += q.ready;
      f += q.in_flight;
      sch += q.scheduled;
      dead += q.dead_letters;
    }
    out += fmt::format("; queues: {} ready, {} in flight, {} scheduled, {} dead", r, f, sch, dead);
  }
  if (!s.trace_ui.empty()) out += "; traces " + s.trace_ui;
  return out;
}

}  // namespace outrider::dev
