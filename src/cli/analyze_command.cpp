#include "cli/analyze_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>

#include "analysis/analysis.h"
#include "analysis/render.h"
#include "analysis/report_json.h"
#include "base/log.h"
#include "base/time_format.h"
#include "cli/command.h"
#include "http/client.h"
#include "io/file_system.h"
#include "io/runtime.h"
#include "tracing/span_store.h"

namespace outrider::cli {
namespace {

constexpr int http_ok = 200;
constexpr auto fetch_timeout = std::chrono::minutes(2);

struct analyze_options {
  std::string collector;
  std::string data_dir;
  std::string lookback = "1h";
  std::string end;
  std::string format = "text";
  std::size_t max_traces = 50000;
};

// --end: RFC 3339, or milliseconds since the Unix epoch; now when empty.
result<std::int64_t> parse_end(const std::string& text) {
  if (text.empty()) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() < 19) {
    return std::stoll(text);
  }
  auto t = parse_rfc3339(text);
  if (!t) {
    return error(errc::config_invalid,
                 "--end: not an RFC 3339 time or epoch milliseconds: " + text);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

// GET base + target from the collector; the body of a 200 answer.
result<std::string> fetch(http::client& client, const http::url& base, const std::string& target) {
  http::url destination = base;
  std::string prefix = base.target == "/" ? "" : base.target;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  destination.target = prefix + target;
  http::request req;
  req.method = "GET";
  req.target = destination.target;
  req.headers.set("Accept", "application/json");
  std::promise<result<http::response>> done;
  auto answer = done.get_future();
  client.send(destination, std::move(req), fetch_timeout,
              [&done](result<http::response> r) { done.set_value(std::move(r)); });
  auto r = answer.get();
  if (!r) {
    return error(r.error().code, "collector " + base.origin() + ": " + r.error().message);
  }
  if (r->status != http_ok) {
    return error(errc::upstream_error, "collector " + base.origin() + " answered " +
                                           std::to_string(r->status) + " to " + target + ": " +
                                           r->body);
  }
  return std::move(r->body);
}

result<analysis::analysis_result> from_collector(const std::string& url, std::int64_t end_ms,
                                                 std::int64_t lookback_ms) {
  auto base = http::url::parse(url);
  if (!base) return error(errc::config_invalid, "--collector: " + base.error().message);
  io::runtime rt(1);
  auto client = std::make_unique<http::client>(rt.context(0));
  rt.start();
  const std::string query =
      "?endTs=" + std::to_string(end_ms) + "&lookback=" + std::to_string(lookback_ms);
  auto report_body = fetch(*client, *base, "/api/outrider/v1/analysis" + query);
  result<std::string> graph_body = error(errc::internal, "not fetched");
  if (report_body) graph_body = fetch(*client, *base, "/api/outrider/v1/graph" + query);
  rt.stop();
  client.reset();
  if (!report_body) return std::move(report_body).error();
  if (!graph_body) return std::move(graph_body).error();
  analysis::analysis_result out;
  auto rep = analysis::parse_report_json(*report_body);
  if (!rep) return error(errc::upstream_error, "collector answer: " + rep.error().message);
  auto graph = analysis::parse_graph_json(*graph_body);
  if (!graph) return error(errc::upstream_error, "collector answer: " + graph.error().message);
  out.coupling = std::move(*rep);
  out.graph = std::move(*graph);
  return out;
}

result<analysis::analysis_result> from_store(const std::string& dir, std::int64_t end_ms,
                                             std::int64_t lookback_ms, std::size_t max_traces) {
  tracing::span_store_options so;
  so.dir = dir;
  so.max_age = nanoseconds::zero();  // read only: never drop anything here
  auto store = tracing::span_store::open(io::posix_file_system(), so);
  if (!store) return std::move(store).error();
  return analysis::analyze_store(**store, end_ms, lookback_ms, max_traces);
}

int run_analyze(const analyze_options& o) {
  if (!o.collector.empty() && !o.data_dir.empty()) {
    return report_failure(
        error(errc::config_invalid, "give either --collector or --data-dir, not both"));
  }
  if (o.format != "text" && o.format != "json" && o.format != "markdown") {
    return report_failure(
        error(errc::config_invalid, "--format must be text, json or markdown: " + o.format));
  }
  if (o.max_traces == 0) {
    return report_failure(error(errc::config_invalid, "--max-traces must be at least 1"));
  }
  auto lookback = parse_duration(o.lookback);
  if (!lookback || lookback->count() <= 0) {
    return report_failure(
        error(errc::config_invalid,
              "--lookback: a positive duration such as 15m, 1h or 7d: " + o.lookback));
  }
  auto end = parse_end(o.end);
  if (!end) return report_failure(end.error());
  const std::int64_t lookback_ms = std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(*lookback).count());

  auto result = o.data_dir.empty()
                    ? from_collector(o.collector.empty() ? "http://127.0.0.1:9411" : o.collector,
                                     *end, lookback_ms)
                    : from_store(o.data_dir, *end, lookback_ms, o.max_traces);
  if (!result) return report_failure(result.error());
  std::string out;
  if (o.format == "json") {
    out = analysis::to_json(*result) + "\n";
  } else if (o.format == "markdown") {
    out = analysis::render_markdown(*result);
  } else {
    out = analysis::render_text(*result);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

void add_analyze_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "analyze",
      "The distributed-monolith report: blocking call chains, fan-out, cycles, sync share, "
      "availability and calls that could be messages, over a window of stored traces");
  auto o = std::make_shared<analyze_options>();
  cmd->add_option("--collector", o->collector,
                  "read through a running collector's API (default http://127.0.0.1:9411)")
      ->envname("OUTRIDER_COLLECTOR_URL");
  cmd->add_option("--data-dir", o->data_dir,
                  "open a span store directly instead (one no collector is writing to)");
  cmd->add_option("--lookback", o->lookback, "the window's length (15m, 1h, 7d)")
      ->capture_default_str();
  cmd->add_option("--end", o->end,
                  "the window's end: RFC 3339 or epoch milliseconds (default: now)");
  cmd->add_option("--format", o->format, "text, json or markdown")->capture_default_str();
  cmd->add_option("--max-traces", o->max_traces,
                  "analyse at most this many traces, the newest (--data-dir)")
      ->capture_default_str();
  cmd->callback([o, exit_code] {
    log::options lo;
    lo.min_level = log::level::warn;  // the report goes to stdout; only problems to stderr
    log::init(lo);
    *exit_code = run_analyze(*o);
  });
}

}  // namespace outrider::cli
