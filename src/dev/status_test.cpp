#include "dev/status.h"

#include <gtest/gtest.h>

namespace outrider::dev {
namespace {

system_status sample() {
  system_status s;
  s.config_file = "outrider.yaml";
  s.broker = process_status{"broker", "running", 10, 0, std::nullopt, 0};
  s.trace_ui = "http://127.0.0.1:9411/";
  s.storefront = "http://127.0.0.1:8080/";
  app_status a;
  a.id = "orders";
  a.app_port = 8080;
  a.sidecar_port = 3500;
  a.app = {"orders", "restarting", 0, 2, 1, 1.5};
  a.sidecar = {"orders-sidecar", "running", 12, 0, std::nullopt, 0};
  a.health = "not ready: app \"down\"";
  s.apps.push_back(a);
  s.queues_known = true;
  s.queues.push_back({"orders", 3, 1, 2, 0, 1});
  return s;
}

TEST(system_status, json_has_every_part) {
  const auto j = to_json(sample());
  EXPECT_NE(j.find("\"storefront\":\"http://127.0.0.1:8080/\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"broker\":{\"name\":\"broker\",\"state\":\"running\",\"pid\":10"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"health\":\"not ready: app \\\"down\\\"\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"restarts\":2,\"lastExit\":1,\"restartIn\":1.5"), std::string::npos) << j;
  EXPECT_NE(j.find("\"queues\":[{\"name\":\"orders\",\"ready\":3,\"inFlight\":1,\"scheduled\":2"),
            std::string::npos)
      << j;
  auto s = sample();
  s.queues_known = false;
  EXPECT_NE(to_json(s).find("\"queues\":null"), std::string::npos);
}

TEST(system_status, block_and_summary) {
  const auto lines = to_lines(sample());
  ASSERT_GE(lines.size(), 4u);
  EXPECT_NE(lines[0].find("storefront http://127.0.0.1:8080/"), std::string::npos);
  EXPECT_NE(lines[2].find("orders"), std::string::npos);
  EXPECT_NE(lines[2].find("restart in 1.5s"), std::string::npos) << lines[2];
  EXPECT_NE(lines.back().find("queue orders: 3 ready, 1 in flight, 2 scheduled, 0 dead"),
            std::string::npos);
  EXPECT_EQ(to_summary(sample()),
            "0/1 apps ready, 2 restart(s); queues: 3 ready, 1 in flight, 2 scheduled, 0 dead; "
            "traces http://127.0.0.1:9411/");
}

}  // namespace
}  // namespace outrider::dev
