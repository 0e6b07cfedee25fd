#include "sidecar/configuration.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "io/mem_file_system.h"

namespace outrider::sidecar {
namespace {
namespace json = boost::json;

void write_file(io::mem_file_system& fs, const std::string& path, std::string_view text) {
  if (fs.exists(path).value_or(false)) {
    ASSERT_TRUE(fs.remove_file(path));
  }
  auto f = fs.open_for_append(path);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->append(std::as_bytes(std::span(text.data(), text.size()))));
  ASSERT_TRUE((*f)->sync());
}

http::request get(std::string store, std::string query = "", std::string id = "") {
  http::request r;
  r.method = "GET";
  r.query = std::move(query);
  r.params.add("store", std::move(store));
  if (!id.empty()) r.params.add("id", std::move(id));
  return r;
}

struct sent {
  std::string path;
  json::value body;
};

struct configuration_fixture : ::testing::Test {
  io::mem_file_system fs;
  std::vector<sent> notes;
  std::unique_ptr<configuration_stores> stores;

  void make(std::vector<config_store_spec> specs, std::vector<std::string> env = {}) {
    stores = std::make_unique<configuration_stores>(std::move(specs), fs, std::move(env),
                                                    [this](std::string path, std::string body) {
                                                      notes.push_back({path, json::parse(body)});
                                                    });
  }
};

TEST(config_yaml, flattens_nested_maps_to_dotted_keys) {
  auto m = flatten_config_yaml("db:\n  host: pg\n  port: 5432\nflags: [a, b]\nempty:\n", "x.yaml");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->at("db.host"), "pg");
  EXPECT_EQ(m->at("db.port"), "5432");
  EXPECT_EQ(m->at("flags"), R"(["a","b"])");
  EXPECT_EQ(m->at("empty"), "");
  auto bad = flatten_config_yaml("- a\n- b\n", "list.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("list.yaml"), std::string::npos);
}

TEST(config_yaml, store_section_errors_name_the_key) {
  auto doc = config::parse_yaml(
      "configurationStores:\n  - name: a\n    file: x\n    envPrefix: Y\n", "sidecar.yaml");
  ASSERT_TRUE(doc);
  auto r = parse_config_stores_yaml(*doc->find("configurationStores"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("sidecar.yaml:2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("exactly one of file or envPrefix"), std::string::npos);
  auto doc2 = config::parse_yaml("s:\n  - name: a\n    file: x\n    colour: red\n", "c.yaml");
  auto r2 = parse_config_stores_yaml(*doc2->find("s"));
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("unknown key"), std::string::npos);
}

TEST_F(configuration_fixture, get_returns_requested_or_all_keys) {
  write_file(fs, "/app.yaml", "greeting: hello\nlimits:\n  max: 3\n");
  make({{"appconfig", "/app.yaml", ""}, {"env", "", "SHOP_"}},
       {"SHOP_REGION=eu", "PATH=/bin", "SHOP_=ignored"});
  ASSERT_TRUE(stores->load());
  auto all = stores->handle_get(get("appconfig"));
  EXPECT_EQ(all.status, 200);
  auto v = json::parse(all.body).as_object();
  EXPECT_EQ(v.at("greeting").at("value"), "hello");
  EXPECT_EQ(v.at("greeting").at("version"), "1");
  EXPECT_EQ(v.at("limits.max").at("value"), "3");
  auto some = json::parse(stores->handle_get(get("appconfig", "key=limits.max&key=nope")).body);
  EXPECT_EQ(some.as_object().size(), 1U);
  auto env = json::parse(stores->handle_get(get("env")).body).as_object();
  EXPECT_EQ(env.size(), 1U);
  EXPECT_EQ(env.at("REGION").at("value"), "eu");
  auto missing = stores->handle_get(get("nostore"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("ERR_CONFIGURATION_STORE_NOT_FOUND"), std::string::npos);
}

TEST_F(configuration_fixture, load_fails_clearly_for_a_missing_or_bad_file) {
  make({{"appconfig", "/nope.yaml", ""}});
  auto st = stores->load();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("appconfig"), std::string::npos);
  write_file(fs, "/bad.yaml", "a: [1,\n");
  make({{"appconfig", "/bad.yaml", ""}});
  ASSERT_FALSE(stores->load());
}

TEST_F(configuration_fixture, subscribers_hear_about_changed_and_removed_keys_only) {
  write_file(fs, "/app.yaml", "a: 1\nb: 2\nc: 3\n");
  make({{"appconfig", "/app.yaml", ""}});
  ASSERT_TRUE(stores->load());
  auto sub = stores->handle_subscribe(get("appconfig", "key=a,b"));
  ASSERT_EQ(sub.status, 200);
  const std::string id(json::parse(sub.body).at("id").as_string());
  auto every = stores->handle_subscribe(get("appconfig"));
  const std::string all_id(json::parse(every.body).at("id").as_string());

  stores->poll();
  EXPECT_TRUE(notes.empty());  // nothing changed

  write_file(fs, "/app.yaml", "a: 10\nc: 30\nd: 4\n");  // a changed, b removed, c changed, d new
  stores->poll();
  std::map<std::string, std::vector<std::string>> by_sub;  // id -> paths
  for (const auto& n : notes) {
    by_sub[std::string(n.body.at("id").as_string())].push_back(n.path);
  }
  EXPECT_EQ(by_sub[id],
            (std::vector<std::string>{"/configuration/appconfig/a", "/configuration/appconfig/b"}));
  EXPECT_EQ(by_sub[all_id].size(), 4U);
  for (const auto& n : notes) {
    if (n.path == "/configuration/appconfig/a") {
      EXPECT_EQ(n.body.at("items").at("a").at("value"), "10");
      EXPECT_EQ(n.body.at("items").at("a").at("version"), "2");
    }
    if (n.path == "/configuration/appconfig/b") {
      EXPECT_EQ(n.body.at("items").at("b").at("value"), "");
    }
  }
  auto now = json::parse(stores->handle_get(get("appconfig")).body).as_object();
  EXPECT_FALSE(now.contains("b"));
  EXPECT_EQ(now.at("d").at("version"), "1");

  // A broken file keeps the last good values and notifies nobody.
  notes.clear();
  write_file(fs, "/app.yaml", "a: [\n");
  stores->poll();
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(json::parse(stores->handle_get(get("appconfig", "key=a")).body).at("a").at("value"),
            "10");

  // Unsubscribed: no more notifications for that id.
  EXPECT_EQ(stores->handle_unsubscribe(get("appconfig", "", id)).status, 200);
  EXPECT_EQ(stores->handle_unsubscribe(get("appconfig", "", id)).status, 404);
  write_file(fs, "/app.yaml", "a: 11\n");
  stores->poll();
  for (const auto& n : notes) EXPECT_EQ(n.body.at("id").as_string(), all_id);
  EXPECT_FALSE(notes.empty());
}

}  // namespace
}  // namespace outrider::sidecar
