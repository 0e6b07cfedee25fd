#include "config/settings.h"

#include <gtest/gtest.h>
#include <map>

namespace outrider::config {
namespace {

using namespace std::chrono_literals;

struct broker_opts {
  std::string listen = "127.0.0.1:5672";
  nanoseconds lease = 30s;
  byte_size max_body{1 << 20};
  bool fsync = true;
  std::uint32_t max_attempts = 5;
  log::level level = log::level::info;
  std::vector<std::string> queues;
};

settings declare(broker_opts& o) {
  settings s;
  s.add("broker.listen", &o.listen, "address to listen on", "OUTRIDER_BROKER_LISTEN", "listen");
  s.add("broker.leaseTimeout", &o.lease, "visibility timeout", "OUTRIDER_BROKER_LEASE_TIMEOUT",
        "lease-timeout");
  s.add("broker.maxBody", &o.max_body, "largest body", "", "max-body");
  s.add("broker.fsync", &o.fsync, "fsync before confirming");
  s.add("broker.maxAttempts", &o.max_attempts, "attempts before dead-lettering");
  s.add("log.level", &o.level, "log level", "OUTRIDER_LOG_LEVEL", "log-level");
  s.add_section(
      "queues",
      [&o](const node& n) -> status {
        if (!n.is_sequence()) return n.fail("expected a list of queue names");
        for (const auto& item : n.items()) {
          if (!item.is_scalar()) return item.fail("expected a queue name");
          o.queues.push_back(item.scalar());
        }
        return {};
      },
      "queues to declare at start-up");
  return s;
}

TEST(settings, file_then_env_then_flag_precedence) {
  broker_opts o;
  auto s = declare(o);
  auto doc = parse_yaml(R"(
broker:
  listen: 0.0.0.0:1
  leaseTimeout: 90s
  maxBody: 2MiB
  fsync: no
queues: [a, b]
log:
  level: debug
)",
                        "outrider.yaml");
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_TRUE(s.apply_file(*doc));
  EXPECT_EQ(o.listen, "0.0.0.0:1");
  EXPECT_EQ(o.lease, 90s);
  EXPECT_EQ(o.max_body.bytes, 2u << 20);
  EXPECT_FALSE(o.fsync);
  EXPECT_EQ(o.queues, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.level, log::level::debug);

  std::map<std::string, std::string> env{{"OUTRIDER_BROKER_LISTEN", "127.0.0.1:2"},
                                         {"OUTRIDER_LOG_LEVEL", "warn"}};
  ASSERT_TRUE(s.apply_env([&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  }));
  EXPECT_EQ(o.listen, "127.0.0.1:2");
  EXPECT_EQ(o.level, log::level::warn);

  ASSERT_TRUE(s.apply_flag("listen", "127.0.0.1:3"));
  EXPECT_EQ(o.listen, "127.0.0.1:3");
  EXPECT_EQ(o.lease, 90s);  // untouched by env and flags
}

TEST(settings, unknown_key_names_file_line_and_suggests) {
  broker_opts o;
  auto s = declare(o);
  auto doc = parse_yaml("broker:\n  listen: x\n  leaseTimout: 5s\n", "outrider.yaml");
  ASSERT_TRUE(doc);
  auto r = s.apply_file(*doc);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::config_invalid);
  EXPECT_EQ(r.error().message,
            "outrider.yaml:3:3: key 'broker.leaseTimout': unknown key (did you mean "
            "'broker.leaseTimeout'?)");
}

TEST(settings, bad_values_name_their_source) {
  broker_opts o;
  auto s = declare(o);
  auto doc = parse_yaml("broker:\n  maxAttempts: three\n", "f.yaml");
  auto r = s.apply_file(*doc);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "f.yaml:2:3: key 'broker.maxAttempts': expected a non-negative integer below 2^32, got "
            "'three'");

  auto env = s.apply_env([](const std::string& k) -> std::optional<std::string> {
    if (k == "OUTRIDER_BROKER_LEASE_TIMEOUT") return "soon";
    return std::nullopt;
  });
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find(
                "environment variable OUTRIDER_BROKER_LEASE_TIMEOUT: invalid duration 'soon'"),
            std::string::npos)
      << env.error().message;

  auto flag = s.apply_flag("max-body", "12XB");
  ASSERT_FALSE(flag);
  EXPECT_NE(flag.error().message.find("--max-body: expected a size"), std::string::npos);
  EXPECT_FALSE(s.apply_flag("no-such-flag", "1"));
}

TEST(settings, structure_errors) {
  broker_opts o;
  auto s = declare(o);
  EXPECT_FALSE(s.apply_file(*parse_yaml("broker: 5\n")));
  EXPECT_FALSE(s.apply_file(*parse_yaml("broker:\n  listen: [a, b]\n")));
  EXPECT_FALSE(s.apply_file(*parse_yaml("queues: {a: 1}\n")));
  EXPECT_FALSE(s.apply_file(*parse_yaml("- just\n- a list\n")));
  EXPECT_TRUE(s.apply_file(*parse_yaml("")));
}

TEST(node, yaml_syntax_errors_and_duplicates) {
  auto bad = parse_yaml("a: [1, 2\n", "x.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::config_invalid);
  EXPECT_TRUE(bad.error().message.starts_with("x.yaml:")) << bad.error().message;
  auto dup = parse_yaml("a: 1\na: 2\n", "d.yaml");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("duplicate key"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(load_yaml_file("/nonexistent/outrider.yaml"));
}

TEST(parse_value, scalars) {
  byte_size b;
  EXPECT_TRUE(parse_value("512KiB", b));
  EXPECT_EQ(b.bytes, 512u * 1024);
  EXPECT_TRUE(parse_value("100", b));
  EXPECT_EQ(b.bytes, 100u);
  EXPECT_FALSE(parse_value("99999999999999GiB", b));
  std::uint16_t port = 0;
  EXPECT_FALSE(parse_value("70000", port));
  EXPECT_TRUE(parse_value("8080", port));
  double d = 0;
  EXPECT_TRUE(parse_value("0.25", d));
  EXPECT_FALSE(parse_value("0.25x", d));
  bool flag = false;
  EXPECT_TRUE(parse_value("ON", flag));
  EXPECT_TRUE(flag);
  EXPECT_FALSE(parse_value("maybe", flag));
}

TEST(settings, markdown_table_lists_everything) {
  broker_opts o;
  auto s = declare(o);
  auto table = s.markdown_table();
  EXPECT_NE(table.find("| `broker.leaseTimeout` | `OUTRIDER_BROKER_LEASE_TIMEOUT` | "
                       "`--lease-timeout` | `30s` |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("`queues`"), std::string::npos);
}

}  // namespace
}  // namespace outrider::config
