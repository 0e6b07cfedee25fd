// Whole-process tests of `outrider sidecar`: a real `outrider broker`, the
// sidecar, and a small Python test app (tests/sidecar/app.py) that serves
// /dapr/subscribe and records every delivery.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "testing/http_call.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::http_call;
using testing::http_reply;
using testing::outrider_binary;
using testing::process;
using testing::raw_http;
namespace json = boost::json;

constexpr auto start_timeout = 20s;
const std::string app_script = std::string(OUTRIDER_SOURCE_DIR) + "/tests/sidecar/app.py";

class sidecar_process : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::temp_dir("outrider-sidecar-it");
    broker_port_ = testing::free_port();
    broker_ = new process(
        {outrider_binary(), "broker", "--listen", "127.0.0.1:" + std::to_string(broker_port_),
         "--data-dir", data_->path() + "/broker", "--metrics-listen", ""},
        {{}, "", "broker"});
    ASSERT_TRUE(broker_->wait_for_output("outrider broker listening on", start_timeout))
        << broker_->output();
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete data_;
  }

  // The test app with these programmatic subscriptions (Dapr JSON).
  void start_app(const std::string& subscriptions) {
    app_port_ = testing::free_port();
    app_ = std::make_unique<process>(
        std::vector<std::string>{"python3", app_script, std::to_string(app_port_), subscriptions},
        testing::process_options{{}, "", "app.py"});
    ASSERT_TRUE(app_->wait_for_output("test app listening", start_timeout)) << app_->output();
  }

  // The sidecar for `app_id` next to the app; returns once it listens.
  void start_sidecar(const std::string& app_id, std::vector<std::string> extra = {},
                     std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{outrider_binary(),
                                  "sidecar",
                                  "--app-id",
                                  app_id,
                                  "--app-port",
                                  std::to_string(app_port_),
                                  "--dapr-http-port",
                                  "0",
                                  "--metrics-port",
                                  "0",
                                  "--broker",
                                  "127.0.0.1:" + std::to_string(broker_port_),
                                  "--retry-initial-interval",
                                  "50ms",
                                  "--retry-max-interval",
                                  "200ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    sidecar_ = std::make_unique<process>(argv, testing::process_options{env, "", "sidecar"});
    ASSERT_TRUE(sidecar_->wait_for_output("outrider sidecar listening on", start_timeout))
        << sidecar_->output();
    std::smatch m;
    const std::string out = sidecar_->output();
    std::regex re("outrider sidecar listening on 127\\.0\\.0\\.1:(\\d+)");
    ASSERT_TRUE(std::regex_search(out, m, re)) << out;
    port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  }

  // Waits until /v1.0/healthz says 204 (backend, subscriptions and app ready).
  bool wait_healthy(std::chrono::milliseconds timeout = 15s, int want = 204) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (http_call(port_, "GET", "/v1.0/healthz").status == want) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  http_reply publish(const std::string& topic, const std::string& body,
                     const std::string& query = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return http_call(port_, "POST", "/v1.0/publish/pubsub/" + topic + query, body, headers);
  }

  // Deliveries the app recorded on `path` (all paths when empty).
  json::array deliveries(const std::string& path = "") {
    json::array out;
    auto r = http_call(app_port_, "GET", "/deliveries");
    if (r.status != 200) return out;
    const json::value all = json::parse(r.body);
    for (const auto& d : all.as_array()) {
      if (path.empty() || d.at("path").as_string() == path) out.push_back(d);
    }
    return out;
  }
  bool wait_deliveries(const std::string& path, std::size_t n, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (deliveries(path).size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return deliveries(path).size() >= n;
  }

  static inline testing::temp_dir* data_ = nullptr;
  static inline process* broker_ = nullptr;
  static inline std::uint16_t broker_port_ = 0;
  std::uint16_t app_port_ = 0;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> app_;
  std::unique_ptr<process> sidecar_;
};

TEST_F(sidecar_process, publish_and_subscribe_through_the_sidecar) {
  start_app(R"([{"pubsubname":"pubsub","topic":"orders","route":"/orders"}])");
  start_sidecar("shop");
  ASSERT_TRUE(wait_healthy());
  auto r = publish("orders", R"({"orderId":42})");
  ASSERT_EQ(r.status, 204) << r.body;
  const std::string id = r.header("outrider-message-id");
  EXPECT_FALSE(id.empty());
  ASSERT_TRUE(wait_deliveries("/orders", 1, 10s));
  auto d = deliveries("/orders").at(0);
  auto event = json::parse(d.at("body").as_string());
  EXPECT_EQ(event.at("id").as_string(), id);
  EXPECT_EQ(event.at("topic").as_string(), "orders");
  EXPECT_EQ(event.at("source").as_string(), "shop");
  EXPECT_EQ(event.at("data").at("orderId").as_int64(), 42);
  EXPECT_EQ(d.at("headers").at("content-type").as_string(), "application/cloudevents+json");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(deliveries("/orders").size(), 1U);  // acked: delivered once
  auto metrics = http_call(port_, "GET", "/v1.0/metadata");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("\"topic\":\"orders\""), std::string::npos) << metrics.body;
  EXPECT_EQ(sidecar_->stop(10s), 0);
}

// The delivery runtime's thread is named, so per-thread figures (the
// sidecar-publish benchmark's publish CPU, top -H) can tell it from the I/O
// threads: exactly one thread is `deliveries`.
TEST_F(sidecar_process, the_delivery_thread_is_named_deliveries) {
  start_app("[]");
  start_sidecar("named");
  ASSERT_TRUE(wait_healthy());
  int named = 0;
  int threads = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(sidecar_->pid()) + "/task")) {
    std::ifstream in(task.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    ++threads;
    if (comm == "deliveries") ++named;
  }
  EXPECT_EQ(named, 1) << threads << " threads";
  EXPECT_GT(threads, 1);
  EXPECT_EQ(sidecar_->stop(10s), 0);
}

TEST_F(sidecar_process, routing_rules_pick_the_path) {
  start_app(R"([{"pubsubname":"pubsub","topic":"routed","routes":{"rules":[
      {"match":"event.type == \"big\" && event.data.amount > 100","path":"/big"},
      {"match":"event.type == \"big\"","path":"/medium"}],"default":"/small"}}])");
  start_sidecar("router");
  ASSERT_TRUE(wait_healthy());
  ASSERT_EQ(publish("routed", R"({"amount":500})", "?metadata.cloudevent.type=big").status, 204);
  ASSERT_EQ(publish("routed", R"({"amount":5})", "?metadata.cloudevent.type=big").status, 204);
  ASSERT_EQ(publish("routed", R"({"amount":500})").status, 204);
  ASSERT_TRUE(wait_deliveries("/big", 1, 10s));
  ASSERT_TRUE(wait_deliveries("/medium", 1, 10s));
  ASSERT_TRUE(wait_deliveries("/small", 1, 10s));
  EXPECT_EQ(deliveries().size(), 3U);
}

TEST_F(sidecar_process, retries_then_dead_letters_to_the_topic) {
  start_app(R"([{"pubsubname":"pubsub","topic":"payments","route":"/payments/fail",
                 "deadLetterTopic":"payments-dead"},
                {"pubsubname":"pubsub","topic":"payments-dead","route":"/dead"},
                {"pubsubname":"pubsub","topic":"refunds","route":"/refunds/drop"}])");
  start_sidecar("billing", {"--retry-max-attempts", "3"});
  ASSERT_TRUE(wait_healthy());
  ASSERT_EQ(publish("payments", R"({"n":1})").status, 204);
  ASSERT_TRUE(wait_deliveries("/dead", 1, 15s));
  auto failed = deliveries("/payments/fail");
  EXPECT_EQ(failed.size(), 3U);  // three attempts, then the dead-letter topic
  auto dead = json::parse(deliveries("/dead").at(0).at("body").as_string());
  EXPECT_EQ(dead.at("data").at("n").as_int64(), 1);
  // 404 = DROP without a dead-letter topic: delivered once, not retried.
  ASSERT_EQ(publish("refunds", R"({"n":2})").status, 204);
  ASSERT_TRUE(wait_deliveries("/refunds/drop", 1, 10s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(deliveries("/refunds/drop").size(), 1U);
  EXPECT_EQ(deliveries("/payments/fail").size(), 3U);
}

TEST_F(sidecar_process, delayed_publish_arrives_after_the_delay_and_cancel_stops_it) {
  start_app(R"([{"pubsubname":"pubsub","topic":"reminders","route":"/reminders"}])");
  start_sidecar("reminder");
  ASSERT_TRUE(wait_healthy());
  const auto sent = std::chrono::steady_clock::now();
  auto kept = publish("reminders", R"({"keep":true})", "?metadata.deliverAfter=2s");
  ASSERT_EQ(kept.status, 204) << kept.body;
  auto dropped = publish("reminders", R"({"keep":false})", "?metadata.deliverAfter=2s");
  ASSERT_EQ(dropped.status, 204);
  const std::string dropped_id = dropped.header("outrider-message-id");
  auto c = http_call(port_, "DELETE", "/v1.0-alpha1/outrider/scheduled/pubsub/" + dropped_id);
  EXPECT_EQ(c.status, 204) << c.body;
  auto again = http_call(port_, "DELETE", "/v1.0-alpha1/outrider/scheduled/pubsub/" + dropped_id);
  EXPECT_EQ(again.status, 404) << again.body;
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(deliveries("/reminders").empty());  // never early
  ASSERT_TRUE(wait_deliveries("/reminders", 1, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 2s);
  std::this_thread::sleep_for(500ms);
  auto got = deliveries("/reminders");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_NE(got.at(0).at("body").as_string().find("\"keep\":true"), std::string::npos);
  auto late =
      http_call(port_, "DELETE",
                "/v1.0-alpha1/outrider/scheduled/pubsub/" + kept.header("outrider-message-id"));
  EXPECT_NE(late.status, 204);  // due already
  EXPECT_EQ(publish("reminders", "{}", "?metadata.deliverAfter=soon").status, 400);
}

TEST_F(sidecar_process, deliveries_pause_while_the_app_is_unhealthy) {
  start_app(R"([{"pubsubname":"pubsub","topic":"pings","route":"/pings"}])");
  start_sidecar("pinger", {"--enable-app-health-check", "true", "--app-health-probe-interval",
                           "100ms", "--app-health-threshold", "2"});
  ASSERT_TRUE(wait_healthy());
  ASSERT_EQ(http_call(app_port_, "POST", "/control/health", "fail").status, 204);
  ASSERT_TRUE(wait_healthy(10s, 500));
  ASSERT_EQ(publish("pings", R"({"while":"unhealthy"})").status, 204);  // publishing still works
  std::this_thread::sleep_for(800ms);
  EXPECT_TRUE(deliveries("/pings").empty());
  ASSERT_EQ(http_call(app_port_, "POST", "/control/health", "ok").status, 204);
  ASSERT_TRUE(wait_healthy());
  ASSERT_TRUE(wait_deliveries("/pings", 1, 10s));
}

TEST_F(sidecar_process, api_token_is_required_and_app_token_is_sent) {
  start_app(R"([{"pubsubname":"pubsub","topic":"secure","route":"/secure"}])");
  start_sidecar("vault", {}, {{"DAPR_API_TOKEN", "s3cret"}, {"APP_API_TOKEN", "app-t0ken"}});
  ASSERT_TRUE(wait_healthy());  // health needs no token
  auto denied = publish("secure", "{}");
  EXPECT_EQ(denied.status, 401);
  EXPECT_NE(denied.body.find("ERR_UNAUTHENTICATED"), std::string::npos) << denied.body;
  EXPECT_EQ(publish("secure", "{}", "", {{"dapr-api-token", "wrong"}}).status, 401);
  EXPECT_EQ(http_call(port_, "GET", "/v1.0/metadata").status, 401);
  ASSERT_EQ(publish("secure", R"({"ok":1})", "", {{"dapr-api-token", "s3cret"}}).status, 204);
  ASSERT_TRUE(wait_deliveries("/secure", 1, 10s));
  EXPECT_EQ(deliveries("/secure").at(0).at("headers").at("dapr-api-token").as_string(),
            "app-t0ken");
}

TEST_F(sidecar_process, malformed_requests_get_json_errors_and_the_sidecar_lives_on) {
  start_app("[]");
  start_sidecar("robust", {"--max-body-size", "64KiB"});
  ASSERT_TRUE(wait_healthy());
  auto unknown = http_call(port_, "POST", "/v1.0/publish/nope/t", "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("ERR_PUBSUB_NOT_FOUND"), std::string::npos) << unknown.body;
  auto bad_ce = publish("t", "{not json", "", {{"content-type", "application/cloudevents+json"}});
  EXPECT_EQ(bad_ce.status, 400) << bad_ce.body;
  EXPECT_NE(bad_ce.body.find("errorCode"), std::string::npos);
  EXPECT_EQ(publish("t", "{}", "?metadata.deliverAt=yesterday").status, 400);
  EXPECT_EQ(http_call(port_, "POST", "/v1.0-alpha1/publish/bulk/pubsub/t", "[{\"entryId\":").status,
            400);
  EXPECT_EQ(publish("t", std::string(100 * 1024, 'x')).status, 413);
  auto garbage = raw_http(port_, "\x01\x02 not http at all\r\n\r\n");
  EXPECT_TRUE(garbage.status == 0 || garbage.status == 400) << garbage.status;
  EXPECT_EQ(http_call(port_, "GET", "/v1.0/nothing-here").status, 404);
  // Still serving.
  EXPECT_EQ(publish("t", R"({"after":"garbage"})").status, 204);
  EXPECT_TRUE(sidecar_->running());
}

// Path of `name` on $PATH, or "".
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// The official @dapr/dapr npm SDK (pinned in tests/sidecar/dapr-sdk/package.json):
// DaprServer.pubsub.subscribe + DaprClient.pubsub.publish over HTTP. scripts/setup.sh
// runs `npm ci` there; if node_modules is missing this test runs it itself.
TEST_F(sidecar_process, official_dapr_js_sdk_publishes_and_subscribes) {
  const std::string node = find_program("node");
  const std::string npm = find_program("npm");
  if (node.empty() || npm.empty()) {
    GTEST_SKIP() << "node and npm are needed for the @dapr/dapr SDK test (not on PATH)";
  }
  const std::string sdk_dir = std::string(OUTRIDER_SOURCE_DIR) + "/tests/sidecar/dapr-sdk";
  const std::map<std::string, std::string> no_proxy{{"NO_PROXY", "127.0.0.1,localhost"},
                                                    {"no_proxy", "127.0.0.1,localhost"}};
  if (::access((sdk_dir + "/node_modules/@dapr/dapr/package.json").c_str(), R_OK) != 0) {
    process install({npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"},
                    {no_proxy, sdk_dir, "npm-ci"});
    ASSERT_EQ(install.wait(180s), 0) << install.output();
  }
  app_port_ = testing::free_port();
  start_sidecar("sdk-app");
  auto env = no_proxy;
  env["DAPR_HTTP_PORT"] = std::to_string(port_);
  env["APP_PORT"] = std::to_string(app_port_);
  process sdk({node, "test.mjs"}, {env, sdk_dir, "node-sdk"});
  EXPECT_EQ(sdk.wait(60s), 0) << sdk.output();
  EXPECT_NE(sdk.output().find("SDK OK"), std::string::npos) << sdk.output();
}

namespace statsd_and_configuration {

// Sends one UDP datagram to 127.0.0.1:port.
void send_udp(std::uint16_t port, const std::string& payload) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

}  // namespace statsd_and_configuration

TEST_F(sidecar_process, app_statsd_metrics_appear_on_the_metrics_endpoint) {
  start_app("[]");
  start_sidecar("metered", {"--enable-statsd", "true", "--statsd-port", "0"});
  const std::string out = sidecar_->output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("statsd on udp 127\\.0\\.0\\.1:(\\d+)"))) << out;
  const auto statsd_port = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  ASSERT_TRUE(std::regex_search(out, m, std::regex("metrics on http://127\\.0\\.0\\.1:(\\d+)")))
      << out;
  const auto metrics_port = static_cast<std::uint16_t>(std::stoi(m[1].str()));

  statsd_and_configuration::send_udp(
      statsd_port, "orders.placed:2|c|#store:berlin\nqueue.depth:7|g\ncheckout:120|ms\nbad line");
  // The datagram's lines are applied one by one on the sidecar's thread while this test scrapes:
  // wait until every expected series shows (the bad line is the last one applied), then check all.
  const std::vector<std::string> expected = {
      "app_orders_placed_total{store=\"berlin\"} 2", "app_queue_depth 7",
      "app_checkout_seconds_count 1", "outrider_statsd_dropped_total{reason=\"malformed\"} 1"};
  const auto all_shown = [&](const std::string& text) {
    return std::all_of(expected.begin(), expected.end(),
                       [&](const std::string& e) { return text.find(e) != std::string::npos; });
  };
  const auto end = std::chrono::steady_clock::now() + 15s;
  std::string text;
  while (std::chrono::steady_clock::now() < end) {
    text = http_call(metrics_port, "GET", "/metrics").body;
    if (all_shown(text)) break;
    std::this_thread::sleep_for(20ms);
  }
  for (const auto& e : expected) EXPECT_NE(text.find(e), std::string::npos) << e << "\n" << text;
}

TEST_F(sidecar_process, configuration_api_reads_a_file_store_and_notifies_on_change) {
  start_app("[]");
  const std::string dir = data_->path() + "/configuration";
  std::filesystem::create_directories(dir);
  const std::string store_file = dir + "/app.yaml";
  statsd_and_configuration::write_text(store_file, "greeting: hello\nlimits:\n  max: 3\n");
  statsd_and_configuration::write_text(
      dir + "/sidecar.yaml",
      "configurationStores:\n  - name: appconfig\n    file: " + store_file + "\n");
  start_sidecar("configured",
                {"--config", dir + "/sidecar.yaml", "--configuration-poll-interval", "50ms"});

  auto got = http_call(port_, "GET", "/v1.0/configuration/appconfig?key=greeting&key=limits.max");
  ASSERT_EQ(got.status, 200) << got.body;
  auto items = json::parse(got.body).as_object();
  EXPECT_EQ(items.at("greeting").at("value"), "hello");
  EXPECT_EQ(items.at("limits.max").at("value"), "3");
  EXPECT_EQ(http_call(port_, "GET", "/v1.0/configuration/nostore").status, 400);

  auto sub = http_call(port_, "GET", "/v1.0/configuration/appconfig/subscribe?key=greeting");
  ASSERT_EQ(sub.status, 200) << sub.body;
  const std::string id(json::parse(sub.body).at("id").as_string());

  statsd_and_configuration::write_text(store_file, "greeting: bonjour\nlimits:\n  max: 4\n");
  ASSERT_TRUE(wait_deliveries("/configuration/appconfig/greeting", 1, 15s));
  auto note =
      json::parse(deliveries("/configuration/appconfig/greeting")[0].at("body").as_string());
  EXPECT_EQ(note.at("id").as_string(), id);
  EXPECT_EQ(note.at("items").at("greeting").at("value"), "bonjour");
  EXPECT_EQ(note.at("items").at("greeting").at("version"), "2");
  EXPECT_TRUE(deliveries("/configuration/appconfig/limits.max").empty());  // not subscribed

  EXPECT_EQ(http_call(port_, "GET", "/v1.0/configuration/appconfig/" + id + "/unsubscribe").status,
            200);
  EXPECT_EQ(http_call(port_, "GET", "/v1.0/configuration/appconfig/" + id + "/unsubscribe").status,
            404);

  // A bad store declaration stops the sidecar with a message naming the file and key.
  statsd_and_configuration::write_text(dir + "/bad.yaml",
                                       "configurationStores:\n  - name: x\n    colour: red\n");
  process bad({outrider_binary(), "sidecar", "--app-id", "bad", "--config", dir + "/bad.yaml",
               "--dapr-http-port", "0", "--metrics-port", "0", "--broker",
               "127.0.0.1:" + std::to_string(broker_port_)},
              {{}, "", "bad-sidecar"});
  const auto code = bad.wait(start_timeout);
  EXPECT_EQ(code, std::optional<int>(2)) << bad.output();
  EXPECT_NE(bad.output().find("bad.yaml:3"), std::string::npos) << bad.output();
}

namespace admission {

// VmRSS of a process in bytes (0 if unreadable).
std::size_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// True once every thread of `pid` is stopped (state T in /proc/PID/task/*/stat).
bool all_threads_stopped(pid_t pid) {
  std::error_code ec;
  bool any = false;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) return false;
    const char state = text[close + 2];
    if (state != 'T' && state != 't') return false;
    any = true;
  }
  return any;
}

}  // namespace admission

// The broker is paused (SIGSTOP), so publishes stay in flight: the first
// --max-publishes-in-flight wait, every later one (single or bulk) is refused
// at once with 429 + Retry-After and a JSON error, counted in the metrics, and
// a flood of large refused publishes does not grow the sidecar's memory. When
// the broker resumes, the waiting publishes complete and new ones are admitted.
TEST_F(sidecar_process, publishes_beyond_the_in_flight_limit_get_429_and_memory_stays_bounded) {
  constexpr int limit = 4;
  start_app("[]");
  start_sidecar("admitted", {"--max-publishes-in-flight", std::to_string(limit)});
  ASSERT_TRUE(wait_healthy());
  const std::string out = sidecar_->output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("metrics on http://127\\.0\\.0\\.1:(\\d+)")))
      << out;
  const auto metrics_port = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  ASSERT_EQ(publish("flood", R"({"warm":1})").status, 204);

  broker_->signal(SIGSTOP);
  struct resume_broker {
    ~resume_broker() { broker->signal(SIGCONT); }
    process* broker;
  } resume{broker_};
  const auto stopped_by = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < stopped_by &&
         !admission::all_threads_stopped(broker_->pid())) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(admission::all_threads_stopped(broker_->pid()));

  std::vector<http_reply> waited(limit);
  std::vector<std::thread> waiting;
  for (int i = 0; i < limit; ++i) {
    waiting.emplace_back([&, i] { waited[i] = publish("flood", R"({"n":1})"); });
  }
  auto metric = [&](const std::string& line) {
    return http_call(metrics_port, "GET", "/metrics").body.find(line) != std::string::npos;
  };
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < end &&
         !metric("outrider_sidecar_publishes_in_flight " + std::to_string(limit))) {
    std::this_thread::sleep_for(20ms);
  }
  if (!metric("outrider_sidecar_publishes_in_flight " + std::to_string(limit))) {
    broker_->signal(SIGCONT);
    for (auto& t : waiting) t.join();
    FAIL() << http_call(metrics_port, "GET", "/metrics").body;
  }

  auto refused = publish("flood", R"({"n":2})");
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(json::parse(refused.body).at("errorCode").as_string(), "ERR_RESOURCE_EXHAUSTED")
      << refused.body;
  auto bulk = http_call(port_, "POST", "/v1.0-alpha1/publish/bulk/pubsub/flood",
                        R"([{"entryId":"a","event":{"n":3}},{"entryId":"b","event":{"n":4}}])");
  EXPECT_EQ(bulk.status, 429) << bulk.body;

  // A flood of 64 KiB publishes (~64 MiB in all) is refused without holding them.
  const std::size_t rss_before = admission::rss_bytes(sidecar_->pid());
  const std::string big = "\"" + std::string(64 * 1024, 'x') + "\"";
  int flood_refused = 0;
  for (int i = 0; i < 1000; ++i) {
    if (publish("flood", big).status == 429) ++flood_refused;
  }
  EXPECT_EQ(flood_refused, 1000);
  const std::size_t rss_after = admission::rss_bytes(sidecar_->pid());
  EXPECT_LT(rss_after, rss_before + 32 * 1024 * 1024)
      << "RSS grew from " << rss_before << " to " << rss_after << " bytes";
  EXPECT_TRUE(metric("outrider_sidecar_publish_total{pubsub=\"pubsub\",outcome=\"rejected\"} 1002"))
      << http_call(metrics_port, "GET", "/metrics").body;

  broker_->signal(SIGCONT);
  for (auto& t : waiting) t.join();
  for (const auto& w : waited) EXPECT_EQ(w.status, 204) << w.body;
  EXPECT_EQ(publish("flood", R"({"n":5})").status, 204);
  EXPECT_TRUE(metric("outrider_sidecar_publishes_in_flight 0"));
  EXPECT_EQ(sidecar_->stop(10s), 0);
}
}  // namespace
}  // namespace outrider
