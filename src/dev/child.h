// child: one process the runner started, in its own process group, with its
// stdout and stderr read line by line by a thread of its own.
//
// The child runs in a new process group (so a terminal's Ctrl-C reaches only
// the runner, which then stops the children in order, and signals reach
// whatever a shell command started) and gets `death_signal` if the thread that
// spawned it dies (PR_SET_PDEATHSIG): spawn from a thread that lives as long as
// the runner. Its stdin is /dev/null; other descriptors are closed.
//
// Threading: spawn(), poll_exit(), signal_group() from the owning thread; the
// line sink is called from the reader thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"

namespace outrider::dev {

struct child_spec {
  std::string name;               // for messages
  std::vector<std::string> argv;  // argv[0]: a path or a program on PATH
  std::string workdir;            // "" = the runner's
  // Added to (or replacing) the runner's environment.
  std::vector<std::pair<std::string, std::string>> env;
  int death_signal = SIGKILL;  // sent to the child when the runner dies
};

class child {
 public:
  // Gets each line of output (without the newline).
  using line_sink = std::function<void(std::string_view line)>;

  // Starts the process. Errors: not_found (program not on PATH), io_error
  // (pipe, fork). A bad working directory or a failing exec show up as a line
  // of output and exit code 127.
  static result<std::unique_ptr<child>> spawn(const child_spec& spec, line_sink sink);
  ~child();  // waits for the reader to finish (call after the process exited)
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Reaps the process if it exited: its exit code, or 128 + signal number.
  std::optional<int> poll_exit();
  bool exited() const noexcept { return exit_code_.has_value(); }
  // Sends `sig` to the child's process group (no-op once it exited).
  void signal_group(int sig);

 private:
  child() = default;
  void read_output(int fd);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  line_sink sink_;
  std::atomic<bool> stop_reading_{false};
  std::thread reader_;
};

// Looks `program` up on PATH (as given when it contains '/'). Errors: not_found.
result<std::string> find_program(const std::string& program);

}  // namespace outrider::dev
