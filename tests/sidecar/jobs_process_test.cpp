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
    app_ = launch_app(app_port_);
    ASSERT_FALSE(HasFailure());
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

  void start_sidecar() { sidecar_ = launch_sidecar(app_port_, port_); }

  // A sidecar for app id "jobs-app" in front of the app on `app_port`; sets `port` to its HTTP
  // port.
  std::unique_ptr<process> launch_sidecar(std::uint16_t app_port, std::uint16_t& port) {
    auto sidecar = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "sidecar", "--app-id", "jobs-app", "--app-port",
                                 std::to_string(app_port), "--dapr-http-port", "0",
                                 "--metrics-port", "0", "--broker",
                                 "127.0.0.1:" + std::to_string(broker_port_)},
        testing::process_options{{}, "", "sidecar"});
    EXPECT_TRUE(sidecar->wait_for_output("outrider sidecar listening on", start_timeout))
        << sidecar->output();
    std::smatch m;
    const std::string out = sidecar->output();
    std::regex re("outrider sidecar listening on 127\\.0\\.0\\.1:(\\d+)");
    EXPECT_TRUE(std::regex_search(out, m, re)) << out;
    port = m.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(m[1].str()));
    return sidecar;
  }

  std::unique_ptr<process> launch_app(std::uint16_t port) {
    auto app = std::make_unique<process>(
        std::vector<std::string>{"python3", app_script, std::to_string(port), "[]"},
        testing::process_options{{}, "", "app.py"});
    EXPECT_TRUE(app->wait_for_output("test app listening", start_timeout)) << app->output();
    return app;
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

  json::array firings(const std::string& name) { return firings_at(app_port_, name); }
  json::array firings_at(std::uint16_t app_port, const std::string& name) {
    json::array out;
    auto r = http_call(app_port, "GET", "/deliveries");
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

// Two replicas of one app id (two apps, two sidecars, one broker): a job
// scheduled through either sidecar is one job. Each firing reaches exactly one
// replica, either replica reads and deletes it, and nothing fires twice.
TEST_F(jobs_process, replicas_of_one_app_share_each_job_and_each_firing_reaches_one_of_them) {
  const std::uint16_t app2_port = testing::free_port();
  auto app2 = launch_app(app2_port);
  std::uint16_t port2 = 0;
  auto sidecar2 = launch_sidecar(app2_port, port2);
  ASSERT_FALSE(HasFailure());

  const auto total = [&](const std::string& name) {
    return firings_at(app_port_, name).size() + firings_at(app2_port, name).size();
  };
  const auto wait_total = [&](const std::string& name, std::size_t n) {
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < end && total(name) < n) {
      std::this_thread::sleep_for(50ms);
    }
    return total(name) >= n;
  };

  // Scheduled through replica 1, read through replica 2.
  ASSERT_EQ(schedule("/v1.0-alpha1/jobs/shared",
                     R"({"schedule":"@every 1s","dueTime":"1s","repeats":4,"data":"s"})")
                .status,
            204);
  auto got = http_call(port2, "GET", "/v1.0-alpha1/jobs/shared");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(json::parse(got.body).at("repeats").as_int64(), 4);
  // The same name through replica 2 without overwrite: refused, it is the same job.
  auto dup = http_call(port2, "POST", "/v1.0-alpha1/jobs/shared", R"({"dueTime":"1h"})",
                       {{"content-type", "application/json"}});
  EXPECT_EQ(dup.status, 500) << dup.body;
  EXPECT_EQ(error_code(dup), "DAPR_SCHEDULER_SCHEDULE_JOB") << dup.body;

  // Scheduled through replica 1, deleted through replica 2 before it is due.
  const auto deleted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(schedule("/v1.0-alpha1/jobs/dropped", R"({"dueTime":"3s"})").status, 204);
  EXPECT_EQ(http_call(port2, "DELETE", "/v1.0-alpha1/jobs/dropped").status, 204);
  EXPECT_EQ(error_code(http_call(port_, "GET", "/v1.0-alpha1/jobs/dropped")),
            "DAPR_SCHEDULER_GET_JOB");

  // Four firings in all, split over the replicas however the broker hands them out.
  ASSERT_TRUE(wait_total("shared", 4)) << total("shared") << " firings";
  // The job is gone for both replicas once its repeats are used up.
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end &&
         http_call(port2, "GET", "/v1.0-alpha1/jobs/shared").status != 500) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(error_code(http_call(port2, "GET", "/v1.0-alpha1/jobs/shared")),
            "DAPR_SCHEDULER_GET_JOB");
  // Past every due time plus a period: no fifth firing, no duplicate, nothing deleted fired.
  std::this_thread::sleep_until(
      std::max(deleted_at + 4s, std::chrono::steady_clock::now() + 1500ms));
  EXPECT_EQ(total("shared"), 4U);
  EXPECT_EQ(total("dropped"), 0U);
  for (const auto port : {app_port_, app2_port}) {
    for (const auto& c : firings_at(port, "shared")) EXPECT_EQ(c.at("body").as_string(), R"("s")");
  }
}

}  // namespace
}  // namespace outrider
