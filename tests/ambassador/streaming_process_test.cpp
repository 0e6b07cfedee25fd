// Streamed bodies through two real sidecars: caller -> frontend sidecar ->
// backend sidecar -> app (tests/ambassador/stream_peer.py) and back. Large
// uploads and downloads arrive intact (SHA-256) while the sidecars' peak RSS
// stays far below the body size; a trickled chunked answer reaches the caller
// before the app has finished it; an app that resets mid-body gives the
// caller a cut response, never a clean short one.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

#include "testing/http_call.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::outrider_binary;
using testing::process;
namespace json = boost::json;

constexpr auto start_timeout = 20s;
const std::string peer_script =
    std::string(OUTRIDER_SOURCE_DIR) + "/tests/ambassador/stream_peer.py";
constexpr std::uint64_t mib = 1024 * 1024;
// Peak RSS a sidecar may reach while moving 256 MiB bodies (it idles near
// 15 MiB; buffering one body would take over 256 MiB).
constexpr std::uint64_t rss_bound_kib = 96 * 1024;

std::uint16_t port_from_output(const process& p, const std::string& marker) {
  std::regex re(marker + "[^\\n]*?:([0-9]+)");
  std::smatch m;
  const std::string out = p.output();
  return std::regex_search(out, m, re) ? static_cast<std::uint16_t>(std::stoi(m[1].str())) : 0;
}

// VmHWM (peak resident set) of `pid`, in KiB; 0 if unreadable.
std::uint64_t peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// Runs stream_peer.py with `args`; returns its JSON report (last output line).
json::object run_peer(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"python3", peer_script};
  argv.insert(argv.end(), args.begin(), args.end());
  process p(argv, {{}, "", "stream_peer-" + args[0]});
  auto code = p.wait(240s);
  EXPECT_EQ(code, 0) << p.output();
  const std::string out = p.output();
  auto brace = out.rfind("\n{");
  auto text = out.substr(brace == std::string::npos ? out.find('{') : brace + 1);
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec || !doc.is_object()) {
    ADD_FAILURE() << "no JSON report from stream_peer: " << out;
    return {};
  }
  return doc.as_object();
}

class streaming_process : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::temp_dir("outrider-streaming-it");
    const auto broker_port = testing::free_port();
    broker_ = new process(
        {outrider_binary(), "broker", "--listen", "127.0.0.1:" + std::to_string(broker_port),
         "--data-dir", data_->path() + "/broker", "--metrics-listen", ""},
        {{}, "", "broker"});
    ASSERT_TRUE(broker_->wait_for_output("outrider broker listening on", start_timeout));
    app_port_ = testing::free_port();
    app_ = new process({"python3", peer_script, "app", std::to_string(app_port_)},
                       {{}, "", "stream_peer-app"});
    ASSERT_TRUE(app_->wait_for_output("stream peer listening", start_timeout));
    const std::string broker = "127.0.0.1:" + std::to_string(broker_port);
    backend_ = new process({outrider_binary(), "sidecar", "--app-id", "backend", "--app-port",
                            std::to_string(app_port_), "--dapr-http-port", "0", "--metrics-port",
                            "0", "--broker", broker},
                           {{}, "", "sidecar-backend"});
    ASSERT_TRUE(backend_->wait_for_output("outrider sidecar listening on", start_timeout));
    const auto backend_port = port_from_output(*backend_, "outrider sidecar listening on");
    ASSERT_NE(backend_port, 0);
    const std::string resolve = data_->path() + "/apps.yaml";
    std::ofstream(resolve) << "apps:\n  backend: \"127.0.0.1:" << backend_port << "\"\n";
    proxy_port_ = testing::free_port();
    frontend_ =
        new process({outrider_binary(), "sidecar", "--app-id", "frontend", "--dapr-http-port", "0",
                     "--metrics-port", "0", "--broker", broker, "--resolve-file", resolve,
                     "--proxy-port", std::to_string(proxy_port_)},
                    {{}, "", "sidecar-frontend"});
    ASSERT_TRUE(frontend_->wait_for_output("outrider sidecar listening on", start_timeout));
    frontend_port_ = port_from_output(*frontend_, "outrider sidecar listening on");
    ASSERT_NE(frontend_port_, 0);
  }
  static void TearDownTestSuite() {
    delete frontend_;
    delete backend_;
    delete app_;
    delete broker_;
    delete data_;
  }

  static std::string invoke_url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(frontend_port_) + "/v1.0/invoke/backend/method" +
           path;
  }

  static void expect_bounded_rss(const std::string& what) {
    for (auto* p : {frontend_, backend_}) {
      const auto kib = peak_rss_kib(p->pid());
      EXPECT_GT(kib, 0u);
      EXPECT_LT(kib, rss_bound_kib)
          << what << ": a sidecar's peak RSS reached " << kib / 1024 << " MiB";
    }
  }

  static inline testing::temp_dir* data_ = nullptr;
  static inline process* broker_ = nullptr;
  static inline process* app_ = nullptr;
  static inline process* backend_ = nullptr;
  static inline process* frontend_ = nullptr;
  static inline std::uint16_t app_port_ = 0;
  static inline std::uint16_t frontend_port_ = 0;
  static inline std::uint16_t proxy_port_ = 0;
};

TEST_F(streaming_process, uploads_of_256_mib_arrive_intact_with_bounded_sidecar_memory) {
  for (std::string mode : {"length", "chunked"}) {
    const std::uint64_t size = 256 * mib + 12345;
    auto report = run_peer({"upload", invoke_url("/upload"), std::to_string(size), mode});
    ASSERT_EQ(report["status"].as_int64(), 200) << json::serialize(report);
    auto reply = json::parse(report["reply"].as_string()).as_object();
    EXPECT_EQ(reply["bytes"].as_int64(), static_cast<std::int64_t>(size)) << mode;
    EXPECT_EQ(reply["sha256"].as_string(), report["sent_sha256"].as_string()) << mode;
    std::cout << "upload 256 MiB (" << mode
              << ") through two sidecars: " << report["seconds"].to_number<double>() << " s\n";
  }
  expect_bounded_rss("after 256 MiB uploads");
}

TEST_F(streaming_process, downloads_of_256_mib_arrive_intact_with_bounded_sidecar_memory) {
  for (std::string chunked : {"0", "1"}) {
    const std::uint64_t size = 256 * mib + 999;
    auto report = run_peer(
        {"download", invoke_url("/download?size=" + std::to_string(size) + "&chunked=" + chunked),
         std::to_string(size)});
    ASSERT_EQ(report["status"].as_int64(), 200) << json::serialize(report);
    EXPECT_EQ(report["bytes"].as_int64(), static_cast<std::int64_t>(size)) << chunked;
    EXPECT_EQ(report["sha256"].as_string(), report["expected_sha256"].as_string()) << chunked;
    std::cout << "download 256 MiB (chunked=" << chunked
              << ") through two sidecars: " << report["seconds"].to_number<double>() << " s\n";
  }
  expect_bounded_rss("after 256 MiB downloads");
}

// A blocking loopback connection read with poll.
class connection {
 public:
  explicit connection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~connection() { ::close(fd_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  bool connected() const { return connected_; }
  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads until `needle` is in what arrived, the peer closes, or `timeout` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[65536];
      const auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      received.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  std::string received;

 private:
  int fd_;
  bool connected_ = false;
};

TEST_F(streaming_process, a_trickled_chunk_reaches_the_caller_before_the_app_finishes) {
  connection c(frontend_port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET /v1.0/invoke/backend/method/trickle HTTP/1.1\r\nHost: x\r\n\r\n"));
  // The app writes its second piece only after /release, which only this
  // test sends, and only once the first piece arrived here.
  ASSERT_TRUE(c.read_until("first-piece", 60s)) << c.received;
  EXPECT_NE(c.received.find("HTTP/1.1 200"), std::string::npos) << c.received;
  EXPECT_EQ(c.received.find("second-piece"), std::string::npos);
  auto released = testing::http_call(app_port_, "GET", "/release");
  ASSERT_EQ(released.status, 200);
  ASSERT_TRUE(c.read_until("second-piece", 60s)) << c.received;
  EXPECT_TRUE(c.read_until("\r\n0\r\n\r\n", 60s)) << "the chunked answer ends cleanly";
}

TEST_F(streaming_process, an_app_reset_mid_body_cuts_the_callers_response) {
  auto r = testing::raw_http(
      frontend_port_, "GET /v1.0/invoke/backend/method/reset HTTP/1.1\r\nHost: x\r\n\r\n", 120s);
  // The head went out before the reset: the caller sees the promised length
  // and a connection closed short of it (a cut, not a clean end).
  ASSERT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.header("Content-Length"), std::to_string(8 * mib)) << r.head;
  EXPECT_LT(r.body.size(), 8 * mib);
  // The sidecars are fine afterwards.
  auto again = run_peer({"download", invoke_url("/download?size=100000"), "100000"});
  EXPECT_EQ(again["sha256"].as_string(), again["expected_sha256"].as_string());
}

TEST_F(streaming_process, the_forward_proxy_streams_a_large_answer_unchanged) {
  const std::string target = "/download?size=" + std::to_string(8 * mib + 3);
  auto direct = testing::raw_http(
      app_port_, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 120s);
  ASSERT_EQ(direct.status, 200);
  auto proxied = testing::raw_http(proxy_port_,
                                   "GET http://127.0.0.1:" + std::to_string(app_port_) + target +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                   120s);
  ASSERT_EQ(proxied.status, 200) << proxied.head;
  EXPECT_EQ(proxied.header("Content-Length"), std::to_string(8 * mib + 3)) << proxied.head;
  EXPECT_EQ(proxied.body.size(), 8 * mib + 3);
  EXPECT_TRUE(proxied.body == direct.body) << "the proxied body differs from the app's";
  expect_bounded_rss("after a proxied 8 MiB answer");
}

}  // namespace
}  // namespace outrider
