// A private RabbitMQ node for process tests (docs/PEERS-style): Debian's
// rabbitmq-server started directly (not the system service) with its own node
// name, ports, epmd, data and log dirs under a temp dir; ready once
// `rabbitmqctl await_startup` succeeds; stopped with `rabbitmqctl stop`.
// Restartable on the same ports and data (outage tests).
#pragma once

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "testing/process.h"

namespace outrider::testing {

inline constexpr const char* rabbitmq_bin_dir = "/usr/lib/rabbitmq/bin";

// False when Debian's rabbitmq-server is not installed (tests skip, saying so).
inline bool rabbitmq_installed() {
  return ::access((std::string(rabbitmq_bin_dir) + "/rabbitmq-server").c_str(), X_OK) == 0 &&
         ::access((std::string(rabbitmq_bin_dir) + "/rabbitmqctl").c_str(), X_OK) == 0;
}

class rabbitmq_server {
 public:
  explicit rabbitmq_server(const std::string& name = "outrider-test")
      : dir_(std::make_unique<temp_dir>("outrider-rabbitmq")),
        port_(free_port()),
        dist_port_(free_port()),
        epmd_port_(free_port()),
        node_(name + std::to_string(port_) + "@localhost") {
    std::ofstream(dir_->file("rabbitmq.conf"))
        << "listeners.tcp.default = 127.0.0.1:" << port_ << "\n"
        << "loopback_users.guest = true\n"
        << "disk_free_limit.absolute = 50MB\n"
        << "vm_memory_high_watermark.relative = 0.6\n"
        << "log.console = false\n"
        << "log.file.level = warning\n";
    std::ofstream(dir_->file("enabled_plugins")) << "[].\n";
  }
  ~rabbitmq_server() { stop(); }
  rabbitmq_server(const rabbitmq_server&) = delete;
  rabbitmq_server& operator=(const rabbitmq_server&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/"; }

  // Starts the node and waits until it serves AMQP. False on failure.
  bool start(std::chrono::seconds timeout = std::chrono::seconds(90)) {
    if (!epmd_) {
      epmd_ = std::make_unique<process>(
          std::vector<std::string>{"epmd", "-port", std::to_string(epmd_port_), "-address",
                                   "127.0.0.1"},
          process_options{env(), dir_->path(), "epmd"});
    }
    server_ = std::make_unique<process>(
        std::vector<std::string>{std::string(rabbitmq_bin_dir) + "/rabbitmq-server"},
        process_options{env(), dir_->path(), "rabbitmq-server"});
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (!server_->running()) return false;
      if (ctl({"await_startup", "--timeout", "30"}, std::chrono::seconds(60)) == 0) {
        return server_->wait_for_port(port_, std::chrono::seconds(30));
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return false;
  }

  // Stops the node (its data stays for a restart).
  void stop() {
    if (server_ && server_->running()) {
      ctl({"stop"}, std::chrono::seconds(60));
      server_->stop(std::chrono::seconds(10));
    }
    server_.reset();
  }

  // rabbitmqctl with this node's environment; its exit code (-1 on timeout).
  int ctl(std::vector<std::string> args, std::chrono::milliseconds timeout) {
    args.insert(args.begin(), {std::string(rabbitmq_bin_dir) + "/rabbitmqctl", "-n", node_});
    process p(std::move(args), process_options{env(), dir_->path(), "rabbitmqctl"});
    return p.wait(timeout).value_or(-1);
  }

  std::string server_output() const { return server_ ? server_->output() : std::string(); }

 private:
  std::map<std::string, std::string> env() const {
    const std::string d = dir_->path();
    return {
        {"HOME", d},
        {"RABBITMQ_NODENAME", node_},
        {"RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1"},
        {"RABBITMQ_NODE_PORT", std::to_string(port_)},
        {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
        {"ERL_EPMD_ADDRESS", "127.0.0.1"},
        {"ERL_EPMD_PORT", std::to_string(epmd_port_)},
        {"RABBITMQ_CONFIG_FILE", d + "/rabbitmq"},
        {"RABBITMQ_MNESIA_BASE", d + "/mnesia"},
        {"RABBITMQ_LOG_BASE", d + "/log"},
        {"RABBITMQ_ENABLED_PLUGINS_FILE", d + "/enabled_plugins"},
        {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
    };
  }

  std::unique_ptr<temp_dir> dir_;
  std::uint16_t port_;
  std::uint16_t dist_port_;
  std::uint16_t epmd_port_;
  std::string node_;
  std::unique_ptr<process> epmd_;
  std::unique_ptr<process> server_;
};

}  // namespace outrider::testing
