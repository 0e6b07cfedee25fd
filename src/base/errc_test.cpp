#include "base/errc.h"

#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <sstream>
#include <string>

namespace outrider {
namespace {

TEST(error_catalog, values_and_names_are_unique) {
  std::set<int> values;
  std::set<std::string_view> names;
  for (const auto& row : error_catalog()) {
    EXPECT_TRUE(values.insert(static_cast<int>(row.code)).second) << row.name;
    EXPECT_TRUE(names.insert(row.name).second) << row.name;
    // Dapr's names: ERR_* for most building blocks, DAPR_SCHEDULER_* for the jobs API.
    EXPECT_TRUE(row.name.starts_with("ERR_") || row.name.starts_with("DAPR_SCHEDULER_"))
        << row.name;
    EXPECT_GE(row.http_status, 400);
    EXPECT_LT(row.http_status, 600);
    EXPECT_FALSE(row.meaning.empty());
  }
}

TEST(error_catalog, describe_finds_every_row) {
  for (const auto& row : error_catalog()) {
    EXPECT_EQ(&describe(row.code), &row);
  }
}

// docs/errors.md is the contributor-facing copy of the catalog; it must list
// every code with its HTTP status.
TEST(error_catalog, documented_in_docs_errors_md) {
  std::ifstream in(std::string(OUTRIDER_SOURCE_DIR) + "/docs/errors.md");
  ASSERT_TRUE(in) << "docs/errors.md missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& row : error_catalog()) {
    std::string expected =
        "| `" + std::string(row.name) + "` | " + std::to_string(row.http_status) + " |";
    EXPECT_NE(text.str().find(expected), std::string::npos)
        << "docs/errors.md lacks row: " << expected;
  }
}

}  // namespace
}  // namespace outrider
