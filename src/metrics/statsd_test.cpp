#include "metrics/statsd.h"

#include <gtest/gtest.h>

namespace outrider::metrics {
namespace {

bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

TEST(statsd_parse, counter_with_rate_and_tags) {
  statsd_line l;
  std::string why;
  ASSERT_TRUE(parse_statsd_line("orders.placed:3|c|@0.5|#store:berlin,vip", l, why));
  EXPECT_EQ(l.name, "orders.placed");
  EXPECT_EQ(l.value, 3);
  EXPECT_EQ(l.type, statsd_type::counter);
  EXPECT_EQ(l.sample_rate, 0.5);
  ASSERT_EQ(l.tags.size(), 2U);
  EXPECT_EQ(l.tags[0], (std::pair<std::string, std::string>{"store", "berlin"}));
  EXPECT_EQ(l.tags[1], (std::pair<std::string, std::string>{"vip", ""}));
}

TEST(statsd_parse, gauge_deltas_and_timers) {
  statsd_line l;
  std::string why;
  ASSERT_TRUE(parse_statsd_line("depth:-4|g", l, why));
  EXPECT_TRUE(l.relative);
  EXPECT_EQ(l.value, -4);
  ASSERT_TRUE(parse_statsd_line("depth:+4|g", l, why));
  EXPECT_TRUE(l.relative);
  EXPECT_EQ(l.value, 4);
  ASSERT_TRUE(parse_statsd_line("depth:4|g", l, why));
  EXPECT_FALSE(l.relative);
  ASSERT_TRUE(parse_statsd_line("db.query:12.5|ms", l, why));
  EXPECT_EQ(l.type, statsd_type::timer);
  ASSERT_TRUE(parse_statsd_line("size:512|h", l, why));
  EXPECT_EQ(l.type, statsd_type::histogram);
  ASSERT_TRUE(parse_statsd_line("size:512|d|T1656581400", l, why));
}

TEST(statsd_parse, rejects_malformed_lines) {
  statsd_line l;
  std::string why;
  for (std::string_view bad :
       {"", "noval", ":1|c", "a:|c", "a:1", "a:1|x", "a:abc|c", "a:1|c|@0", "a:1|c|@2", "a:1|c|@x",
        "a:-1|c", "a:1|c|#:v", "a:1|c|junk", "a:nan|g", "a:inf|ms"}) {
    EXPECT_FALSE(parse_statsd_line(bad, l, why)) << bad;
    EXPECT_EQ(why, "malformed") << bad;
  }
  EXPECT_FALSE(parse_statsd_line("users:alice|s", l, why));
  EXPECT_EQ(why, "unsupported_type");
}

TEST(statsd_sink, exposes_counters_gauges_and_histograms) {
  registry reg;
  statsd_sink sink(reg);
  sink.ingest(
      "orders.placed:1|c|#store:berlin\n"
      "orders.placed:2|c|#store:berlin\n"
      "orders.placed:1|c|@0.25|#store:paris\n"
      "queue-depth:10|g\nqueue-depth:-3|g\n"
      "db.query:250|ms\n"
      "payload:2048|h\n");
  const std::string out = reg.expose();
  EXPECT_TRUE(contains(out, "app_orders_placed_total{store=\"berlin\"} 3")) << out;
  EXPECT_TRUE(contains(out, "app_orders_placed_total{store=\"paris\"} 4")) << out;
  EXPECT_TRUE(contains(out, "app_queue_depth 7")) << out;
  EXPECT_TRUE(contains(out, "app_db_query_seconds_bucket{le=\"0.25\"} 1")) << out;
  EXPECT_TRUE(contains(out, "app_db_query_seconds_bucket{le=\"0.1\"} 0")) << out;
  EXPECT_TRUE(contains(out, "app_payload_bucket{le=\"5000\"} 1")) << out;
  EXPECT_TRUE(contains(out, "app_payload_bucket{le=\"2000\"} 0")) << out;
  EXPECT_EQ(sink.lines_accepted(), 7U);
  EXPECT_EQ(sink.lines_dropped(), 0U);
}

TEST(statsd_sink, label_set_is_fixed_by_the_first_line) {
  registry reg;
  statsd_sink sink(reg);
  sink.ingest("hits:1|c|#route:/a,method:GET\nhits:1|c|#route:/b,extra:x\n");
  const std::string out = reg.expose();
  EXPECT_TRUE(contains(out, "app_hits_total{method=\"GET\",route=\"/a\"} 1")) << out;
  EXPECT_TRUE(contains(out, "app_hits_total{method=\"\",route=\"/b\"} 1")) << out;
  EXPECT_FALSE(contains(out, "extra")) << out;
}

TEST(statsd_sink, drops_and_counts_what_it_cannot_keep) {
  registry reg;
  statsd_sink sink(reg, {.prefix = "app_", .max_metrics = 2, .max_series_per_metric = 2});
  sink.ingest("a:1|c\nb:1|g\nc:1|c\n");  // third name: over the metric limit
  sink.ingest("b:1|h\n");                // b is a gauge already
  sink.ingest("a.x:1|c|#k:1\n");         // name differs from "a": over the limit too
  sink.ingest("s:1|c|#k:1\n");
  sink.ingest("garbage\nu:1|s\n");
  const std::string out = reg.expose();
  EXPECT_TRUE(contains(out, "outrider_statsd_dropped_total{reason=\"metric_limit\"} 3")) << out;
  EXPECT_TRUE(contains(out, "outrider_statsd_dropped_total{reason=\"type_conflict\"} 1")) << out;
  EXPECT_TRUE(contains(out, "outrider_statsd_dropped_total{reason=\"malformed\"} 1")) << out;
  EXPECT_TRUE(contains(out, "outrider_statsd_dropped_total{reason=\"unsupported_type\"} 1")) << out;
  EXPECT_FALSE(contains(out, "app_c_total")) << out;

  registry reg2;
  statsd_sink series(reg2, {.prefix = "app_", .max_metrics = 10, .max_series_per_metric = 2});
  series.ingest("r:1|c|#id:1\nr:1|c|#id:2\nr:1|c|#id:3\nr:1|c|#id:4\n");
  const std::string out2 = reg2.expose();
  EXPECT_TRUE(contains(out2, "outrider_statsd_dropped_total{reason=\"series_limit\"} 2")) << out2;
  EXPECT_FALSE(contains(out2, "id=\"3\"")) << out2;
  EXPECT_EQ(series.lines_accepted(), 2U);
}

TEST(statsd_sink, sanitizes_names_into_valid_prometheus_names) {
  EXPECT_EQ(sanitize_metric_name("my.app-latency 99"), "my_app_latency_99");
  EXPECT_EQ(sanitize_metric_name("9lives"), "_9lives");
  registry reg;
  statsd_sink sink(reg);
  sink.ingest("http.req:1|c|#__meta:x,9k:v,a-b:c\n");
  const std::string out = reg.expose();
  EXPECT_TRUE(contains(out, "app_http_req_total{_9k=\"v\",_meta=\"x\",a_b=\"c\"} 1")) << out;
}

}  // namespace
}  // namespace outrider::metrics
