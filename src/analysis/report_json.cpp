#include "analysis/report_json.h"

#include <boost/json.hpp>
#include <cmath>
#include <fmt/format.h>

#include "base/json_text.h"

namespace outrider::analysis {
namespace {

namespace json = boost::json;

constexpr double ms_scale = 1e3;     // milliseconds to 3 decimals (microseconds)
constexpr double share_scale = 1e6;  // shares to 6 decimals

void append_number(std::string& out, double v, double scale) {
  if (!std::isfinite(v)) v = 0;
  const double rounded = std::round(v * scale) / scale;
  if (rounded == std::floor(rounded) && std::fabs(rounded) < 1e15) {
    out += fmt::format("{}", static_cast<long long>(rounded));
  } else {
    out += fmt::format("{}", rounded);
  }
}

void append_string_list(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, items[i]);
  }
  out += ']';
}

void append_graph_fields(std::string& out, const service_graph& g) {
  out += "\"nodes\":[";
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    if (i > 0) out += ',';
    out += "{\"service\":";
    append_json_string(out, n.service);
    out += fmt::format(",\"spans\":{},\"errors\":{}}}", n.spans, n.errors);
  }
  out += "],\"edges\":[";
  for (std::size_t i = 0; i < g.edges.size(); ++i) {
    const auto& e = g.edges[i];
    if (i > 0) out += ',';
    out += "{\"from\":";
    append_json_string(out, e.from);
    out += ",\"to\":";
    append_json_string(out, e.to);
    out += fmt::format(",\"kind\":\"{}\",\"calls\":{},\"errors\":{},\"p50Ms\":", to_string(e.kind),
                       e.calls, e.errors);
    append_number(out, e.p50_ms, ms_scale);
    out += ",\"p99Ms\":";
    append_number(out, e.p99_ms, ms_scale);
    out += '}';
  }
  out += ']';
}

void append_report_fields(std::string& out, const report& r) {
  out += fmt::format("\"window\":{{\"startMs\":{},\"endMs\":{}}},\"traces\":{},\"truncated\":{}",
                     r.window.start_ms, r.window.end_ms, r.traces, r.truncated);
  out += ",\"entryPoints\":[";
  for (std::size_t i = 0; i < r.entry_points.size(); ++i) {
    const auto& e = r.entry_points[i];
    if (i > 0) out += ',';
    out += "{\"service\":";
    append_json_string(out, e.service);
    out += ",\"operation\":";
    append_json_string(out, e.operation);
    out += fmt::format(
        ",\"traces\":{},\"score\":{},\"syncDepth\":{{\"max\":{},\"p50\":{}}},"
        "\"fanOut\":{{\"max\":{},\"p50\":{}}},\"syncShare\":",
        e.traces, e.score, e.depth_max, e.depth_p50, e.fan_out_max, e.fan_out_p50);
    append_number(out, e.sync_share, share_scale);
    out += ",\"availability\":";
    append_number(out, e.availability, share_scale);
    out += ",\"latencyMs\":{\"p50\":";
    append_number(out, e.p50_ms, ms_scale);
    out += ",\"p99\":";
    append_number(out, e.p99_ms, ms_scale);
    out += "},\"blockingServices\":";
    append_string_list(out, e.blocking_services);
    out += ",\"exampleTraceIds\":";
    append_string_list(out, e.example_trace_ids);
    out += '}';
  }
  out += "],\"findings\":[";
  for (std::size_t i = 0; i < r.findings.size(); ++i) {
    const auto& f = r.findings[i];
    if (i > 0) out += ',';
    out += fmt::format("{{\"severity\":\"{}\",\"kind\":", to_string(f.level));
    append_json_string(out, f.kind);
    out += ",\"text\":";
    append_json_string(out, f.text);
    out += ",\"entryPoint\":";
    append_json_string(out, f.entry_point);
    out += ",\"services\":";
    append_string_list(out, f.services);
    out += ",\"metrics\":{";
    for (std::size_t m = 0; m < f.metrics.size(); ++m) {
      if (m > 0) out += ',';
      append_json_string(out, f.metrics[m].first);
      out += ':';
      append_number(out, f.metrics[m].second, share_scale);
    }
    out += "},\"exampleTraceIds\":";
    append_string_list(out, f.example_trace_ids);
    out += '}';
  }
  out += "],\"cycles\":[";
  for (std::size_t i = 0; i < r.cycles.size(); ++i) {
    if (i > 0) out += ',';
    append_string_list(out, r.cycles[i]);
  }
  out += ']';
}

// Reading ------------------------------------------------------------------------

struct reader {
  std::string error;

  const json::value* field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr && error.empty()) error = "missing field '" + std::string(key) + "'";
    return v;
  }
  const json::object* object(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) return fail<json::object>(key, "an object");
    return &v->get_object();
  }
  const json::array* array(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) return fail<json::array>(key, "an array");
    return &v->get_array();
  }
  std::string string(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (v == nullptr) return {};
    if (!v->is_string()) {
      fail<void>(key, "a string");
      return {};
    }
    return std::string(v->get_string());
  }
  double number(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (v == nullptr) return 0;
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    if (v->is_double()) return v->get_double();
    fail<void>(key, "a number");
    return 0;
  }
  std::int64_t integer(const json::object& o, std::string_view key) {
    return static_cast<std::int64_t>(number(o, key));
  }
  bool boolean(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_bool() && v->get_bool();
  }
  std::vector<std::string> strings(const json::object& o, std::string_view key) {
    std::vector<std::string> out;
    const auto* a = array(o, key);
    if (a == nullptr) return out;
    for (const auto& item : *a) {
      if (!item.is_string()) {
        fail<void>(key, "a list of strings");
        return out;
      }
      out.emplace_back(item.get_string());
    }
    return out;
  }
  template <typename T>
  const T* fail(std::string_view key, std::string_view what) {
    if (error.empty()) error = "field '" + std::string(key) + "' is not " + std::string(what);
    return nullptr;
  }
};

result<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return error(errc::invalid_argument, "not JSON: " + ec.message());
  if (!v.is_object()) return error(errc::invalid_argument, "not a JSON object");
  return std::move(v.get_object());
}

template <typename T>
T as_unsigned(double v) {
  return v < 0 ? T{0} : static_cast<T>(v);
}

}  // namespace

std::string to_json(const service_graph& g) {
  std::string out = "{";
  append_graph_fields(out, g);
  out += '}';
  return out;
}

std::string to_json(const report& r) {
  std::string out = "{";
  append_report_fields(out, r);
  out += '}';
  return out;
}

std::string to_json(const analysis_result& a) {
  std::string out = "{";
  append_report_fields(out, a.coupling);
  out += ",\"graph\":{";
  append_graph_fields(out, a.graph);
  out += "}}";
  return out;
}

result<service_graph> parse_graph_json(std::string_view text) {
  auto root = parse_object(text);
  if (!root) return std::move(root).error();
  reader rd;
  service_graph g;
  if (const auto* nodes = rd.array(*root, "nodes")) {
    for (const auto& item : *nodes) {
      if (!item.is_object()) return error(errc::invalid_argument, "a node is not an object");
      const auto& o = item.get_object();
      graph_node n;
      n.service = rd.string(o, "service");
      n.spans = as_unsigned<std::uint64_t>(rd.number(o, "spans"));
      n.errors = as_unsigned<std::uint64_t>(rd.number(o, "errors"));
      g.nodes.push_back(std::move(n));
    }
  }
  if (const auto* edges = rd.array(*root, "edges")) {
    for (const auto& item : *edges) {
      if (!item.is_object()) return error(errc::invalid_argument, "an edge is not an object");
      const auto& o = item.get_object();
      graph_edge e;
      e.from = rd.string(o, "from");
      e.to = rd.string(o, "to");
      const std::string kind = rd.string(o, "kind");
      if (kind != "sync" && kind != "async" && rd.error.empty())
        rd.error = "edge kind must be sync or async: " + kind;
      e.kind = kind == "async" ? edge_kind::async : edge_kind::sync;
      e.calls = as_unsigned<std::uint64_t>(rd.number(o, "calls"));
      e.errors = as_unsigned<std::uint64_t>(rd.number(o, "errors"));
      e.p50_ms = rd.number(o, "p50Ms");
      e.p99_ms = rd.number(o, "p99Ms");
      g.edges.push_back(std::move(e));
    }
  }
  if (!rd.error.empty()) return error(errc::invalid_argument, "graph: " + rd.error);
  return g;
}

result<report> parse_report_json(std::string_view text) {
  auto root = parse_object(text);
  if (!root) return std::move(root).error();
  reader rd;
  report r;
  if (const auto* w = rd.object(*root, "window")) {
    r.window.start_ms = rd.integer(*w, "startMs");
    r.window.end_ms = rd.integer(*w, "endMs");
  }
  r.traces = as_unsigned<std::uint64_t>(rd.number(*root, "traces"));
  r.truncated = rd.boolean(*root, "truncated");
  if (const auto* entries = rd.array(*root, "entryPoints")) {
    for (const auto& item : *entries) {
      if (!item.is_object())
        return error(errc::invalid_argument, "an entry point is not an object");
      const auto& o = item.get_object();
      entry_point e;
      e.service = rd.string(o, "service");
      e.operation = rd.string(o, "operation");
      e.traces = as_unsigned<std::uint64_t>(rd.number(o, "traces"));
      e.score = static_cast<int>(rd.number(o, "score"));
      if (const auto* d = rd.object(o, "syncDepth")) {
        e.depth_max = as_unsigned<std::uint32_t>(rd.number(*d, "max"));
        e.depth_p50 = as_unsigned<std::uint32_t>(rd.number(*d, "p50"));
      }
      if (const auto* f = rd.object(o, "fanOut")) {
        e.fan_out_max = as_unsigned<std::uint32_t>(rd.number(*f, "max"));
        if (f->contains("p50")) e.fan_out_p50 = as_unsigned<std::uint32_t>(rd.number(*f, "p50"));
      }
      e.sync_share = rd.number(o, "syncShare");
      e.availability = rd.number(o, "availability");
      if (const auto* l = o.if_contains("latencyMs"); l != nullptr && l->is_object()) {
        e.p50_ms = rd.number(l->get_object(), "p50");
        e.p99_ms = rd.number(l->get_object(), "p99");
      }
      if (o.contains("blockingServices")) e.blocking_services = rd.strings(o, "blockingServices");
      e.example_trace_ids = rd.strings(o, "exampleTraceIds");
      r.entry_points.push_back(std::move(e));
    }
  }
  if (const auto* findings = rd.array(*root, "findings")) {
    for (const auto& item : *findings) {
      if (!item.is_object()) return error(errc::invalid_argument, "a finding is not an object");
      const auto& o = item.get_object();
      finding f;
      const std::string level = rd.string(o, "severity");
      f.level = level == "high"     ? severity::high
                : level == "medium" ? severity::medium
                                    : severity::low;
      f.kind = rd.string(o, "kind");
      f.text = rd.string(o, "text");
      f.entry_point = rd.string(o, "entryPoint");
      f.services = rd.strings(o, "services");
      if (const auto* m = rd.object(o, "metrics")) {
        for (const auto& [key, value] : *m) {
          f.metrics.emplace_back(std::string(key),
                                 value.is_number() ? value.to_number<double>() : 0);
        }
      }
      f.example_trace_ids = rd.strings(o, "exampleTraceIds");
      r.findings.push_back(std::move(f));
    }
  }
  if (const auto* cycles = rd.array(*root, "cycles")) {
    for (const auto& item : *cycles) {
      if (!item.is_array()) return error(errc::invalid_argument, "a cycle is not a list");
      std::vector<std::string> cycle;
      for (const auto& s : item.get_array()) {
        if (s.is_string()) cycle.emplace_back(s.get_string());
      }
      r.cycles.push_back(std::move(cycle));
    }
  }
  if (!rd.error.empty()) return error(errc::invalid_argument, "analysis: " + rd.error);
  return r;
}

}  // namespace outrider::analysis
