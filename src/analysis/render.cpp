#include "analysis/render.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>

#include "analysis/detail/findings.h"
#include "base/time_format.h"

namespace outrider::analysis {
namespace {

constexpr double percent = 100;

std::string when(std::int64_t ms) {
  return format_rfc3339(wall_time(std::chrono::milliseconds(ms)), 0);
}

std::string pct(double share) {
  return fmt::format("{}%", static_cast<long long>(std::lround(share * percent)));
}

std::string availability_text(double a) {
  return fmt::format("{:.2f}%", a * percent);
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string cycle_text(const std::vector<std::string>& cycle) {
  std::vector<std::string> closed = cycle;
  if (!closed.empty()) closed.push_back(closed.front());
  return join(closed, " → ");
}

std::string heading(const report& r) {
  return fmt::format("window {} .. {}, {} trace{}{}", when(r.window.start_ms),
                     when(r.window.end_ms), r.traces, r.traces == 1 ? "" : "s",
                     r.truncated ? " (newest only: the window held more)" : "");
}

// Escapes '|' so a cell cannot break a Markdown table.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string render_text(const analysis_result& a) {
  const report& r = a.coupling;
  std::string out = "Outrider coupling report: " + heading(r) + "\n\n";

  out += "Findings\n";
  if (r.findings.empty()) out += "  none: no blocking chains, cycles or replaceable calls seen\n";
  for (const auto& f : r.findings) {
    out += fmt::format("  [{:<6}] {}\n", to_string(f.level), f.text);
    if (!f.example_trace_ids.empty())
      out += fmt::format("           e.g. trace {}\n", join(f.example_trace_ids, ", "));
  }

  out += "\nEntry points (higher score = more temporally coupled)\n";
  out += fmt::format("  {:>5} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9}  {}\n", "score", "traces",
                     "depth", "fan-out", "sync", "avail", "p99", "entry point");
  for (const auto& e : r.entry_points) {
    out += fmt::format("  {:>5} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9}  {}: {}\n", e.score, e.traces,
                       fmt::format("{}/{}", e.depth_max, e.depth_p50),
                       fmt::format("{}/{}", e.fan_out_max, e.fan_out_p50), pct(e.sync_share),
                       availability_text(e.availability), detail::format_ms(e.p99_ms), e.service,
                       e.operation);
  }
  out +=
      "  (depth and fan-out: max/p50; sync: share of latency spent waiting on synchronous "
      "calls)\n";

  out += "\nCycles in the synchronous call graph\n";
  if (r.cycles.empty()) out += "  none\n";
  for (const auto& c : r.cycles) out += "  " + cycle_text(c) + "\n";

  out += "\nService graph\n";
  for (const auto& e : a.graph.edges) {
    out += fmt::format("  {:<5} {} → {}: {} call{}, {} error{}, p50 {}, p99 {}\n",
                       to_string(e.kind), e.from, e.to, e.calls, e.calls == 1 ? "" : "s", e.errors,
                       e.errors == 1 ? "" : "s", detail::format_ms(e.p50_ms),
                       detail::format_ms(e.p99_ms));
  }
  if (a.graph.edges.empty()) out += "  no calls between services\n";
  return out;
}

std::string render_markdown(const analysis_result& a) {
  const report& r = a.coupling;
  std::string out = "# Coupling report\n\n" + heading(r) + "\n\n## Findings\n\n";
  if (r.findings.empty()) out += "None: no blocking chains, cycles or replaceable calls seen.\n";
  for (std::size_t i = 0; i < r.findings.size(); ++i) {
    const auto& f = r.findings[i];
    out += fmt::format("{}. **{}** {}", i + 1, to_string(f.level), f.text);
    if (!f.example_trace_ids.empty()) {
      std::vector<std::string> ids;
      for (const auto& id : f.example_trace_ids) ids.push_back("`" + id + "`");
      out += " (e.g. trace " + join(ids, ", ") + ")";
    }
    out += "\n";
  }
  out += "\n## Entry points\n\n";
  out +=
      "| score | entry point | traces | depth max | depth p50 | fan-out max | sync share | "
      "availability | p99 |\n";
  out += "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& e : r.entry_points) {
    out += fmt::format("| {} | {}: {} | {} | {} | {} | {} | {} | {} | {} |\n", e.score,
                       cell(e.service), cell(e.operation), e.traces, e.depth_max, e.depth_p50,
                       e.fan_out_max, pct(e.sync_share), availability_text(e.availability),
                       detail::format_ms(e.p99_ms));
  }
  out += "\n## Cycles in the synchronous call graph\n\n";
  if (r.cycles.empty()) out += "None.\n";
  for (const auto& c : r.cycles) out += "- " + cycle_text(c) + "\n";
  out += "\n## Service graph\n\n";
  out += "| from | to | kind | calls | errors | p50 | p99 |\n";
  out += "| --- | --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const auto& e : a.graph.edges) {
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", cell(e.from), cell(e.to),
                       to_string(e.kind), e.calls, e.errors, detail::format_ms(e.p50_ms),
                       detail::format_ms(e.p99_ms));
  }
  return out;
}

}  // namespace outrider::analysis
