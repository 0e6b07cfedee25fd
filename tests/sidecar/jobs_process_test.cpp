// Whole-process tests of the jobs API: a real `outrider broker`, `outrider
// sidecar` and the Python test app (tests/sidecar/app.py records every POST,
// so job firings show up as POST /job/{name}; a job named "fail" gets
// 500). Deadlines are generous (a loaded 2-core machine); nothing asserts on
// timing except that nothing fires before its due time.
#include <boost/json.hpp>
#include <chrono>
#include <gtest/gtest.h>
#include <regex>
#include <thread>

#include "testing/http_call.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::http_call;
using testing::http_reply;
using testing::outrider_binary;
using testing::process;
namespace json = boost::json;

constexpr auto start_timeout = 30s;
const std::string app_script = std::string(OUTRIDER_SOURCE_DIR) + "/tests/sidecar/app.py";

std::string error_code(const http_reply& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("errorCode")) return "";
  return std::string(v.at("errorCode").as_string());
}

class jobs_process : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = std::make_unique<testing::temp_dir>("outrider-jobs-it");
    broker_port_ = testing::free_port();
    start_broker();
    app_port_ = testing::free_port();
    app_ = std::make_unique<process>(
        std::vector<std::string>{"python3", app_script, std::to_string(app_port_), "[]"},
        testing::process_options{{}, "", "app.py"});
    ASSERT_TRUE(app_->wait_for_output("test app listening", start_timeout)) << app_->output();
    start_sidecar();
  }
  void TearDown() override {
    sidecar_.reset();
    app_.reset();
    broker_.reset();
  }

  void start_broker() {
    broker_ = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "broker", "--listen",
                                 "127.0.0.1:" + std::to_string(broker_port_), "--data-dir",
                                 data_->path() + "/broker", "--metrics-listen", ""},
        testing::process_options{{}, "", "broker"});
    ASSERT_TRUE(broker_->wait_for_output("outrider broker listening on", start_timeout))
        << broker_->output();
  }

  void start_sidecar() {
    sidecar_ = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "sidecar", "--app-id", "jobs-app", "--app-port",
                                 std::to_string(app_port_), "--dapr-http-port", "0",
                                 "--metrics-port", "0", "--broker",
                                 "127.0.0.1:" + std::to_string(broker_port_)},
        testing::process_options{{}, "", "sidecar"});
    ASSERT_TRUE(sidecar_->wait_for_output("outrider sidecar listening on", start_timeout))
        << sidecar_->output();
    std::smatch m;
    const std::string out = sidecar_->output();
    std::regex re("outrider sidecar listening on 127\\.0\\.0\\.1:(\\d+)");
    ASSERT_TRUE(std::regex_search(out, m, re)) << out;
    port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  }

  // POST a job; retried while the sidecar is still connecting to the broker.
  http_reply schedule(const std::string& path, const std::string& body) {
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (true) {
      auto r = http_call(port_, "POST", path, body, {{"content-type", "application/json"}});
      const bool connecting =
          r.status == 0 || r.body.find("not reachable yet") != std::string::npos;
      if (!connecting || std::chrono::steady_clock::now() > end) return r;
      std::this_thread::sleep_for(50ms);
    }
  }

  json::array firings(const std::string& name) {
    json::array out;
    auto r = http_call(app_port_, "GET", "/deliveries");
    if (r.status != 200) return out;
    const json::value all = json::parse(r.body);
    for (const auto& d : all.as_array()) {
      if (d.at("path").as_string() == "/job/" + name) out.push_back(d);
    }
    return out;
  }
  bool wait_firings(const std::string& name, std::size_t n, std::chrono::seconds timeout = 60s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (firings(name).size() >= n) return true;
      std::this_thread::sleep_for(50ms);
    }
    return firings(name).size() >= n;
  }
  // Polls GET until it answers `status`.
  http_reply wait_get(const std::string& path, int status, std::chrono::seconds timeout = 30s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    http_reply r;
    while (std::chrono::steady_clock::now() < end) {
      r = http_call(port_, "GET", path);
      if (r.status == status) return r;
      std::this_thread::sleep_for(50ms);
    }
    return r;
  }

  std::unique_ptr<testing::temp_dir> data_;
  std::unique_ptr<process> broker_;
  std::unique_ptr<process> app_;
  std::unique_ptr<process> sidecar_;
  std::uint16_t broker_port_ = 0;
  std::uint16_t app_port_ = 0;
  std::uint16_t port_ = 0;
};

TEST_F(jobs_process, repeats_get_overwrite_delete_failure_policy_and_bad_input) {
  const auto scheduled_at = std::chrono::system_clock::now();
  auto r = schedule("/v1.0-alpha1/jobs/tick",
                    R"({"schedule":"@every 1s","dueTime":"1s","repeats":3,"data":{"n":1}})");
  ASSERT_EQ(r.status, 204) << r.body;

  auto got = http_call(port_, "GET", "/v1.0-alpha1/jobs/tick");
  ASSERT_EQ(got.status, 200) << got.body;
  auto job = json::parse(got.body).as_object();
  EXPECT_EQ(job.at("name").as_string(), "tick");
  EXPECT_EQ(job.at("schedule").as_string(), "@every 1s");
  EXPECT_EQ(job.at("dueTime").as_string(), "1s");
  EXPECT_EQ(job.at("repeats").as_int64(), 3);
  EXPECT_EQ(json::serialize(job.at("data")), R"({"n":1})");

  // The same name again without overwrite: refused.
  r = schedule("/v1.0-alpha1/jobs/tick", R"({"dueTime":"1h"})");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(error_code(r), "DAPR_SCHEDULER_SCHEDULE_JOB") << r.body;

  // Three calls, with the data as JSON, none before the due time.
  ASSERT_TRUE(wait_firings("tick", 3)) << firings("tick").size() << " firings";
  const auto calls = firings("tick");
  for (const auto& c : calls) {
    EXPECT_EQ(c.at("body").as_string(), R"({"n":1})");
    EXPECT_EQ(c.at("headers").at("content-type").as_string(), "application/json");
  }
  EXPECT_GE(std::chrono::system_clock::now() - scheduled_at, 1s);
  // A finished job is removed, as Dapr does; no fourth call comes.
  auto gone = wait_get("/v1.0-alpha1/jobs/tick", 500);
  EXPECT_EQ(error_code(gone), "DAPR_SCHEDULER_GET_JOB") << gone.body;

  // Overwrite (stable /v1.0 path): the old definition's firing never reaches the app.
  ASSERT_EQ(schedule("/v1.0/jobs/later", R"({"dueTime":"2s","data":"old"})").status, 204);
  r = schedule("/v1.0/jobs/later", R"({"dueTime":"1s","data":"new","overwrite":true})");
  ASSERT_EQ(r.status, 204) << r.body;
  ASSERT_TRUE(wait_firings("later", 1));

  // Delete: the pending firing is cancelled.
  const auto gone_at = std::chrono::steady_clock::now();
  ASSERT_EQ(schedule("/v1.0-alpha1/jobs/gone", R"({"dueTime":"2s"})").status, 204);
  EXPECT_EQ(http_call(port_, "GET", "/v1.0-alpha1/jobs/gone").status, 200);
  EXPECT_EQ(http_call(port_, "DELETE", "/v1.0-alpha1/jobs/gone").status, 204);
  EXPECT_EQ(error_code(http_call(port_, "GET", "/v1.0-alpha1/jobs/gone")),
            "DAPR_SCHEDULER_GET_JOB");
  EXPECT_EQ(http_call(port_, "DELETE", "/v1.0-alpha1/jobs/never-was").status, 204);

  // Failure policy: the app fails every call; 1 call + 2 retries, then it gives up.
  ASSERT_EQ(
      schedule(
          "/v1.0-alpha1/jobs/fail",
          R"({"dueTime":"0s","failurePolicy":{"constant":{"interval":"200ms","maxRetries":2}}})")
          .status,
      204);
  ASSERT_TRUE(wait_firings("fail", 3));
  wait_get("/v1.0-alpha1/jobs/fail", 500);

  // Bad input: 400 with Dapr's codes.
  struct bad_case {
    std::string path, body, code;
  };
  for (const auto& c : std::vector<bad_case>{
           {"/v1.0-alpha1/jobs/b", R"({"data":1})", "DAPR_SCHEDULER_SCHEDULE_EMPTY"},
           {"/v1.0-alpha1/jobs/b", R"({"schedule":"* * *"})", "DAPR_SCHEDULER_SCHEDULE_EMPTY"},
           {"/v1.0-alpha1/jobs/b", "not json", "DAPR_SCHEDULER_EMPTY"},
           {"/v1.0-alpha1/jobs/b", R"({"dueTime":"1s","repeats":"x"})", "DAPR_SCHEDULER_EMPTY"},
           {"/v1.0-alpha1/jobs/b%20c", R"({"dueTime":"1s"})", "DAPR_SCHEDULER_JOB_NAME"},
       }) {
    auto b = schedule(c.path, c.body);
    EXPECT_EQ(b.status, 400) << c.body << " " << b.body;
    EXPECT_EQ(error_code(b), c.code) << c.body << " " << b.body;
  }

  // Nothing deleted or overwritten ever fired, and "tick" stopped at three.
  std::this_thread::sleep_until(gone_at + 4s);  // past every due time above
  EXPECT_TRUE(firings("gone").empty());
  EXPECT_EQ(firings("tick").size(), 3U);
  for (const auto& c : firings("later")) EXPECT_EQ(c.at("body").as_string(), R"("new")");
  EXPECT_EQ(firings("fail").size(), 3U);
}

TEST_F(jobs_process, a_pending_job_fires_after_sidecar_and_broker_restarts) {
  ASSERT_EQ(
      schedule("/v1.0-alpha1/jobs/durable", R"({"dueTime":"4s","data":{"kept":true}})").status,
      204);
  sidecar_->kill_now();  // a crash, not a graceful stop
  sidecar_.reset();
  ASSERT_TRUE(broker_->stop().has_value());
  broker_.reset();
  start_broker();
  start_sidecar();
  ASSERT_TRUE(wait_firings("durable", 1, 90s));
  EXPECT_EQ(firings("durable")[0].at("body").as_string(), R"({"kept":true})");
}

}  // namespace
}  // namespace outrider
