// Test harness for whole-process tests: start real programs (the outrider
// binary, Debian servers such as rabbitmq-server) on 127.0.0.1, wait until
// they are ready, collect their logs when a test fails, always stop them.
//
//   testing::temp_dir dir;
//   testing::process broker({outrider_binary(), "broker", "--data-dir", dir.path()});
//   ASSERT_TRUE(broker.wait_for_output("listening on", 10s));
//
// Output (stdout+stderr) goes to a log file in the process's temp dir; when
// the current GoogleTest test has failed, the destructor prints its tail.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace outrider::testing {

// A directory removed (recursively) on destruction.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix = "outrider-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it,
// close). For servers that cannot report the port they bound themselves.
std::uint16_t free_port();

// Runs `command` with /bin/sh (popen) and returns what it printed on stdout
// (append " 2>&1" to the command for stderr too); sets `exit_code` to the
// shell's exit status, or -1 if it could not run or was killed by a signal.
std::string run_shell(const std::string& command, int& exit_code);

// Path of the built `outrider` binary (from the OUTRIDER_BINARY compile
// definition or the environment variable of that name).
std::string outrider_binary();

struct process_options {
  std::map<std::string, std::string> env;  // added to (or overriding) the parent's environment
  std::string working_dir;                 // "" = current
  std::string log_name;                    // label in failure output; default: argv[0]'s file name
};

class process {
 public:
  explicit process(std::vector<std::string> argv, process_options opts = {});
  ~process();  // stop() if running; prints the log tail if the current test failed
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  bool started() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }
  bool running();

  // Waits until `needle` appears in the output. Returns false on timeout or
  // if the process exited first.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);
  // Waits until something accepts TCP connections on 127.0.0.1:port.
  bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);
  // Waits for exit; returns the exit code (128+signal if killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL after `grace`. Returns the exit code.
  std::optional<int> stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void kill_now();  // SIGKILL (crash tests)
  void signal(int sig);

  std::string output() const;  // everything logged so far
  const std::string& log_path() const noexcept { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
  std::string name_;
  std::string own_dir_;
};

}  // namespace outrider::testing
