// From the analyzer's accumulators to the report: entry point metrics and
// scores, cycles, and the ranked findings (docs/analysis.md defines each).
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "analysis/analysis.h"
#include "analysis/detail/stats.h"

namespace outrider::analysis::detail {

struct report_input {
  const string_table& names;
  time_window window;
  bool truncated = false;
  std::uint64_t traces = 0;
  std::map<std::pair<name_id, name_id>, entry_stats>& entries;  // (service, operation)
  std::map<call_key, call_stats>& calls;
  std::map<edge_key, edge_stats>& edges;
  const std::set<std::pair<name_id, name_id>>& blocking_edges;
  const std::map<name_id, std::pair<std::uint64_t, std::uint64_t>>& callee_calls;  // calls, errors
  std::size_t max_examples = 3;
};

// Sorts percentiles' samples in place.
report build_report(report_input& in);

// Cycles of a directed graph: one per strongly connected component with more
// than one node, as a path that starts at the component's smallest name and
// returns to it (the start is not repeated at the end). Sorted.
std::vector<std::vector<std::string>> find_cycles(
    const std::set<std::pair<std::string, std::string>>& edges);

// "0.4 ms", "340 ms", "1.2 s", "3.5 min", "2.0 h", "7.0 d".
std::string format_ms(double ms);

}  // namespace outrider::analysis::detail
