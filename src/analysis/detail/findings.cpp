#include "analysis/detail/findings.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <fmt/format.h>
#include <tuple>

namespace outrider::analysis::detail {
namespace {

// Score weights and saturation points (docs/analysis.md, "Score").
constexpr double weight_depth = 0.35;
constexpr double weight_fan_out = 0.15;
constexpr double weight_sync_share = 0.25;
constexpr double weight_availability = 0.15;
constexpr double weight_cycle = 0.10;
constexpr double depth_saturation = 4;
constexpr double fan_out_saturation = 8;
constexpr double unavailability_saturation = 0.05;
constexpr double score_scale = 100;

// Thresholds of the findings (docs/analysis.md, "Findings").
constexpr std::size_t min_chain_depth = 2;
constexpr std::size_t deep_chain = 3;
constexpr double frequent = 0.5;
constexpr std::uint32_t min_fan_out = 3;
constexpr std::uint32_t wide_fan_out = 6;
constexpr double min_sync_share = 0.5;
constexpr double high_sync_share = 0.8;
constexpr double min_unavailability_finding = 0.999;
constexpr double medium_availability = 0.99;
constexpr double high_availability = 0.95;
constexpr double percent = 100;
constexpr double p50 = 0.5;
constexpr double p99 = 0.99;

std::string arrow_path(const std::vector<std::string>& services) {
  std::string out;
  for (std::size_t i = 0; i < services.size(); ++i) {
    if (i > 0) out += " → ";
    out += services[i];
  }
  return out;
}

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

std::string pct(double share) {
  return fmt::format("{}%", static_cast<long long>(std::lround(share * percent)));
}

struct ranked {
  finding f;
  double impact = 0;  // occurrences or calls affected
};

}  // namespace

std::string format_ms(double ms) {
  constexpr double second = 1000;
  constexpr double minute = 60 * second;
  constexpr double hour = 60 * minute;
  constexpr double day = 24 * hour;
  constexpr double small = 10;
  if (ms < small) return fmt::format("{:.1f} ms", ms);
  if (ms < second) return fmt::format("{:.0f} ms", ms);
  if (ms < minute) return fmt::format("{:.1f} s", ms / second);
  if (ms < hour) return fmt::format("{:.1f} min", ms / minute);
  if (ms < day) return fmt::format("{:.1f} h", ms / hour);
  return fmt::format("{:.1f} d", ms / day);
}

std::vector<std::vector<std::string>> find_cycles(
    const std::set<std::pair<std::string, std::string>>& edges) {
  std::map<std::string, std::vector<std::string>> next;
  for (const auto& [from, to] : edges) {
    if (from == to) continue;
    next[from].push_back(to);
    next[to];
  }
  // Tarjan's strongly connected components, with an explicit stack (no recursion:
  // a long chain of services must not exhaust the thread's stack).
  std::vector<std::string> node_names;
  std::map<std::string, int> id;
  for (const auto& [v, out] : next) {
    id.emplace(v, static_cast<int>(node_names.size()));
    node_names.push_back(v);
  }
  const int n = static_cast<int>(node_names.size());
  std::vector<std::vector<int>> adjacent(n);
  for (const auto& [v, out] : next) {
    for (const auto& w : out) adjacent[id[v]].push_back(id[w]);
  }
  std::vector<int> index(n, -1);
  std::vector<int> low(n, 0);
  std::vector<char> on_stack(n, 0);
  std::vector<int> stack;
  std::vector<std::set<std::string>> components;
  int counter = 0;
  std::vector<std::pair<int, std::size_t>> frames;  // (node, next edge to follow)
  auto enter = [&](int v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = 1;
    frames.emplace_back(v, 0);
  };
  for (int root = 0; root < n; ++root) {
    if (index[root] >= 0) continue;
    enter(root);
    while (!frames.empty()) {
      const int v = frames.back().first;
      const std::size_t edge = frames.back().second;
      if (edge < adjacent[v].size()) {
        ++frames.back().second;
        const int w = adjacent[v][edge];
        if (index[w] < 0) {
          enter(w);
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        std::set<std::string> component;
        while (true) {
          const int w = stack.back();
          stack.pop_back();
          on_stack[w] = 0;
          component.insert(node_names[w]);
          if (w == v) break;
        }
        if (component.size() > 1) components.push_back(std::move(component));
      }
      frames.pop_back();
      if (!frames.empty()) {
        const int parent = frames.back().first;
        low[parent] = std::min(low[parent], low[v]);
      }
    }
  }
  // A shortest way back to the smallest member, inside the component.
  std::vector<std::vector<std::string>> cycles;
  for (const auto& component : components) {
    const std::string& start = *component.begin();
    std::map<std::string, std::string> came_from;
    std::deque<std::string> queue{start};
    std::string last;
    while (!queue.empty() && last.empty()) {
      const std::string v = queue.front();
      queue.pop_front();
      for (const auto& w : next[v]) {
        if (!component.contains(w)) continue;
        if (w == start) {
          last = v;
          break;
        }
        if (came_from.emplace(w, v).second) queue.push_back(w);
      }
    }
    std::vector<std::string> cycle;
    for (std::string v = last; v != start; v = came_from[v]) cycle.push_back(v);
    cycle.push_back(start);
    std::reverse(cycle.begin(), cycle.end());
    cycles.push_back(std::move(cycle));
  }
  std::sort(cycles.begin(), cycles.end());
  return cycles;
}

report build_report(report_input& in) {
  const auto& names = in.names;
  report out;
  out.window = in.window;
  out.traces = in.traces;
  out.truncated = in.truncated;

  std::set<std::pair<std::string, std::string>> blocking;
  for (const auto& [from, to] : in.blocking_edges)
    blocking.emplace(names.text(from), names.text(to));
  out.cycles = find_cycles(blocking);
  std::set<std::string> in_cycle;
  for (const auto& c : out.cycles) in_cycle.insert(c.begin(), c.end());

  auto success = [&](name_id callee) {
    auto it = in.callee_calls.find(callee);
    if (it == in.callee_calls.end() || it->second.first == 0) return 1.0;
    return 1.0 - static_cast<double>(it->second.second) / static_cast<double>(it->second.first);
  };

  std::vector<ranked> findings;
  for (auto& [key, e] : in.entries) {
    entry_point ep;
    ep.service = names.text(key.first);
    ep.operation = names.text(key.second);
    const std::string label = ep.service + ": " + ep.operation;
    ep.traces = e.occurrences;
    ep.depth_max = e.depth_max;
    ep.depth_p50 = percentile(e.depths, p50);
    ep.fan_out_max =
        e.fan_outs.empty() ? 0 : *std::max_element(e.fan_outs.begin(), e.fan_outs.end());
    ep.fan_out_p50 = percentile(e.fan_outs, p50);
    ep.sync_share = e.duration_ns > 0 ? std::min(1.0, e.wait_ns / e.duration_ns) : 0;
    ep.p50_ms = percentile(e.durations_ms, p50);
    ep.p99_ms = percentile(e.durations_ms, p99);
    bool touches_cycle = false;
    for (name_id callee : e.blocking_callees) {
      ep.availability *= success(callee);
      ep.blocking_services.push_back(names.text(callee));
      touches_cycle = touches_cycle || in_cycle.contains(names.text(callee));
    }
    std::sort(ep.blocking_services.begin(), ep.blocking_services.end());
    ep.example_trace_ids = e.examples;
    const double d = std::min<double>(ep.depth_p50, depth_saturation) / depth_saturation;
    const double f = std::min<double>(ep.fan_out_p50, fan_out_saturation) / fan_out_saturation;
    const double a = std::min(1.0, (1.0 - ep.availability) / unavailability_saturation);
    const double c = touches_cycle ? 1.0 : 0.0;
    ep.score = static_cast<int>(std::lround(
        score_scale * (weight_depth * d + weight_fan_out * f + weight_sync_share * ep.sync_share +
                       weight_availability * a + weight_cycle * c)));

    // The most frequent deepest chain of at least two hops.
    const std::vector<name_id>* path = nullptr;
    chain_stats* stats = nullptr;
    for (auto& [p, cs] : e.chains) {
      if (p.size() < min_chain_depth + 1) continue;
      if (stats == nullptr || cs.count > stats->count ||
          (cs.count == stats->count && p.size() > path->size())) {
        path = &p;
        stats = &cs;
      }
    }
    if (stats != nullptr) {
      std::vector<std::string> services;
      for (name_id id : *path) services.push_back(names.text(id));
      const std::size_t depth = path->size() - 1;
      const double share = static_cast<double>(stats->count) / static_cast<double>(e.occurrences);
      const double chain_p50 = percentile(stats->latency_ms, p50);
      const double chain_p99 = percentile(stats->latency_ms, p99);
      ranked r;
      r.f.kind = "blocking_chain";
      r.f.level = depth >= deep_chain && share >= frequent   ? severity::high
                  : depth >= deep_chain || share >= frequent ? severity::medium
                                                             : severity::low;
      r.f.text =
          fmt::format("{} is a {}-deep blocking chain in {} of traces of {}; it adds {} at p99; {}",
                      arrow_path(services), depth, pct(share), ep.operation, format_ms(chain_p99),
                      e.is_read ? "consider keeping the data it reads locally, updated by events"
                                : "consider an event");
      r.f.entry_point = label;
      r.f.services = services;
      r.f.metrics = {{"depth", static_cast<double>(depth)},
                     {"share", share},
                     {"traces", static_cast<double>(stats->count)},
                     {"p50Ms", chain_p50},
                     {"p99Ms", chain_p99}};
      r.f.example_trace_ids = stats->examples.ids;
      r.impact = static_cast<double>(stats->count * depth);
      findings.push_back(std::move(r));
    }

    if (e.widest.calls >= min_fan_out) {
      const auto& w = e.widest;
      const bool sequential = w.max_concurrent <= 1;
      ranked r;
      r.f.kind = "blocking_fan_out";
      r.f.level = sequential && w.calls >= wide_fan_out ? severity::high
                  : sequential || !e.is_read            ? severity::medium
                                                        : severity::low;
      r.f.text = fmt::format(
          "{} makes {} blocking calls to {} service{} while answering one request of {}, {}; {}",
          names.text(w.service), w.calls, w.services, w.services == 1 ? "" : "s", label,
          sequential ? "one after another, so their latencies add up"
                     : fmt::format("up to {} at a time, so the slowest sets the latency",
                                   w.max_concurrent),
          e.is_read && !sequential
              ? "fine for composing a page from queries; keep commands out of it"
              : "consider publishing one event the others react to");
      r.f.entry_point = label;
      r.f.services = {names.text(w.service)};
      r.f.metrics = {{"calls", static_cast<double>(w.calls)},
                     {"services", static_cast<double>(w.services)},
                     {"maxConcurrent", static_cast<double>(w.max_concurrent)}};
      r.f.example_trace_ids = {w.example};
      r.impact = static_cast<double>(e.occurrences * w.calls);
      findings.push_back(std::move(r));
    }

    if (ep.sync_share >= min_sync_share && !ep.blocking_services.empty()) {
      ranked r;
      r.f.kind = "sync_wait";
      r.f.level = ep.sync_share >= high_sync_share && !e.is_read ? severity::medium : severity::low;
      r.f.text = fmt::format("{} spends {} of its time waiting on synchronous calls to {}", label,
                             pct(ep.sync_share), name_list(ep.blocking_services));
      r.f.entry_point = label;
      r.f.services = ep.blocking_services;
      r.f.metrics = {{"syncShare", ep.sync_share}, {"traces", static_cast<double>(ep.traces)}};
      r.f.example_trace_ids = ep.example_trace_ids;
      r.impact = static_cast<double>(e.occurrences) * ep.sync_share;
      findings.push_back(std::move(r));
    }

    if (ep.availability < min_unavailability_finding) {
      ranked r;
      r.f.kind = "availability";
      r.f.level = ep.availability < high_availability     ? severity::high
                  : ep.availability < medium_availability ? severity::medium
                                                          : severity::low;
      r.f.text = fmt::format(
          "{} needs {} to answer; their success rates multiply to {:.1f}%; with messages it "
          "could answer while they fail",
          label, name_list(ep.blocking_services), ep.availability * percent);
      r.f.entry_point = label;
      r.f.services = ep.blocking_services;
      r.f.metrics = {{"availability", ep.availability}, {"traces", static_cast<double>(ep.traces)}};
      r.f.example_trace_ids = ep.example_trace_ids;
      r.impact = static_cast<double>(e.occurrences) * (1.0 - ep.availability);
      findings.push_back(std::move(r));
    }
    out.entry_points.push_back(std::move(ep));
  }

  for (const auto& cycle : out.cycles) {
    ranked r;
    r.f.kind = "sync_cycle";
    r.f.level = severity::high;
    std::vector<std::string> closed = cycle;
    closed.push_back(cycle.front());
    std::uint64_t calls = 0;
    for (std::size_t i = 0; i + 1 < closed.size(); ++i) {
      for (auto& [k, e] : in.edges) {
        if (k.kind != edge_kind::sync || names.text(k.from) != closed[i] ||
            names.text(k.to) != closed[i + 1]) {
          continue;
        }
        calls += e.calls;
        for (const auto& id : e.examples.ids) {
          if (r.f.example_trace_ids.size() < in.max_examples &&
              std::find(r.f.example_trace_ids.begin(), r.f.example_trace_ids.end(), id) ==
                  r.f.example_trace_ids.end()) {
            r.f.example_trace_ids.push_back(id);
          }
        }
      }
    }
    r.f.text = fmt::format(
        "{} call each other synchronously: a cycle, so a slowdown or failure in one comes back to "
        "it; break it with an event",
        arrow_path(closed));
    r.f.services = cycle;
    r.f.metrics = {{"services", static_cast<double>(cycle.size())},
                   {"calls", static_cast<double>(calls)}};
    r.impact = static_cast<double>(calls);
    findings.push_back(std::move(r));
  }

  for (auto& [key, c] : in.calls) {
    const std::string caller = names.text(key.caller);
    const std::string callee = names.text(key.callee);
    const std::string op = names.text(key.operation);
    const double not_awaited = static_cast<double>(c.not_awaited) / static_cast<double>(c.calls);
    if (c.not_awaited > 0) {
      ranked r;
      r.f.kind = "not_awaited";
      r.f.level = not_awaited >= frequent ? severity::medium : severity::low;
      r.f.text = fmt::format(
          "{} calls {} ({}) but answers before the call completes in {} of {} calls: nothing "
          "waits for the result; send a message instead",
          caller, callee, op, pct(not_awaited), c.calls);
      r.f.services = {caller, callee};
      r.f.metrics = {{"calls", static_cast<double>(c.calls)},
                     {"notAwaited", static_cast<double>(c.not_awaited)},
                     {"share", not_awaited}};
      r.f.example_trace_ids = c.not_awaited_examples.ids;
      r.impact = static_cast<double>(c.not_awaited);
      findings.push_back(std::move(r));
    }
    const std::uint64_t awaited_commands = c.commands;
    if (awaited_commands > 0 && not_awaited < frequent) {
      const bool accepted = c.accepted * 2 >= c.commands;
      const double call_p99 = percentile(c.latency_ms, p99);
      ranked r;
      r.f.kind = "command_call";
      r.f.level = accepted ? severity::medium : severity::low;
      r.f.text = fmt::format(
          "{} sends a command to {} synchronously ({}, {} calls, {} at p99); {}", caller, callee,
          op, c.commands, format_ms(call_p99),
          accepted ? "it answers 202/204, so there is nothing to wait for: make it a message"
                   : fmt::format("consider a message so {} keeps working while {} is down", caller,
                                 callee));
      r.f.services = {caller, callee};
      r.f.metrics = {{"calls", static_cast<double>(c.commands)},
                     {"accepted", static_cast<double>(c.accepted)},
                     {"p99Ms", call_p99}};
      r.f.example_trace_ids = c.examples.ids;
      r.impact = static_cast<double>(c.commands);
      findings.push_back(std::move(r));
    }
  }

  std::sort(findings.begin(), findings.end(), [](const ranked& a, const ranked& b) {
    if (a.f.level != b.f.level) return a.f.level > b.f.level;
    if (a.impact != b.impact) return a.impact > b.impact;
    return a.f.text < b.f.text;
  });
  for (auto& r : findings) out.findings.push_back(std::move(r.f));
  std::sort(out.entry_points.begin(), out.entry_points.end(),
            [](const entry_point& a, const entry_point& b) {
              return std::tie(b.score, b.traces, a.service, a.operation) <
                     std::tie(a.score, a.traces, b.service, b.operation);
            });
  return out;
}

}  // namespace outrider::analysis::detail
