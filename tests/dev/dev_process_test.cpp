// Whole-process tests of `outrider dev`: a tiny system of two Python apps
// (standard library only, written by the test): `pub` publishes a numbered
// greeting through its sidecar every 100 ms, `sub` subscribes and records
// them, and crashes on its first delivery. The runner must start the broker,
// the collector and both sidecars, restart the crashed app, answer on its
// status endpoint, and stop every process on SIGINT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>
#include <thread>

#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::outrider_binary;
using testing::process;
namespace json = boost::json;

constexpr auto start_timeout = 90s;  // broker, collector, two sidecars, two apps on a busy machine
constexpr auto flow_timeout = 60s;

const char* const sub_py = R"PY(import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/dapr/subscribe":
            self.reply(200, json.dumps([{"pubsubname": "pubsub", "topic": "greetings", "route": "/greetings"}]).encode())
        elif self.path == "/healthz":
            self.reply(200)
        else:
            self.reply(404)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if not os.path.exists("crashed-once"):
            open("crashed-once", "w").close()
            print("sub: crashing on purpose", flush=True)
            os._exit(3)
        event = json.loads(body)
        with open("received.txt", "a") as f:
            f.write(json.dumps(event.get("data")) + "\n")
        self.reply(200, b'{"status":"SUCCESS"}')

port = int(os.environ["APP_PORT"])
print(f"sub listening on {port} as {os.environ['APP_ID']}, sidecar {os.environ['DAPR_HOST']}:{os.environ['DAPR_HTTP_PORT']}, "
      f"otlp {os.environ.get('OTEL_EXPORTER_OTLP_ENDPOINT', '-')}, greeting {os.environ['GREETING']}", flush=True)
ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
)PY";

const char* const pub_py = R"PY(import json, os, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = b"[]" if self.path == "/dapr/subscribe" else b"pub"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://{os.environ['DAPR_HOST']}:{os.environ['DAPR_HTTP_PORT']}/v1.0/publish/pubsub/greetings"
n = 0
while True:
    n += 1
    req = urllib.request.Request(url, data=json.dumps({"n": n}).encode(), headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5).read()
        if n % 20 == 1:
            print(f"pub: published {n}", flush=True)
    except Exception as e:
        print(f"pub: publish {n} failed: {e}", flush=True)
    time.sleep(0.1)
)PY";

const char* const config_yaml = R"(apps:
  - id: sub
    command: [python3, -u, sub.py]
    healthPath: /healthz
    env: {GREETING: hello}
    sidecarArgs: [--retry-initial-interval, 100ms, --retry-max-interval, 1s, --retry-max-attempts, "1000"]
  - id: pub
    command: [python3, -u, pub.py]
    public: true
restart: {initialDelay: 200ms, maxDelay: 1s}
ui: {status: line, summaryInterval: 1s}
stopGrace: 10s
)";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count_lines(const std::string& path) {
  const auto text = read_file(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// GET 127.0.0.1:port/target; the body, or "" on failure.
std::string http_get(std::uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return "";
  }
  std::string in;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  const auto end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.1 200", 0) != 0 || end == std::string::npos) return "";
  return in.substr(end + 4);
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

bool process_gone(int pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// A sidecar that exits before it is ready (as when another process took one of the ports the
// runner picked for it before the sidecar could bind it) is started again on other ports, and
// its app gets the new ones. The wrapper (OUTRIDER_DEV_BINARY) fails the first sidecar start.
TEST(dev_process, a_sidecar_that_fails_to_start_is_retried_on_other_ports) {
  testing::temp_dir dir("outrider-dev-retry");
  write_file(dir.file("wrapper.sh"),
             "#!/bin/sh\n"
             "if [ \"$1\" = sidecar ] && [ \"$2\" != --help ]; then\n"
             "  echo \"$@\" >> \"" +
                 dir.file("sidecar-starts.txt") +
                 "\"\n"
                 "  if [ ! -e \"" +
                 dir.file("failed-once") +
                 "\" ]; then\n"
                 "    touch \"" +
                 dir.file("failed-once") +
                 "\"\n"
                 "    echo 'bind: address already in use (simulated)'; exit 1\n"
                 "  fi\n"
                 "fi\n"
                 "exec \"" +
                 outrider_binary() + "\" \"$@\"\n");
  std::filesystem::permissions(dir.file("wrapper.sh"), std::filesystem::perms::owner_all);
  write_file(dir.file("app.py"),
             "import os, time\n"
             "print('sidecar port', os.environ['DAPR_HTTP_PORT'], flush=True)\n"
             "time.sleep(600)\n");
  write_file(dir.file("outrider.yaml"), R"(apps:
  - id: solo
    command: [python3, -u, app.py]
collector: {enabled: false}
ui: {status: line, summaryInterval: 1s}
)");
  process dev({outrider_binary(), "dev", "-f", dir.file("outrider.yaml")},
              {{{"NO_COLOR", ""}, {"OUTRIDER_DEV_BINARY", dir.file("wrapper.sh")}},
               dir.path(),
               "outrider dev"});
  ASSERT_TRUE(dev.wait_for_output("app(s) started", start_timeout)) << dev.output();
  EXPECT_NE(dev.output().find("starting again on other ports"), std::string::npos) << dev.output();
  // Two sidecar command lines, with different API ports; the app and the resolve file name the
  // second one.
  const auto starts = read_file(dir.file("sidecar-starts.txt"));
  std::vector<std::string> ports;
  const std::regex flag("--dapr-http-port (\\d+)");
  for (std::sregex_iterator i(starts.begin(), starts.end(), flag), e; i != e; ++i)
    ports.push_back((*i)[1].str());
  ASSERT_EQ(ports.size(), 2u) << starts;
  EXPECT_NE(ports[0], ports[1]);
  EXPECT_TRUE(dev.wait_for_output("sidecar port " + ports[1], start_timeout)) << dev.output();
  EXPECT_NE(read_file(dir.file(".outrider/run/resolve.yaml")).find("127.0.0.1:" + ports[1]),
            std::string::npos);
  dev.signal(SIGINT);
  const auto code = dev.wait(60s);
  ASSERT_TRUE(code.has_value()) << dev.output();
  EXPECT_EQ(*code, 0) << dev.output();
}

// The broker and the collector get the same treatment as sidecars: one that exits before it is
// ready is started again on newly picked ports, and the sidecar's --broker and --trace-endpoint
// and the runner's own links follow. The wrapper fails the first start of each.
TEST(dev_process, a_broker_or_collector_that_fails_to_start_is_retried_on_other_ports) {
  testing::temp_dir dir("outrider-dev-retry-servers");
  write_file(dir.file("wrapper.sh"),
             "#!/bin/sh\n"
             "case \"$1\" in broker|collector|sidecar)\n"
             "  if [ \"$2\" != --help ]; then echo \"$@\" >> \"" +
                 dir.file("starts.txt") +
                 "\"; fi\n"
                 "  if [ \"$1\" != sidecar ] && [ ! -e \"" +
                 dir.path() +
                 "/failed-$1\" ]; then\n"
                 "    touch \"" +
                 dir.path() +
                 "/failed-$1\"\n"
                 "    echo 'bind: address already in use (simulated)'; exit 1\n"
                 "  fi;;\n"
                 "esac\n"
                 "exec \"" +
                 outrider_binary() + "\" \"$@\"\n");
  std::filesystem::permissions(dir.file("wrapper.sh"), std::filesystem::perms::owner_all);
  write_file(dir.file("app.py"), "import time\ntime.sleep(600)\n");
  write_file(dir.file("outrider.yaml"), R"(apps:
  - id: solo
    command: [python3, -u, app.py]
ui: {status: line, summaryInterval: 1s}
)");
  process dev({outrider_binary(), "dev", "-f", dir.file("outrider.yaml")},
              {{{"NO_COLOR", ""}, {"OUTRIDER_DEV_BINARY", dir.file("wrapper.sh")}},
               dir.path(),
               "outrider dev"});
  ASSERT_TRUE(dev.wait_for_output("app(s) started", start_timeout)) << dev.output();
  const auto starts = read_file(dir.file("starts.txt"));
  const auto all = [&starts](const std::string& pattern) {
    std::vector<std::string> out;
    const std::regex re(pattern);
    for (std::sregex_iterator i(starts.begin(), starts.end(), re), e; i != e; ++i)
      out.push_back((*i)[1].str());
    return out;
  };
  const auto brokers = all("(?:^|\\n)broker .*--listen 127\\.0\\.0\\.1:(\\d+)");
  const auto collectors = all("(?:^|\\n)collector .*--otlp-listen 127\\.0\\.0\\.1:(\\d+)");
  const auto queries = all("(?:^|\\n)collector .*--zipkin-listen 127\\.0\\.0\\.1:(\\d+)");
  const auto sidecar_brokers = all("(?:^|\\n)sidecar .*--broker 127\\.0\\.0\\.1:(\\d+)");
  const auto sidecar_traces =
      all("(?:^|\\n)sidecar .*--trace-endpoint http://127\\.0\\.0\\.1:(\\d+)/");
  ASSERT_EQ(brokers.size(), 2u) << starts;
  ASSERT_EQ(collectors.size(), 2u) << starts;
  ASSERT_EQ(queries.size(), 2u) << starts;
  EXPECT_NE(brokers[0], brokers[1]);
  EXPECT_NE(collectors[0], collectors[1]);
  ASSERT_EQ(sidecar_brokers.size(), 1u) << starts;
  EXPECT_EQ(sidecar_brokers[0], brokers[1]);
  ASSERT_EQ(sidecar_traces.size(), 1u) << starts;
  EXPECT_EQ(sidecar_traces[0], collectors[1]);
  EXPECT_NE(dev.output().find("traces:     http://127.0.0.1:" + queries[1] + "/"),
            std::string::npos)
      << dev.output();
  dev.signal(SIGINT);
  const auto code = dev.wait(60s);
  ASSERT_TRUE(code.has_value()) << dev.output();
  EXPECT_EQ(*code, 0) << dev.output();
}

TEST(dev_process, runs_a_system_restarts_a_crashed_app_and_stops_everything_on_sigint) {
  testing::temp_dir dir("outrider-dev-it");
  write_file(dir.file("sub.py"), sub_py);
  write_file(dir.file("pub.py"), pub_py);
  write_file(dir.file("outrider.yaml"), config_yaml);

  process dev({outrider_binary(), "dev", "-f", dir.file("outrider.yaml")},
              {{{"NO_COLOR", ""}}, dir.path(), "outrider dev"});
  ASSERT_TRUE(dev.wait_for_output("app(s) started", start_timeout)) << dev.output();
  std::smatch m;
  std::string out = dev.output();
  ASSERT_TRUE(
      std::regex_search(out, m, std::regex("status: +http://127\\.0\\.0\\.1:(\\d+)/status")))
      << out;
  const auto status_port = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  EXPECT_TRUE(std::regex_search(out, std::regex("storefront: http://127\\.0\\.0\\.1:\\d+/")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("traces: +http://127\\.0\\.0\\.1:\\d+/"))) << out;

  // Messages flow from pub to sub through both sidecars and the broker,
  // including after sub crashed on its first delivery and was restarted.
  EXPECT_TRUE(eventually([&] { return count_lines(dir.file("received.txt")) >= 10; }, flow_timeout))
      << dev.output();
  EXPECT_TRUE(std::filesystem::exists(dir.file("crashed-once")));

  json::value status;
  ASSERT_TRUE(eventually(
      [&] {
        const auto body = http_get(status_port, "/status");
        if (body.empty()) return false;
        status = json::parse(body);
        const auto& apps = status.at("apps").as_array();
        return apps.size() == 2 && apps[0].at("health").as_string() == "ready" &&
               apps[1].at("health").as_string() == "ready" && !status.at("queues").is_null();
      },
      flow_timeout))
      << status << "\n"
      << dev.output();
  const auto& apps = status.at("apps").as_array();
  EXPECT_EQ(apps[0].at("id").as_string(), "sub");
  EXPECT_EQ(apps[0].at("app").at("restarts").as_int64(), 1) << status;
  EXPECT_EQ(apps[0].at("app").at("lastExit").as_int64(), 3) << status;
  EXPECT_EQ(apps[1].at("app").at("restarts").as_int64(), 0) << status;
  EXPECT_EQ(status.at("broker").at("state").as_string(), "running");

  out = dev.output();
  // The app got its environment; every process's lines carry its name.
  EXPECT_NE(out.find("as sub, sidecar 127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("greeting hello"), std::string::npos) << out;
  EXPECT_NE(out.find("otlp http://127.0.0.1:"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\\[sub\\] +sub: crashing on purpose"))) << out;
  EXPECT_NE(out.find("[pub-sidecar]"), std::string::npos) << out;
  EXPECT_NE(out.find("[broker]"), std::string::npos) << out;
  EXPECT_NE(out.find("sub exited with code 3"), std::string::npos) << out;
  EXPECT_TRUE(eventually([&] { return dev.output().find("2/2 apps ready") != std::string::npos; },
                         flow_timeout))
      << "the one-line summary";
  EXPECT_EQ(dev.output().find("\x1b["), std::string::npos) << "no colour without a TTY";

  // `outrider dev status` finds the runner through the state folder.
  {
    process st({outrider_binary(), "dev", "status", "-f", dir.file("outrider.yaml")},
               {{}, dir.path(), "dev status"});
    EXPECT_EQ(st.wait(30s), 0) << st.output();
    EXPECT_NE(st.output().find("pub"), std::string::npos) << st.output();
    EXPECT_NE(st.output().find("APP"), std::string::npos) << st.output();
  }

  std::vector<int> pids{static_cast<int>(status.at("broker").at("pid").as_int64()),
                        static_cast<int>(status.at("collector").at("pid").as_int64())};
  for (const auto& a : apps) {
    pids.push_back(static_cast<int>(a.at("app").at("pid").as_int64()));
    pids.push_back(static_cast<int>(a.at("sidecar").at("pid").as_int64()));
  }
  for (int pid : pids) ASSERT_GT(pid, 0) << status;

  dev.signal(SIGINT);
  const auto code = dev.wait(60s);
  ASSERT_TRUE(code.has_value()) << dev.output();
  EXPECT_EQ(*code, 0) << dev.output();
  for (int pid : pids) EXPECT_TRUE(process_gone(pid)) << "pid " << pid << " still runs";
  out = dev.output();
  // Stop order: apps, then sidecars, then the collector, then the broker.
  const auto sidecar_stop = out.find("[sub-sidecar]");
  EXPECT_NE(sidecar_stop, std::string::npos);
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/.outrider/dev.json"));
}

// The status block as a terminal shows it: tests/dev/pty_status.py runs the runner on a
// pseudo-terminal (a small one: 8 rows, so the block must be cut to fit), types Ctrl-C and
// replays the output through a terminal model: one block at the bottom while running, none left
// behind after exit, exit code 0.
TEST(dev_process, status_block_on_a_pseudo_terminal_and_ctrl_c) {
  testing::temp_dir dir("outrider-dev-pty");
  write_file(dir.file("sub.py"), sub_py);
  write_file(dir.file("pub.py"), pub_py);
  std::string config = config_yaml;
  config.replace(config.find("ui: {status: line, summaryInterval: 1s}\n"),
                 std::string("ui: {status: line, summaryInterval: 1s}\n").size(), "");
  write_file(dir.file("outrider.yaml"), config);
  process check(
      {"python3", std::string(OUTRIDER_SOURCE_DIR) + "/tests/dev/pty_status.py", outrider_binary(),
       dir.file("outrider.yaml"), "--rows", "8", "--columns", "90", "--seconds", "4"},
      {{}, dir.path(), "pty_status.py"});
  const auto code = check.wait(240s);
  ASSERT_TRUE(code.has_value()) << check.output();
  EXPECT_EQ(*code, 0) << check.output();
}

TEST(dev_process, bad_configuration_names_file_line_and_key) {
  testing::temp_dir dir("outrider-dev-bad");
  write_file(dir.file("outrider.yaml"), "apps:\n  - id: a\n    comand: [python3]\n");
  process dev({outrider_binary(), "dev", "-f", dir.file("outrider.yaml")},
              {{}, dir.path(), "outrider dev"});
  EXPECT_EQ(dev.wait(30s), 2);
  EXPECT_NE(dev.output().find("outrider.yaml:3:5: key 'apps[0].comand': unknown key (did you "
                              "mean 'command'?)"),
            std::string::npos)
      << dev.output();
}

}  // namespace
}  // namespace outrider
