// The web UI in a real browser: `outrider collector` serves the embedded UI,
// ui/test/browser/run.mjs posts synthetic traces (a 7-day delivery delay,
// links between traces, a 10,000-span trace) and drives Debian's chromium
// through playwright-core: the folded gap, the critical path, span details,
// following a link, search, the service graph and coupling pages (data or a
// clear "not available"). Screenshots go to <build dir>/ui-screenshots/.

#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <regex>
#include <string>

#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;

TEST(ui_browser, trace_graph_and_coupling_pages_in_chromium) {
  int code = 0;
  testing::run_shell("command -v node >/dev/null 2>&1", code);
  if (code != 0) GTEST_SKIP() << "node is not installed";
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) {
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium); "
                    "the browser test of the web UI did not run";
  }
  const std::string ui = std::string(OUTRIDER_SOURCE_DIR) + "/ui";
  if (!std::filesystem::exists(ui + "/node_modules/playwright-core")) {
    GTEST_SKIP() << "ui/node_modules is missing (the UI build or scripts/setup.sh runs npm ci)";
  }

  testing::temp_dir dir;
  // OTLP and the query API on one ephemeral port; keep spans of any age.
  testing::process collector({testing::outrider_binary(), "collector", "--data-dir",
                              dir.file("traces"), "--otlp-listen", "127.0.0.1:0", "--zipkin-listen",
                              "127.0.0.1:0", "--retention", "0"});
  ASSERT_TRUE(collector.wait_for_output("(Zipkin API)", 60s));
  std::smatch match;
  const std::string out = collector.output();
  // Two port-0 listeners are two ports: OTLP on one, the query API and the UI on the other.
  ASSERT_TRUE(std::regex_search(
      out, match,
      std::regex(
          R"(on (http://127\.0\.0\.1:\d+) \(OTLP/HTTP\) and (http://127\.0\.0\.1:\d+) \(Zipkin)")))
      << out;
  const std::string otlp = match[1];
  const std::string base = match[2];

  const std::string shots = std::string(OUTRIDER_BUILD_DIR) + "/ui-screenshots";
  const std::string output =
      testing::run_shell("node '" + ui + "/test/browser/run.mjs' " + base + " '" + shots + "' " +
                             chromium + " " + otlp + " 2>&1",
                         code);
  std::printf("%s", output.c_str());
  EXPECT_EQ(code, 0) << output;
  EXPECT_TRUE(std::filesystem::exists(shots + "/trace.png"));
}

}  // namespace
}  // namespace outrider
