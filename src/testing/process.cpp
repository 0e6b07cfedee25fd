#include "testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <thread>

extern char** environ;

namespace outrider::testing {
namespace {

using namespace std::chrono_literals;

std::string make_temp_dir(const std::string& prefix) {
  auto base = std::filesystem::temp_directory_path().string();
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
    return base;
  }
  return std::string(buf.data());
}

bool can_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

temp_dir::temp_dir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string run_shell(const std::string& command, int& exit_code) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    exit_code = -1;
    return out;
  }
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string outrider_binary() {
  if (const char* env = std::getenv("OUTRIDER_BINARY")) return env;
#ifdef OUTRIDER_BINARY
  return OUTRIDER_BINARY;
#else
  return "outrider";
#endif
}

process::process(std::vector<std::string> argv, process_options opts) {
  own_dir_ = make_temp_dir("outrider-proc");
  name_ =
      opts.log_name.empty() ? std::filesystem::path(argv.at(0)).filename().string() : opts.log_name;
  log_path_ = own_dir_ + "/" + name_ + ".log";
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    ADD_FAILURE() << "cannot create " << log_path_;
    return;
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (opts.env.count(key) == 0) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ == 0) {
    // Child: own process group so stop() can reach grandchildren too.
    ::setpgid(0, 0);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    if (!opts.working_dir.empty() && ::chdir(opts.working_dir.c_str()) != 0) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid_ < 0) ADD_FAILURE() << "fork failed";
}

process::~process() {
  if (pid_ > 0 && !exit_code_) stop(5s);
  if (::testing::Test::HasFailure()) {
    auto text = output();
    constexpr std::size_t tail_bytes = 8000;
    if (text.size() > tail_bytes) text = "...\n" + text.substr(text.size() - tail_bytes);
    std::fprintf(stderr, "----- log of %s (%s) -----\n%s\n----- end of log -----\n", name_.c_str(),
                 log_path_.c_str(), text.c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(own_dir_, ec);
}

bool process::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return exit_code_;
}

bool process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (output().find(needle) != std::string::npos) return true;
    if (!running()) return output().find(needle) != std::string::npos;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

bool process::wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (can_connect(port)) return true;
    if (!running()) return false;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void process::signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(-pid_, sig);
}

std::optional<int> process::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return std::nullopt;
  if (!running()) return exit_code_;
  signal(SIGTERM);
  if (auto code = wait(grace)) return code;
  signal(SIGKILL);
  return wait(5s);
}

void process::kill_now() {
  signal(SIGKILL);
  wait(5s);
}

std::string process::output() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace outrider::testing
