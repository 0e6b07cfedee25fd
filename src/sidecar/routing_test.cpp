#include "sidecar/routing.h"

#include <gtest/gtest.h>

namespace outrider::sidecar {
namespace {

const char* event = R"({"type":"order.created","source":"shop","data":{"total":150,"kind":"real",
  "flags":{"vip":true},"items":2.5},"specversion":"1.0"})";

bool eval(std::string_view expr) {
  auto e = route_expression::parse(expr);
  EXPECT_TRUE(e.ok()) << expr << ": " << (e ? "" : e.error().message);
  return e && e->matches(event);
}

TEST(routing, accepts_what_people_write) {
  EXPECT_TRUE(eval(R"(event.type == "order.created")"));
  EXPECT_FALSE(eval(R"(event.type != "order.created")"));
  EXPECT_TRUE(eval(R"(event.type == 'order.created' && event.data.total > 100)"));
  EXPECT_TRUE(eval(R"(event.type == "x" || event.source == "shop")"));
  EXPECT_TRUE(eval(R"(!(event.source == "legacy"))"));
  EXPECT_TRUE(
      eval(R"((event.type == "x" || event.type == "order.created") && event.data.total >= 150)"));
  EXPECT_TRUE(eval(R"(event.data["kind"] == "real")"));
  EXPECT_TRUE(eval(R"(event.data.flags.vip)"));
  EXPECT_TRUE(eval(R"(event.data.flags.vip == true)"));
  EXPECT_TRUE(eval(R"(event.data.items < 3)"));
  EXPECT_TRUE(eval(R"(event.data.total == 150.0)"));
  EXPECT_FALSE(eval(R"(event.data.missing == "x")"));
  EXPECT_FALSE(eval(R"(event.data.missing != "x")"));  // reading a missing field never matches
  EXPECT_FALSE(eval(R"(event.type < 5)"));             // mixed types never order
  EXPECT_TRUE(eval(R"(event.source <= "shop")"));
}

TEST(routing, rejects_other_expressions_with_position) {
  struct bad_case {
    const char* text;
    const char* expect;
  };
  for (const auto& c : std::vector<bad_case>{
           {R"(has(event.data))", "position 1: function calls"},
           {R"(event.type.startsWith("x"))", "method calls"},
           {R"(data.type == "x")", "unknown name 'data'"},
           {R"(event.type == "x" &&)", "end of the expression"},
           {R"(event.type == "x)", "unterminated string"},
           {R"(event.type in ["a"])", "position 12: unexpected 'in"},
           {R"(event.data.total + 1 > 2)", "unexpected '+"},
           {R"((event.type == "x")", "expected ')'"},
           {"", "end of the expression"},
       }) {
    auto e = route_expression::parse(c.text);
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_EQ(e.error().code, errc::invalid_argument);
    EXPECT_NE(e.error().message.find(c.expect), std::string::npos) << e.error().message;
    EXPECT_NE(e.error().message.find(std::string("'") + c.text + "'"), std::string::npos);
  }
}

TEST(routing, table_picks_first_matching_rule_then_default) {
  std::vector<routing_table::rule> rules;
  rules.push_back({*route_expression::parse(R"(event.type == "order.cancelled")"), "/cancel"});
  rules.push_back({*route_expression::parse(R"(event.data.total > 100)"), "/big"});
  rules.push_back({*route_expression::parse(R"(event.type == "order.created")"), "/created"});
  routing_table t(std::move(rules), "/default");
  EXPECT_EQ(t.select(event), "/big");
  EXPECT_EQ(t.select(R"({"type":"other"})"), "/default");
  EXPECT_EQ(t.select("not json"), "/default");
  routing_table no_default({}, "");
  EXPECT_EQ(no_default.select(event), "");
}

// The envelope of a JSON body nested 32 deep (which the sidecar's publish puts into `data` as
// written, since it parses at Boost.JSON's default depth) is 33 deep: its rules still apply.
TEST(routing, rules_apply_to_an_event_whose_data_is_nested_32_deep) {
  const std::string deep =
      R"({"type":"order.created","data":)" + std::string(32, '[') + std::string(32, ']') + "}";
  std::vector<routing_table::rule> rules;
  rules.push_back({*route_expression::parse(R"(event.type == "order.created")"), "/created"});
  routing_table t(std::move(rules), "/default");
  EXPECT_EQ(t.select(deep), "/created");
  EXPECT_TRUE(route_expression::parse(R"(event.type == "order.created")")->matches(deep));
}

}  // namespace
}  // namespace outrider::sidecar
