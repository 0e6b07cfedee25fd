#include "dev/child.h"

#include <gtest/gtest.h>
#include <mutex>
#include <thread>

namespace outrider::dev {
namespace {

using namespace std::chrono_literals;

struct collected {
  std::mutex m;
  std::vector<std::string> lines;
  child::line_sink sink() {
    return [this](std::string_view l) {
      std::lock_guard lock(m);
      lines.emplace_back(l);
    };
  }
};

std::optional<int> wait_exit(child& c) {
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end) {
    if (auto code = c.poll_exit()) return code;
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

TEST(child, runs_in_its_workdir_with_env_and_reports_lines_and_exit_code) {
  collected out;
  {
    auto c = child::spawn(
        {"t",
         {"/bin/sh", "-c", "pwd; echo \"$GREETING\"; echo err >&2; printf tail; exit 3"},
         "/tmp",
         {{"GREETING", "hello"}},
         SIGKILL},
        out.sink());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(wait_exit(**c), 3);
  }  // the destructor drains the output
  EXPECT_EQ(out.lines, (std::vector<std::string>{"/tmp", "hello", "err", "tail"}));
}

TEST(child, a_signal_to_the_group_reaches_what_a_shell_started) {
  collected out;
  auto c = child::spawn(
      {"t", {"/bin/sh", "-c", "sleep 60 & sleep 60; echo never"}, "", {}, SIGKILL}, out.sink());
  ASSERT_TRUE(c) << c.error().message;
  std::this_thread::sleep_for(100ms);
  (*c)->signal_group(SIGTERM);
  EXPECT_EQ(wait_exit(**c), 128 + SIGTERM);
}

TEST(child, an_unknown_program_is_not_found) {
  collected out;
  auto c = child::spawn({"t", {"no-such-program-anywhere"}, "", {}, SIGKILL}, out.sink());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::not_found);
}

TEST(child, a_bad_workdir_exits_127_with_a_message) {
  collected out;
  {
    auto c = child::spawn({"t", {"/bin/true"}, "/no/such/dir", {}, SIGKILL}, out.sink());
    ASSERT_TRUE(c);
    EXPECT_EQ(wait_exit(**c), 127);
  }
  ASSERT_EQ(out.lines.size(), 1u);
  EXPECT_NE(out.lines[0].find("cannot enter directory /no/such/dir"), std::string::npos);
}

}  // namespace
}  // namespace outrider::dev
