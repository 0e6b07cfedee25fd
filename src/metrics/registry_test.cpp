#include "metrics/registry.h"

#include <gtest/gtest.h>
#include <thread>

namespace outrider::metrics {
namespace {

TEST(metrics, exposition_format) {
  registry r;
  auto& published = r.add_counter("outrider_publish_total", "Messages published", {"topic"});
  published.with({"orders"})->inc(3);
  published.with({"we\"ird\\\nvalue"})->inc();
  r.add_gauge("outrider_queue_depth", "Ready messages").get().set(2.5);
  auto& lat =
      r.add_histogram("outrider_latency_seconds", "Latency", {}, std::vector<double>{0.001, 0.01});
  lat.get().observe(0.0005);
  lat.get().observe(0.005);
  lat.get().observe(1);
  auto text = r.expose();
  EXPECT_NE(text.find("# HELP outrider_publish_total Messages published\n# TYPE "
                      "outrider_publish_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("outrider_publish_total{topic=\"orders\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("outrider_publish_total{topic=\"we\\\"ird\\\\\\nvalue\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("outrider_queue_depth 2.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("outrider_latency_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("outrider_latency_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("outrider_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("outrider_latency_seconds_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("outrider_latency_seconds_sum 1.0055\n"), std::string::npos) << text;
}

TEST(metrics, series_limit_drops_and_counts) {
  registry r;
  auto& f = r.add_counter("app_hits_total", "hits", {"path"}, 2);
  EXPECT_NE(f.with({"a"}), nullptr);
  EXPECT_NE(f.with({"b"}), nullptr);
  EXPECT_EQ(f.with({"c"}), nullptr);
  EXPECT_NE(f.with({"a"}), nullptr);  // existing series still reachable
  EXPECT_EQ(r.dropped_series(), 1u);
  EXPECT_NE(r.expose().find("outrider_metrics_series_dropped_total 1"), std::string::npos);
}

TEST(metrics, concurrent_increments_are_exact) {
  registry r;
  auto& c = r.add_counter("c_total", "c").get();
  auto& h = r.add_histogram("h_seconds", "h").get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        h.observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 400000u);
  EXPECT_EQ(h.count(), 400000u);
}

TEST(metrics, shards_add_up_in_the_series_and_its_exposition) {
  registry r;
  auto& c = r.add_counter("c_total", "c").get();
  auto& h = r.add_histogram("h_seconds", "h", {}, std::vector<double>{0.001, 0.01});
  auto& series = h.get();
  c.inc(2);
  series.observe(0.0005);
  // Each thread updates its own shard (no read-modify-write); readers sum them.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto& mine = c.add_shard();
      auto& observed = series.add_shard();
      for (int i = 0; i < 100000; ++i) {
        mine.inc();
        observed.observe(0.005);
      }
      observed.observe(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 300002u);
  EXPECT_EQ(series.count(), 300004u);
  EXPECT_EQ(series.bucket_count(0), 1u);
  EXPECT_EQ(series.bucket_count(1), 300000u);
  EXPECT_EQ(series.bucket_count(2), 3u);
  auto text = r.expose();
  EXPECT_NE(text.find("c_total 300002\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.01\"} 300001\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"+Inf\"} 300004\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count 300004\n"), std::string::npos) << text;
}

TEST(metrics, names_validated) {
  EXPECT_TRUE(registry::valid_name("outrider_x:y_total"));
  EXPECT_FALSE(registry::valid_name("9lives"));
  EXPECT_FALSE(registry::valid_name("has-dash"));
  EXPECT_FALSE(registry::valid_name(""));
}

}  // namespace
}  // namespace outrider::metrics
