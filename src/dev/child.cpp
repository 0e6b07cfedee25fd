#include "dev/child.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>
#include <map>

extern char** environ;

namespace outrider::dev {
namespace {

// How often the reader looks at its stop flag while the pipe is quiet.
constexpr int reader_poll_ms = 200;
constexpr int exec_failed_code = 127;
constexpr int max_reads_after_stop = 64;

}  // namespace

result<std::string> find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path_env = std::getenv("PATH");
  const std::string paths = path_env != nullptr ? path_env : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= paths.size()) {
    auto end = paths.find(':', start);
    if (end == std::string::npos) end = paths.size();
    const std::string_view dir = std::string_view(paths).substr(start, end - start);
    std::string candidate(dir.empty() ? std::string_view(".") : dir);
    candidate += '/';
    candidate += program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return error(errc::not_found, fmt::format("program '{}' not found on PATH", program));
}

result<std::unique_ptr<child>> child::spawn(const child_spec& spec, line_sink sink) {
  if (spec.argv.empty()) return error(errc::invalid_argument, "empty command");
  auto program = find_program(spec.argv.front());
  if (!program) return std::move(program).error();

  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed (the runner has threads).
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> env_text;
  env_text.reserve(env.size());
  for (const auto& [k, v] : env) env_text.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string chdir_failed =
      fmt::format("outrider dev: cannot enter directory {}\n", spec.workdir);
  const std::string exec_failed = fmt::format("outrider dev: cannot run {}\n", *program);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return error(errc::io_error, fmt::format("pipe: {}", std::strerror(errno)));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return error(errc::io_error, fmt::format("/dev/null: {}", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int saved = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    ::close(null_fd);
    return error(errc::io_error, fmt::format("fork: {}", std::strerror(saved)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, spec.death_signal);
    if (::getppid() != parent) ::_exit(exec_failed_code);  // the runner died already
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (!spec.workdir.empty() && ::chdir(spec.workdir.c_str()) != 0) {
      [[maybe_unused]] auto n = ::write(STDERR_FILENO, chdir_failed.data(), chdir_failed.size());
      ::_exit(exec_failed_code);
    }
    ::execve(program->c_str(), argv.data(), envp.data());
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    ::_exit(exec_failed_code);
  }
  // Also from the parent, so signal_group() works even before the child ran.
  ::setpgid(pid, pid);
  ::close(fds[1]);
  ::close(null_fd);
  std::unique_ptr<child> c(new child());
  c->pid_ = pid;
  c->sink_ = std::move(sink);
  const int read_fd = fds[0];
  c->reader_ = std::thread([raw = c.get(), read_fd] { raw->read_output(read_fd); });
  return c;
}

void child::read_output(int fd) {
  std::string pending;
  char buf[4096];
  int reads_after_stop = 0;  // a grandchild that keeps writing must not hold the reader
  for (;;) {
    if (stop_reading_.load() && ++reads_after_stop > max_reads_after_stop) break;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, reader_poll_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) {
      if (stop_reading_.load()) break;
      continue;
    }
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      sink_(line);
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) sink_(pending);
  ::close(fd);
}

std::optional<int> child::poll_exit() {
  if (exit_code_) return exit_code_;
  int wstatus = 0;
  const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r != pid_) return std::nullopt;
  exit_code_ = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  // Whatever the process left behind in its group (a shell's background job)
  // goes with it, so a restart never runs two copies.
  ::kill(-pid_, SIGKILL);
  return exit_code_;
}

void child::signal_group(int sig) {
  if (exit_code_ || pid_ <= 0) return;
  // The group outlives the leader only if it left children; signal both ways.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

child::~child() {
  if (pid_ > 0 && !exit_code_) {
    signal_group(SIGKILL);
    int wstatus = 0;
    ::waitpid(pid_, &wstatus, 0);
  }
  // Output a grandchild still writes is not waited for.
  stop_reading_.store(true);
  if (reader_.joinable()) reader_.join();
}

}  // namespace outrider::dev
