// The outrider binary as a user runs it.
#include <gtest/gtest.h>
#include <string>
#include <tuple>
#include <vector>

#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::outrider_binary;
using testing::process;

TEST(outrider_cli, version_prints_version_and_exits_zero) {
  process p({outrider_binary(), "version"});
  EXPECT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.output().find("outrider 0."), std::string::npos) << p.output();
}

TEST(outrider_cli, help_lists_subcommands) {
  process p({outrider_binary(), "--help"});
  EXPECT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.output().find("version"), std::string::npos) << p.output();
}

TEST(outrider_cli, unknown_subcommand_fails_with_message) {
  process p({outrider_binary(), "frobnicate"});
  auto code = p.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
  EXPECT_FALSE(p.output().empty());
}

TEST(outrider_cli, admin_verbs_reject_bad_input_and_unreachable_brokers) {
  process bad_id({outrider_binary(), "cancel", "not-a-message-id", "--broker", "127.0.0.1:1"});
  EXPECT_EQ(bad_id.wait(10s), 2);
  EXPECT_NE(bad_id.output().find("'not-a-message-id' is not a message id"), std::string::npos)
      << bad_id.output();
  process bad_address({outrider_binary(), "queues", "--broker", "no-port-here"});
  auto code = bad_address.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
  EXPECT_NE(bad_address.output().find("outrider: "), std::string::npos) << bad_address.output();
  process unreachable({outrider_binary(), "queues", "--broker",
                       "127.0.0.1:" + std::to_string(testing::free_port())});
  EXPECT_EQ(unreachable.wait(20s), 1);
  EXPECT_NE(unreachable.output().find("cannot reach the broker"), std::string::npos)
      << unreachable.output();
}

// Limits that cannot work are refused at start with a message naming the flag.
TEST(outrider_cli, sidecar_refuses_unusable_limits) {
  for (const auto& [flag, value, message] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--max-connections", "0", "--max-connections must be at least 1"},
           {"--max-publishes-in-flight", "0", "--max-publishes-in-flight must be at least 1"},
           {"--max-connections", "many", "max-connections"}}) {
    process p({outrider_binary(), "sidecar", "--app-id", "limits", "--dapr-http-port", "0",
               "--metrics-port", "0", "--broker",
               "127.0.0.1:" + std::to_string(testing::free_port()), flag, value});
    auto code = p.wait(20s);
    ASSERT_TRUE(code) << flag << " " << value;
    EXPECT_NE(*code, 0) << flag << " " << value;
    EXPECT_NE(p.output().find(message), std::string::npos) << p.output();
  }
}

// A server raises a low soft open-file limit to the hard limit, and warns,
// naming the flag, when even the hard limit is below what its settings need.
TEST(outrider_cli, sidecar_raises_the_open_file_limit_and_warns_when_it_is_too_low) {
  const std::string command = "ulimit -Sn 64 && ulimit -Hn 512 && exec " + outrider_binary() +
                              " sidecar --app-id fds --dapr-http-port 0 --metrics-port 0"
                              " --log-level debug --broker 127.0.0.1:" +
                              std::to_string(testing::free_port());
  process p({"/bin/bash", "-c", command});
  EXPECT_TRUE(p.wait_for_output("open-file limit raised from 64 to 512", 20s)) << p.output();
  // Default --max-connections 4096 plus 256 for the app, the broker and files.
  EXPECT_TRUE(p.wait_for_output("needs about 4352", 20s)) << p.output();
  EXPECT_NE(p.output().find("--max-connections"), std::string::npos) << p.output();
  p.stop();
}

}  // namespace
}  // namespace outrider
