#include "ambassador/resolver.h"

#include <gtest/gtest.h>

#include "io/mem_file_system.h"

namespace outrider::ambassador {
namespace {

using namespace std::chrono_literals;

void write(io::file_system& fs, const std::string& path, const std::string& text) {
  (void)fs.remove_file(path);
  auto f = fs.open_for_append(path);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->append(std::as_bytes(std::span(text.data(), text.size()))));
  ASSERT_TRUE((*f)->sync());
}

TEST(resolver, file_resolver_rereads_the_file_when_it_changes) {
  io::mem_file_system fs;
  simulated_clock clk;
  write(fs, "/apps.yaml", "apps:\n  orders: \"127.0.0.1:3501\"\n");
  file_resolver r(fs, "/apps.yaml", clk, 500ms);
  EXPECT_EQ(r.resolve("orders").value_or(""), "127.0.0.1:3501");
  EXPECT_EQ(r.resolve("billing").error().code, errc::not_found);
  write(fs, "/apps.yaml", "apps:\n  orders: \"127.0.0.1:4000\"\n  billing: \"127.0.0.1:4001\"\n");
  EXPECT_EQ(r.resolve("orders").value_or(""), "127.0.0.1:3501");  // not re-checked yet
  clk.advance(500ms);
  EXPECT_EQ(r.resolve("orders").value_or(""), "127.0.0.1:4000");
  EXPECT_EQ(r.resolve("billing").value_or(""), "127.0.0.1:4001");
  // A broken rewrite keeps the last good table.
  write(fs, "/apps.yaml", "apps: [not, a, map]\n");
  clk.advance(1s);
  EXPECT_EQ(r.resolve("billing").value_or(""), "127.0.0.1:4001");
}

TEST(resolver, chain_asks_in_order) {
  chain_resolver chain;
  chain.add(std::make_shared<static_resolver>(std::map<std::string, std::string>{{"a", "h:1"}}));
  chain.add(std::make_shared<static_resolver>(
      std::map<std::string, std::string>{{"a", "h:2"}, {"b", "h:3"}}));
  EXPECT_EQ(chain.resolve("a").value_or(""), "h:1");
  EXPECT_EQ(chain.resolve("b").value_or(""), "h:3");
  EXPECT_FALSE(chain.resolve("c"));
}

TEST(resolver, app_table_rejects_bad_addresses) {
  auto doc = config::parse_yaml("apps:\n  a: nohostport\n", "r.yaml");
  ASSERT_TRUE(doc);
  auto t = parse_app_table(*doc);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("r.yaml:2"), std::string::npos) << t.error().message;
}

}  // namespace
}  // namespace outrider::ambassador
