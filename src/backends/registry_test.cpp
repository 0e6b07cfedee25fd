#include "backends/registry.h"

#include <gtest/gtest.h>

namespace outrider::backends {
namespace {

TEST(registry, unknown_type_lists_compiled_in_backends) {
  auto r = create("no-such-backend", config::node{}, backend_context{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::config_invalid);
  EXPECT_NE(r.error().message.find("no-such-backend"), std::string::npos);
  for (const auto& reg : compiled_backends()) {
    EXPECT_NE(r.error().message.find(std::string(reg.type)), std::string::npos);
  }
}

TEST(registry, compiled_backends_have_unique_names_and_factories) {
  auto list = compiled_backends();
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_NE(list[i].make, nullptr);
    EXPECT_FALSE(list[i].type.empty());
    for (std::size_t j = i + 1; j < list.size(); ++j) {
      EXPECT_NE(list[i].type, list[j].type);
    }
  }
}

TEST(registry, find_header_is_case_insensitive) {
  header_list h{{"Content-Type", "text/plain"}, {"traceparent", "00-x"}};
  ASSERT_NE(find_header(h, "content-type"), nullptr);
  EXPECT_EQ(*find_header(h, "TRACEPARENT"), "00-x");
  EXPECT_EQ(find_header(h, "tracestate"), nullptr);
}

}  // namespace
}  // namespace outrider::backends
