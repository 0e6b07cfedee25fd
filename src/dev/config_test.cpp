#include "dev/config.h"

#include <gtest/gtest.h>

namespace outrider::dev {
namespace {

result<dev_config> parse(std::string_view yaml) {
  auto doc = config::parse_yaml(yaml, "outrider.yaml");
  if (!doc) return std::move(doc).error();
  return parse_config(*doc, "outrider.yaml", "/tmp");
}

std::string failure(std::string_view yaml) {
  auto c = parse(yaml);
  if (c) return "(parsed)";
  EXPECT_EQ(c.error().code, errc::config_invalid);
  return c.error().message;
}

TEST(dev_config, parses_every_key) {
  auto c = parse(R"(apps:
  - id: orders
    command: ["python3", "orders.py", "--fast"]
    port: 8080
    env: {MODE: demo, EMPTY: ""}
    healthPath: /healthz
    build: make orders
    sidecarArgs: ["--retry-max-attempts", "3"]
    restart: always
  - id: storefront
    command: python3 -m http.server $APP_PORT
    public: true
    open: /shop
    restart: never
broker: {port: 7450, dataDir: data/broker}
collector: {otlpPort: 4318, queryPort: 9411}
ui: {status: line, color: never, refresh: 2s, summaryInterval: 1m, statusPort: 7000}
restart: {initialDelay: 100ms, maxDelay: 5s, multiplier: 3, resetAfter: 1m}
startTimeout: 90s
stopGrace: 3s
)");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->apps.size(), 2u);
  const auto& o = c->apps[0];
  EXPECT_EQ(o.id, "orders");
  EXPECT_EQ(o.command, (std::vector<std::string>{"python3", "orders.py", "--fast"}));
  EXPECT_EQ(o.workdir, "/tmp");
  EXPECT_EQ(o.port, 8080);
  ASSERT_EQ(o.env.size(), 2u);
  EXPECT_EQ(o.env[0], (std::pair<std::string, std::string>{"MODE", "demo"}));
  EXPECT_EQ(o.env[1].second, "");
  EXPECT_EQ(o.health_path, "/healthz");
  EXPECT_EQ(o.build, (std::vector<std::string>{"/bin/sh", "-c", "make orders"}));
  EXPECT_EQ(o.sidecar_args, (std::vector<std::string>{"--retry-max-attempts", "3"}));
  EXPECT_EQ(o.restart, restart_policy::always);
  EXPECT_EQ(o.where.line, 2);
  const auto& s = c->apps[1];
  EXPECT_EQ(s.command,
            (std::vector<std::string>{"/bin/sh", "-c", "python3 -m http.server $APP_PORT"}));
  EXPECT_TRUE(s.is_public);
  EXPECT_EQ(s.open, "/shop");
  EXPECT_EQ(s.restart, restart_policy::never);
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(c->broker.port, 7450);
  EXPECT_EQ(c->broker.data_dir, "/tmp/data/broker");
  EXPECT_EQ(c->collector.otlp_port, 4318);
  EXPECT_EQ(c->collector.query_port, 9411);
  EXPECT_EQ(c->collector.data_dir, "");
  EXPECT_EQ(c->ui.status, ui_config::view::line);
  EXPECT_EQ(c->ui.color, ui_config::colour::never);
  EXPECT_EQ(c->ui.refresh, std::chrono::seconds(2));
  EXPECT_EQ(c->ui.summary_interval, std::chrono::minutes(1));
  EXPECT_EQ(c->ui.status_port, 7000);
  EXPECT_EQ(c->restart.initial_delay, std::chrono::milliseconds(100));
  EXPECT_EQ(c->restart.max_delay, std::chrono::seconds(5));
  EXPECT_EQ(c->restart.multiplier, 3.0);
  EXPECT_EQ(c->restart.reset_after, std::chrono::minutes(1));
  EXPECT_EQ(c->start_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c->stop_grace, std::chrono::seconds(3));
  EXPECT_EQ(c->state_dir, "/tmp/.outrider");
}

TEST(dev_config, defaults) {
  auto c = parse("apps:\n  - {id: a, command: [python3]}\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->apps[0].restart, restart_policy::on_failure);
  EXPECT_TRUE(c->broker.enabled);
  EXPECT_TRUE(c->collector.enabled);
  EXPECT_EQ(c->broker.port, 0);
  EXPECT_EQ(c->ui.status, ui_config::view::automatic);
  EXPECT_EQ(c->restart.initial_delay, std::chrono::milliseconds(500));
}

TEST(dev_config, unknown_key_names_file_line_and_key_with_a_suggestion) {
  EXPECT_EQ(failure("apps:\n  - id: a\n    comand: [python3]\n"),
            "outrider.yaml:3:5: key 'apps[0].comand': unknown key (did you mean 'command'?)");
  EXPECT_EQ(failure("apps:\n  - {id: a, command: [python3]}\nbrokr: {port: 1}\n"),
            "outrider.yaml:3:1: key 'brokr': unknown key (did you mean 'broker'?)");
}

TEST(dev_config, bad_values_name_their_key) {
  EXPECT_EQ(failure("apps:\n  - {id: a, command: [python3], port: http}\n"),
            "outrider.yaml:2:33: key 'apps[0].port': expected a port number (0-65535), got 'http'")
      << "(the message of config::parse_value)";
}

TEST(dev_config, structural_errors) {
  EXPECT_NE(failure("broker: {}\n").find("missing key 'apps'"), std::string::npos);
  EXPECT_NE(failure("apps: []\n").find("key 'apps': expected a non-empty list"), std::string::npos);
  EXPECT_NE(failure("apps:\n  - {command: [python3]}\n").find("missing key 'id'"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a}\n").find("missing key 'command'"), std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: 'a b', command: [python3]}\n").find("key 'apps[0].id'"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3]}\n  - {id: a, command: [python3]}\n")
                .find("outrider.yaml:3:6: key 'apps[1].id': app id 'a' is used twice"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3], port: 80}\n"
                    "  - {id: b, command: [python3], port: 80}\n")
                .find("key 'apps[1].port': port 80 is used twice"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [no-such-program-here]}\n")
                .find("key 'apps[0].command': program 'no-such-program-here' not found on PATH"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3], workdir: /no/such/dir}\n")
                .find("key 'apps[0].workdir': no such directory: /no/such/dir"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3], healthPath: healthz}\n")
                .find("expected a path starting with '/'"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3], restart: sometimes}\n")
                .find("key 'apps[0].restart': expected on-failure, always or never"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3]}\nrestart: {initialDelay: 10s, "
                    "maxDelay: 1s}\n")
                .find("maxDelay is shorter than initialDelay"),
            std::string::npos);
  EXPECT_NE(failure("apps:\n  - {id: a, command: [python3]}\nui: {status: fancy}\n")
                .find("key 'ui.status'"),
            std::string::npos);
}

TEST(dev_config, a_missing_file_is_not_found) {
  auto c = load_config("/no/such/outrider.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::not_found);
}

}  // namespace
}  // namespace outrider::dev
