// Accumulators of the analyzer and the small numeric helpers they use.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "analysis/analysis.h"
#include "tracing/span.h"

namespace outrider::analysis::detail {

using name_id = std::uint32_t;  // 0: no name

// Interned names (services and operations share one table).
class string_table {
 public:
  string_table();
  name_id intern(std::string_view text);
  // A span's service: "unknown" when it has none.
  name_id service(std::string_view text) { return intern(text.empty() ? "unknown" : text); }
  name_id operation(std::string_view text) { return intern(text); }
  // The remote side of a span: its service name, else its address; 0 when neither is
  // known or it is a loopback address ("localhost", 127.x, ::1): the same host, i.e. a
  // sidecar and its own app, not another service.
  name_id peer(const tracing::endpoint& e);
  const std::string& text(name_id id) const { return texts_[id]; }

 private:
  std::vector<std::string> texts_;
  std::unordered_map<std::string, name_id> ids_;
};

// "localhost", 127.0.0.0/8 or ::1 (with or without brackets).
bool is_loopback(std::string_view host);

// Keeps the first `max` distinct trace ids.
struct example_list {
  std::vector<std::string> ids;
  void add(const std::string& id, std::size_t max);
};

struct node_stats {
  std::uint64_t spans = 0;
  std::uint64_t errors = 0;
};

struct edge_key {
  name_id from = 0;
  name_id to = 0;
  edge_kind kind = edge_kind::sync;
  auto operator<=>(const edge_key&) const = default;
};

struct edge_stats {
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  std::vector<double> latency_ms;
  example_list examples;
  void add_example(const std::string& id, std::size_t max) { examples.add(id, max); }
};

// Calls from one service to one operation of another.
struct call_key {
  name_id caller = 0;
  name_id callee = 0;
  name_id operation = 0;
  auto operator<=>(const call_key&) const = default;
};

struct call_stats {
  std::uint64_t calls = 0;
  std::uint64_t not_awaited = 0;  // the caller answered before the call completed
  std::uint64_t commands = 0;     // command-like (write method or command verb)
  std::uint64_t accepted = 0;     // ... answered 202 or 204
  std::vector<double> latency_ms;
  example_list examples;              // command-like calls
  example_list not_awaited_examples;  // not-awaited calls
  void add_example(const std::string& id, std::size_t max) { examples.add(id, max); }
  void add_not_awaited_example(const std::string& id, std::size_t max) {
    not_awaited_examples.add(id, max);
  }
};

struct chain_stats {
  std::uint64_t count = 0;
  std::vector<double> latency_ms;  // the first hop's call: how long the entry waited on the chain
  example_list examples;
  void add_example(const std::string& id, std::size_t max) { examples.add(id, max); }
};

// The handling with the most blocking calls of an entry point.
struct fan_out_detail {
  std::uint32_t calls = 0;
  std::uint32_t services = 0;
  std::uint32_t max_concurrent = 0;
  name_id service = 0;
  std::string example;
};

struct entry_stats {
  std::uint64_t occurrences = 0;
  bool is_read = false;
  std::vector<std::uint32_t> depths;
  std::vector<std::uint32_t> fan_outs;
  std::vector<double> durations_ms;
  std::uint32_t depth_max = 0;
  std::vector<std::string> examples;  // traces with the deepest chain
  double wait_ns = 0;
  double duration_ns = 0;
  std::set<name_id> blocking_callees;
  std::map<std::vector<name_id>, chain_stats> chains;  // deepest chain's services -> stats
  fan_out_detail widest;
};

// Nearest-rank percentile (q in (0, 1]); 0 for no samples. Reorders `v`.
double percentile(std::vector<double>& v, double q);
std::uint32_t percentile(std::vector<std::uint32_t>& v, double q);
// Total length covered by the intervals [first, second).
std::int64_t union_length(std::vector<std::pair<std::int64_t, std::int64_t>>& intervals);
// Most intervals open at one time.
std::uint32_t max_overlap(std::vector<std::pair<std::int64_t, std::int64_t>>& intervals);

// A request that changes state: HTTP POST/PUT/PATCH/DELETE, or an operation
// named with a command verb (CreateOrder, reserve_stock, ...). docs/analysis.md.
bool is_command(const tracing::span& s);
// A read: HTTP GET/HEAD, or an operation named get/list/find/query/search...
bool is_read(const tracing::span& s);
// 202 Accepted or 204 No Content: the callee says there is nothing to wait for.
bool is_accepted_status(std::int64_t status);

}  // namespace outrider::analysis::detail
