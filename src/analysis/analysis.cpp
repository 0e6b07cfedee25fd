#include "analysis/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "analysis/detail/findings.h"
#include "analysis/detail/stats.h"
#include "tracing/span_store.h"

namespace outrider::analysis {

using tracing::span;
using tracing::span_kind;

std::string_view to_string(edge_kind k) noexcept {
  return k == edge_kind::sync ? "sync" : "async";
}

std::string_view to_string(severity s) noexcept {
  switch (s) {
    case severity::high: return "high";
    case severity::medium: return "medium";
    case severity::low: break;
  }
  return "low";
}

namespace {

using detail::name_id;
constexpr int no_span = -1;
constexpr int leaf_call = -2;  // best[i]: the chain ends in i's own call to an uninstrumented peer
constexpr double nanos_per_milli = 1e6;
constexpr std::int64_t decimal_base = 10;
constexpr std::int64_t largest_status_code = 999;

// How a span was reached from its parent.
enum class hop : std::uint8_t {
  root,         // no parent: the trace's root
  orphan,       // its parent is not in the trace (a partial trace)
  local,        // same service, no call between them
  sync_local,   // a synchronous call within one service (an app and its own sidecar)
  sync_remote,  // a synchronous call from another service: the callee's side
  async         // a message: consumer (or anything a producer's message started)
};

bool starts_region(hop h) {
  return h == hop::root || h == hop::orphan || h == hop::async;
}

const tracing::attribute_value* first_attribute(const span& s,
                                                std::initializer_list<std::string_view> keys) {
  for (auto key : keys) {
    if (const auto* v = s.attribute(key); v != nullptr) return v;
  }
  return nullptr;
}

std::int64_t status_code_of(const span& s) {
  const auto* v = first_attribute(s, {"http.response.status_code", "http.status_code"});
  if (v == nullptr) return 0;
  if (v->kind == tracing::attribute_value::type::int64) return v->int_value;
  if (v->kind == tracing::attribute_value::type::string) {
    std::int64_t out = 0;
    for (char c : v->string_value) {
      if (c < '0' || c > '9') return 0;
      out = out * decimal_base + (c - '0');
      if (out > largest_status_code) return 0;
    }
    return out;
  }
  return 0;
}

constexpr std::int64_t first_server_error_status = 500;

bool is_error(const span& s) {
  return s.status.code == tracing::status_code::error || s.attribute("error") != nullptr ||
         status_code_of(s) >= first_server_error_status;
}

// CLIENT spans to a database or a message broker are a service's own
// storage and transport, not a call to another service.
bool is_service_call(const span& s) {
  return first_attribute(s, {"db.system", "db.system.name", "messaging.system"}) == nullptr;
}

std::int64_t end_of(const span& s) {
  return std::max(s.end_ns, s.start_ns);
}

}  // namespace

struct analyzer::state {
  analyzer_options opts;
  detail::string_table names;

  std::uint64_t traces = 0;
  std::map<name_id, detail::node_stats> nodes;
  std::map<detail::edge_key, detail::edge_stats> edges;
  std::set<std::pair<name_id, name_id>> blocking_edges;  // caller -> callee, blocking, remote
  std::map<name_id, std::pair<std::uint64_t, std::uint64_t>> callee_calls;  // calls, errors
  std::map<std::pair<name_id, name_id>, detail::entry_stats> entries;
  std::map<detail::call_key, detail::call_stats> calls;

  // Messaging across traces: producers by (trace, span id); consumers linking to them.
  struct producer_ref {
    name_id service = 0;
    name_id remote = 0;
    std::int64_t start_ns = 0;
    bool consumed = false;
    std::string example;
  };
  struct link_ref {
    id128 trace;
    std::uint64_t span_id = 0;
    name_id consumer = 0;
    std::int64_t start_ns = 0;
    bool failed = false;
    name_id fallback_from = 0;  // remote service of the consumer, used when the producer is unknown
    std::string example;
  };
  struct id_hash {
    std::size_t operator()(const std::pair<id128, std::uint64_t>& k) const noexcept {
      return std::hash<id128>{}(k.first) ^ (k.second * 0xff51afd7ed558ccdULL);
    }
  };
  std::unordered_map<std::pair<id128, std::uint64_t>, producer_ref, id_hash> producers;
  std::vector<link_ref> links;

  // Scratch for one trace (reused to spare allocations).
  std::unordered_map<std::uint64_t, int> by_id;
  std::unordered_map<std::uint64_t, int> shared_by_id;
  std::vector<int> parent, child_count, child_start, children, order, region, handling, chain, best;
  std::vector<hop> hops;
  std::vector<name_id> service;
  std::vector<char> skip, blocked, has_sync_child, has_async_child, call_blocking;
  struct call {
    int call_span;
    int callee;  // callee entry span, or no_span for an uninstrumented peer
    int handling;
    name_id caller_service;
    name_id callee_service;
    bool blocking;
    bool partial;  // the callee's parent is missing: only the graph counts it
  };
  std::vector<call> trace_calls;
  std::vector<int> call_of_entry;  // per span: index in trace_calls of the call entering it
  std::vector<int> leaf_call_of;   // per span: index of its own leaf call

  void add(std::span<const span> spans);
  void index(std::span<const span> spans);
  void record_call(std::span<const span> spans, const call& c, const std::string& trace_id);
  std::vector<int> awaited_calls;  // indices in trace_calls, by (region, handling)
  void analyse_region(std::span<const span> spans, int root, std::span<const int> calls_of_region,
                      const std::string& trace_id);
  analysis_result finish(time_window window, bool truncated);
};

analyzer::analyzer(analyzer_options opts) : state_(std::make_unique<state>()) {
  state_->opts = opts;
}
analyzer::~analyzer() = default;
analyzer::analyzer(analyzer&&) noexcept = default;
analyzer& analyzer::operator=(analyzer&&) noexcept = default;

void analyzer::add_trace(std::span<const span> spans) {
  if (!spans.empty()) state_->add(spans);
}

analysis_result analyzer::finish(time_window window, bool truncated) {
  return state_->finish(window, truncated);
}

// Builds parent links, hop kinds and a parents-first order of the trace.
void analyzer::state::index(std::span<const span> spans) {
  const int n = static_cast<int>(spans.size());
  by_id.clear();
  shared_by_id.clear();
  skip.assign(n, 0);
  service.resize(n);
  for (int i = 0; i < n; ++i) {
    const span& s = spans[i];
    service[i] = names.service(s.service_name());
    if (s.shared && s.kind == span_kind::server) {
      if (!shared_by_id.emplace(s.span_id, i).second) skip[i] = 1;
    } else if (!by_id.emplace(s.span_id, i).second) {
      skip[i] = 1;  // the same span reported twice
    }
  }
  auto lookup = [&](std::uint64_t id) {
    auto it = by_id.find(id);
    return it == by_id.end() ? no_span : it->second;
  };
  parent.assign(n, no_span);
  hops.assign(n, hop::root);
  for (int i = 0; i < n; ++i) {
    if (skip[i]) continue;
    const span& s = spans[i];
    int p = no_span;
    if (s.shared && s.kind == span_kind::server) {
      p = lookup(s.span_id);  // Zipkin: the server half shares the client's id
      if (p == no_span && s.parent_id != 0) p = lookup(s.parent_id);
    } else if (s.parent_id != 0) {
      // Children of a shared server span name the shared id as their parent.
      if (auto it = shared_by_id.find(s.parent_id);
          it != shared_by_id.end() && service[it->second] == service[i] && it->second != i) {
        p = it->second;
      } else {
        p = lookup(s.parent_id);
      }
    }
    if (p == i) p = no_span;
    parent[i] = p;
    if (p == no_span) {
      hops[i] =
          s.parent_id == 0 && !(s.shared && s.kind == span_kind::server) ? hop::root : hop::orphan;
      continue;
    }
    const span& ps = spans[p];
    const bool same_service = service[p] == service[i];
    if (s.kind == span_kind::consumer ||
        (ps.kind == span_kind::producer && (!same_service || s.kind == span_kind::server))) {
      hops[i] = hop::async;
    } else if (s.kind == span_kind::server) {
      hops[i] = same_service ? hop::sync_local : hop::sync_remote;
    } else if (!same_service) {
      hops[i] = hop::sync_remote;  // a callee that records no SERVER span
    } else {
      hops[i] = hop::local;
    }
  }
  // Children lists (CSR), each sorted by start time, then a parents-first order.
  child_count.assign(n + 1, 0);
  for (int i = 0; i < n; ++i) {
    if (!skip[i] && parent[i] != no_span) ++child_count[parent[i]];
  }
  child_start.assign(n + 1, 0);
  for (int i = 0; i < n; ++i) child_start[i + 1] = child_start[i] + child_count[i];
  children.assign(child_start[n], 0);
  std::vector<int>& fill = child_count;  // reused as the insertion cursor
  for (int i = 0; i < n; ++i) fill[i] = child_start[i];
  for (int i = 0; i < n; ++i) {
    if (!skip[i] && parent[i] != no_span) children[fill[parent[i]]++] = i;
  }
  for (int i = 0; i < n; ++i) {
    if (child_start[i + 1] - child_start[i] > 1) {
      std::sort(children.begin() + child_start[i], children.begin() + child_start[i + 1],
                [&](int a, int b) {
                  return spans[a].start_ns != spans[b].start_ns
                             ? spans[a].start_ns < spans[b].start_ns
                             : spans[a].span_id < spans[b].span_id;
                });
    }
  }
  order.clear();
  for (int i = 0; i < n; ++i) {
    if (!skip[i] && parent[i] == no_span) order.push_back(i);
  }
  // Spans in a parent cycle (malformed data) are never reached and stay out.
  for (std::size_t k = 0; k < order.size(); ++k) {
    const int i = order[k];
    for (int c = child_start[i]; c < child_start[i + 1]; ++c) order.push_back(children[c]);
  }
}

void analyzer::state::add(std::span<const span> spans) {
  ++traces;
  index(spans);
  const int n = static_cast<int>(spans.size());
  const std::string trace_id = tracing::trace_id_hex(spans.front().trace_id);

  region.assign(n, no_span);
  handling.assign(n, no_span);
  has_sync_child.assign(n, 0);
  has_async_child.assign(n, 0);
  for (int i : order) {
    const int p = parent[i];
    region[i] = starts_region(hops[i]) ? i : region[p];
    handling[i] = (starts_region(hops[i]) || hops[i] == hop::sync_remote) ? i : handling[p];
    if (p != no_span) {
      if (hops[i] == hop::sync_local || hops[i] == hop::sync_remote) has_sync_child[p] = 1;
      if (hops[i] == hop::async) has_async_child[p] = 1;
    }
  }

  // Nodes.
  for (int i : order) {
    auto& node = nodes[service[i]];
    ++node.spans;
    if (is_error(spans[i])) ++node.errors;
  }

  // Calls: the callee side of each remote hop, and CLIENT spans to uninstrumented peers.
  trace_calls.clear();
  call_of_entry.assign(n, no_span);
  leaf_call_of.assign(n, no_span);
  const std::int64_t slack = opts.not_awaited_slack_ns;
  for (int i : order) {
    const span& s = spans[i];
    const int p = parent[i];
    if (hops[i] == hop::sync_remote) {
      const int call_span = spans[p].kind == span_kind::client ? p : i;
      const int h = handling[p];
      call c{call_span,  i,          h,
             service[p], service[i], end_of(spans[call_span]) <= end_of(spans[h]) + slack,
             false};
      call_of_entry[i] = static_cast<int>(trace_calls.size());
      trace_calls.push_back(c);
    } else if (s.kind == span_kind::client && !has_sync_child[i] && is_service_call(s)) {
      name_id peer = names.peer(s.remote_endpoint);
      if (peer == 0 || peer == service[i]) continue;
      const int h = handling[i];
      call c{i, no_span, h, service[i], peer, end_of(s) <= end_of(spans[h]) + slack, false};
      leaf_call_of[i] = static_cast<int>(trace_calls.size());
      trace_calls.push_back(c);
    } else if (hops[i] == hop::orphan && s.kind == span_kind::server) {
      // A partial trace: the caller is known only by name.
      name_id from = names.peer(s.remote_endpoint);
      if (from == 0 || from == service[i]) continue;
      call c{i, i, i, from, service[i], true, true};
      trace_calls.push_back(c);
    }
  }
  for (const auto& c : trace_calls) record_call(spans, c, trace_id);

  // Blocked: reached from the region's root through blocking calls only.
  blocked.assign(n, 0);
  for (int i : order) {
    if (starts_region(hops[i])) {
      blocked[i] = 1;
    } else if (hops[i] == hop::sync_remote) {
      blocked[i] = blocked[parent[i]] && trace_calls[call_of_entry[i]].blocking;
    } else {
      blocked[i] = blocked[parent[i]];
    }
  }

  // Chain depth, bottom-up: the most blocking remote hops below a span in its region.
  chain.assign(n, 0);
  best.assign(n, no_span);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const int i = *it;
    if (leaf_call_of[i] != no_span && trace_calls[leaf_call_of[i]].blocking) {
      chain[i] = 1;
      best[i] = leaf_call;
    }
    for (int k = child_start[i]; k < child_start[i + 1]; ++k) {
      const int c = children[k];
      int depth = 0;
      switch (hops[c]) {
        case hop::root:
        case hop::orphan:
        case hop::async: continue;
        case hop::sync_remote:
          if (!trace_calls[call_of_entry[c]].blocking) continue;
          depth = 1 + chain[c];
          break;
        case hop::local:
        case hop::sync_local: depth = chain[c]; break;
      }
      if (depth > chain[i]) {
        chain[i] = depth;
        best[i] = c;
      }
    }
  }

  // Async edges: a message from the parent's service, or through a link.
  for (int i : order) {
    const span& s = spans[i];
    if (hops[i] == hop::async) {
      const int p = parent[i];
      detail::edge_key key{service[p], service[i], edge_kind::async};
      auto& e = edges[key];
      ++e.calls;
      if (is_error(s)) ++e.errors;
      if (s.start_ns > 0 && spans[p].start_ns > 0) {
        e.latency_ms.push_back(static_cast<double>(s.start_ns - spans[p].start_ns) /
                               nanos_per_milli);
      }
      e.add_example(trace_id, opts.max_examples);
    } else if ((hops[i] == hop::root || hops[i] == hop::orphan) && s.kind == span_kind::consumer) {
      name_id fallback = names.peer(s.remote_endpoint);
      if (s.links.empty()) {
        if (fallback != 0) {
          links.push_back(
              link_ref{id128{}, 0, service[i], s.start_ns, is_error(s), fallback, trace_id});
        }
      } else {
        for (const auto& l : s.links) {
          links.push_back(link_ref{l.trace_id, l.span_id, service[i], s.start_ns, is_error(s),
                                   fallback, trace_id});
        }
      }
    }
    if (s.kind == span_kind::producer) {
      producer_ref ref{service[i], names.peer(s.remote_endpoint), s.start_ns,
                       has_async_child[i] != 0, trace_id};
      producers.emplace(std::pair{s.trace_id, s.span_id}, std::move(ref));
    }
  }

  // Awaited calls grouped by region, then by handling, so each region finds its own at once.
  awaited_calls.clear();
  for (int k = 0; k < static_cast<int>(trace_calls.size()); ++k) {
    if (!trace_calls[k].partial && trace_calls[k].blocking) awaited_calls.push_back(k);
  }
  auto region_of_call = [&](int k) { return region[trace_calls[k].handling]; };
  std::sort(awaited_calls.begin(), awaited_calls.end(), [&](int a, int b) {
    return std::pair{region_of_call(a), trace_calls[a].handling} <
           std::pair{region_of_call(b), trace_calls[b].handling};
  });
  for (int i : order) {
    if (!starts_region(hops[i])) continue;
    auto first = std::partition_point(awaited_calls.begin(), awaited_calls.end(),
                                      [&](int k) { return region_of_call(k) < i; });
    auto last = std::partition_point(first, awaited_calls.end(),
                                     [&](int k) { return region_of_call(k) == i; });
    analyse_region(spans, i, std::span<const int>(first, last), trace_id);
  }
}

void analyzer::state::record_call(std::span<const span> spans, const call& c,
                                  const std::string& trace_id) {
  const span& cs = spans[c.call_span];
  const span* callee = c.callee == no_span ? nullptr : &spans[c.callee];
  const bool failed = is_error(cs) || (callee != nullptr && is_error(*callee));
  const double ms = static_cast<double>(cs.duration_ns()) / nanos_per_milli;

  auto& e = edges[detail::edge_key{c.caller_service, c.callee_service, edge_kind::sync}];
  ++e.calls;
  if (failed) ++e.errors;
  e.latency_ms.push_back(ms);
  e.add_example(trace_id, opts.max_examples);

  auto& cc = callee_calls[c.callee_service];
  ++cc.first;
  if (failed) ++cc.second;
  if (c.blocking) blocking_edges.emplace(c.caller_service, c.callee_service);

  if (c.partial) return;  // no caller span: nothing more to say about the call
  const std::string& op = callee != nullptr ? callee->name : cs.name;
  auto& k = calls[detail::call_key{c.caller_service, c.callee_service, names.operation(op)}];
  ++k.calls;
  k.latency_ms.push_back(ms);
  if (!c.blocking) {
    ++k.not_awaited;
    k.add_not_awaited_example(trace_id, opts.max_examples);
  }
  if (detail::is_command(cs) || (callee != nullptr && detail::is_command(*callee))) {
    ++k.commands;
    k.add_example(trace_id, opts.max_examples);
    const std::int64_t status =
        std::max(status_code_of(cs), callee != nullptr ? status_code_of(*callee) : 0);
    if (detail::is_accepted_status(status)) ++k.accepted;
  }
}

void analyzer::state::analyse_region(std::span<const span> spans, int root,
                                     std::span<const int> calls_of_region,
                                     const std::string& trace_id) {
  const span& r = spans[root];
  auto& entry = entries[{service[root], names.operation(r.name)}];
  if (entry.occurrences == 0) entry.is_read = detail::is_read(r);
  ++entry.occurrences;
  entry.durations_ms.push_back(static_cast<double>(r.duration_ns()) / nanos_per_milli);

  // Depth and the deepest chain's path of services.
  const auto depth = static_cast<std::uint32_t>(chain[root]);
  entry.depths.push_back(depth);
  if (depth > entry.depth_max || entry.examples.empty()) {
    if (depth > entry.depth_max) entry.examples.clear();
    entry.depth_max = std::max(entry.depth_max, depth);
  }
  if (depth == entry.depth_max && entry.examples.size() < opts.max_examples &&
      std::find(entry.examples.begin(), entry.examples.end(), trace_id) == entry.examples.end()) {
    entry.examples.push_back(trace_id);
  }
  if (depth > 0) {
    std::vector<name_id> path{service[root]};
    double first_hop_ms = -1;
    for (int x = root; best[x] != no_span;) {
      const int c = best[x];
      const call* hop_call = nullptr;
      if (c == leaf_call) {
        hop_call = &trace_calls[leaf_call_of[x]];
      } else if (hops[c] == hop::sync_remote) {
        hop_call = &trace_calls[call_of_entry[c]];
      }
      if (hop_call != nullptr) {
        path.push_back(hop_call->callee_service);
        if (first_hop_ms < 0) {
          first_hop_ms =
              static_cast<double>(spans[hop_call->call_span].duration_ns()) / nanos_per_milli;
        }
      }
      if (c == leaf_call) break;
      x = c;
    }
    auto& chain_stats = entry.chains[path];
    ++chain_stats.count;
    chain_stats.latency_ms.push_back(std::max(0.0, first_hop_ms));
    chain_stats.add_example(trace_id, opts.max_examples);
  }

  // Calls made in this region, grouped by the handling (one service answering one request).
  std::vector<const call*> region_calls;  // by handling
  region_calls.reserve(calls_of_region.size());
  for (int k : calls_of_region) {
    const call& c = trace_calls[k];
    region_calls.push_back(&c);
    if (blocked[c.call_span]) entry.blocking_callees.insert(c.callee_service);
  }
  std::uint32_t fan_out = 0;
  detail::fan_out_detail widest;
  for (std::size_t a = 0; a < region_calls.size();) {
    std::size_t b = a;
    while (b < region_calls.size() && region_calls[b]->handling == region_calls[a]->handling) ++b;
    const auto count = static_cast<std::uint32_t>(b - a);
    if (count > fan_out) {
      fan_out = count;
      widest = detail::fan_out_detail{};
      widest.calls = count;
      widest.service = region_calls[a]->caller_service;
      std::set<name_id> distinct;
      std::vector<std::pair<std::int64_t, std::int64_t>> intervals;
      for (std::size_t k = a; k < b; ++k) {
        distinct.insert(region_calls[k]->callee_service);
        const span& cs = spans[region_calls[k]->call_span];
        intervals.emplace_back(cs.start_ns, end_of(cs));
      }
      widest.services = static_cast<std::uint32_t>(distinct.size());
      widest.max_concurrent = detail::max_overlap(intervals);
    }
    a = b;
  }
  entry.fan_outs.push_back(fan_out);
  if (fan_out > entry.widest.calls) {
    entry.widest = widest;
    entry.widest.example = trace_id;
  }

  // Waiting: the union of the root service's blocking calls, clipped to the root span.
  std::vector<std::pair<std::int64_t, std::int64_t>> waits;
  const std::int64_t begin = r.start_ns;
  const std::int64_t finish = end_of(r);
  for (const call* c : region_calls) {
    if (c->handling != root) continue;
    const span& cs = spans[c->call_span];
    const std::int64_t from = std::max(cs.start_ns, begin);
    const std::int64_t to = std::min(end_of(cs), finish);
    if (to > from) waits.emplace_back(from, to);
  }
  entry.wait_ns += static_cast<double>(detail::union_length(waits));
  entry.duration_ns += static_cast<double>(finish - begin);
}

analysis_result analyzer::state::finish(time_window window, bool truncated) {
  // Messages whose producer is in another trace (links), and producers no consumer answered.
  for (const auto& l : links) {
    name_id from = l.fallback_from;
    std::int64_t producer_start = 0;
    if (auto it = producers.find({l.trace, l.span_id}); l.span_id != 0 && it != producers.end()) {
      from = it->second.service;
      producer_start = it->second.start_ns;
      it->second.consumed = true;
    }
    if (from == 0) continue;
    auto& e = edges[detail::edge_key{from, l.consumer, edge_kind::async}];
    ++e.calls;
    if (l.failed) ++e.errors;
    if (producer_start > 0 && l.start_ns > 0) {
      e.latency_ms.push_back(static_cast<double>(l.start_ns - producer_start) / nanos_per_milli);
    }
    e.add_example(l.example, opts.max_examples);
  }
  for (const auto& [key, p] : producers) {
    if (p.consumed || p.remote == 0 || p.remote == p.service) continue;
    auto& e = edges[detail::edge_key{p.service, p.remote, edge_kind::async}];
    ++e.calls;
    e.add_example(p.example, opts.max_examples);
  }

  analysis_result out;
  // The graph.
  std::set<name_id> services;
  for (const auto& [id, n] : nodes) services.insert(id);
  for (const auto& [k, e] : edges) {
    services.insert(k.from);
    services.insert(k.to);
  }
  for (name_id id : services) {
    graph_node node;
    node.service = names.text(id);
    if (auto it = nodes.find(id); it != nodes.end()) {
      node.spans = it->second.spans;
      node.errors = it->second.errors;
    }
    out.graph.nodes.push_back(std::move(node));
  }
  for (auto& [k, e] : edges) {
    if (k.from == k.to && k.kind == edge_kind::sync) continue;
    graph_edge edge;
    edge.from = names.text(k.from);
    edge.to = names.text(k.to);
    edge.kind = k.kind;
    edge.calls = e.calls;
    edge.errors = e.errors;
    edge.p50_ms = detail::percentile(e.latency_ms, 0.5);
    edge.p99_ms = detail::percentile(e.latency_ms, 0.99);
    out.graph.edges.push_back(std::move(edge));
  }
  auto by_name = [](const auto& a, const auto& b) { return a.service < b.service; };
  std::sort(out.graph.nodes.begin(), out.graph.nodes.end(), by_name);
  std::sort(out.graph.edges.begin(), out.graph.edges.end(), [](const auto& a, const auto& b) {
    return std::tie(a.from, a.to, a.kind) < std::tie(b.from, b.to, b.kind);
  });

  // The report.
  detail::report_input in{names, window, truncated,      traces,       entries,
                          calls, edges,  blocking_edges, callee_calls, opts.max_examples};
  out.coupling = detail::build_report(in);
  return out;
}

analysis_result analyze(const std::vector<std::vector<span>>& traces, time_window window,
                        analyzer_options opts) {
  analyzer a(opts);
  for (const auto& t : traces) a.add_trace(t);
  return a.finish(window);
}

result<analysis_result> analyze_store(const tracing::span_store& store, std::int64_t end_ms,
                                      std::int64_t lookback_ms, std::size_t max_traces,
                                      analyzer_options opts) {
  if (end_ms <= 0) return error(errc::invalid_argument, "endTs must be positive");
  if (lookback_ms <= 0) return error(errc::invalid_argument, "lookback must be positive");
  if (max_traces == 0) return error(errc::invalid_argument, "max traces must be positive");
  lookback_ms = std::min(lookback_ms, end_ms);
  tracing::trace_query q;
  q.end_ts_ms = end_ms;
  q.lookback_ms = lookback_ms;
  // One more than allowed tells whether the window held more.
  q.limit = max_traces == std::numeric_limits<std::size_t>::max() ? max_traces : max_traces + 1;
  auto traces = store.find_traces(q);
  if (!traces) return std::move(traces).error();
  const bool truncated = traces->size() > max_traces;
  if (truncated) traces->resize(max_traces);
  analyzer a(opts);
  for (const auto& t : *traces) a.add_trace(t);
  return a.finish(time_window{end_ms - lookback_ms, end_ms}, truncated);
}

}  // namespace outrider::analysis
