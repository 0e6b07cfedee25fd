#include "ui_assets/ui_assets.h"

#include <cstddef>
#include <gtest/gtest.h>
#include <span>
#include <string>

#include "io/mem_file_system.h"

namespace outrider::ui_assets {
namespace {

http::request get(std::string path) {
  http::request req;
  req.method = "GET";
  req.target = path;
  req.path = std::move(path);
  return req;
}

void write(io::file_system& fs, const std::string& path, std::string_view body) {
  auto file = fs.open_for_append(path);
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->append(std::as_bytes(std::span(body.data(), body.size()))));
  ASSERT_TRUE((*file)->sync());
}

class ui_assets_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.create_dirs("/ui/assets"));
    write(fs_, "/ui/index.html", "<html>app</html>");
    write(fs_, "/ui/assets/index-abc.js", "console.log(1)");
  }
  io::mem_file_system fs_;
  ui_options disk_{"/ui"};
};

TEST(ui_assets, embedded_bundle_has_an_index_page) {
  bool found = false;
  for (const auto& a : embedded_assets()) {
    if (a.path == "/index.html") found = true;
    EXPECT_FALSE(a.body.empty()) << a.path;
    EXPECT_EQ(a.etag.front(), '"');
  }
  EXPECT_TRUE(found);
}

TEST(ui_assets, embedded_index_for_root_and_client_routes) {
  io::mem_file_system fs;
  for (const char* path : {"/", "/trace/4bf92f3577b34da6", "/graph", "/coupling"}) {
    auto resp = serve(get(path), {}, fs);
    EXPECT_EQ(resp.status, 200) << path;
    EXPECT_EQ(resp.headers.get("Content-Type").value_or(""), "text/html; charset=utf-8") << path;
    EXPECT_EQ(resp.headers.get("Cache-Control").value_or(""), "no-cache") << path;
  }
}

TEST(ui_assets, embedded_gzip_only_when_accepted_and_etag_revalidates) {
  io::mem_file_system fs;
  for (const auto& a : embedded_assets()) {
    auto plain = serve(get(std::string(a.path)), {}, fs);
    ASSERT_EQ(plain.status, 200) << a.path;
    EXPECT_EQ(plain.body, a.body);
    EXPECT_FALSE(plain.headers.contains("Content-Encoding"));
    auto req = get(std::string(a.path));
    req.headers.set("Accept-Encoding", "gzip, deflate, br");
    auto zipped = serve(req, {}, fs);
    if (!a.gzip_body.empty()) {
      EXPECT_EQ(zipped.headers.get("Content-Encoding").value_or(""), "gzip");
      EXPECT_EQ(zipped.body, a.gzip_body);
      EXPECT_EQ(zipped.headers.get("Vary").value_or(""), "Accept-Encoding");
    }
    req.headers.set("If-None-Match", a.etag);
    EXPECT_EQ(serve(req, {}, fs).status, 304);
    if (a.path.starts_with("/assets/")) {
      EXPECT_EQ(plain.headers.get("Cache-Control").value_or(""),
                "public, max-age=31536000, immutable");
    }
  }
}

TEST_F(ui_assets_test, disk_mode_serves_files_with_content_types) {
  auto js = serve(get("/assets/index-abc.js"), disk_, fs_);
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(js.headers.get("Content-Type").value_or(""), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers.get("Cache-Control").value_or(""), "no-cache");
  auto index = serve(get("/trace/abc"), disk_, fs_);
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>app</html>");
}

TEST_F(ui_assets_test, missing_files_and_api_paths_are_404_not_the_index) {
  EXPECT_EQ(serve(get("/assets/gone.js"), disk_, fs_).status, 404);
  EXPECT_EQ(serve(get("/api/outrider/v1/graph"), disk_, fs_).status, 404);
  io::mem_file_system empty;
  auto api = serve(get("/api/outrider/v1/analysis"), {}, empty);
  EXPECT_EQ(api.status, 404);
  EXPECT_NE(api.body.find("ERR_ROUTE_NOT_FOUND"), std::string::npos);
  EXPECT_EQ(serve(get("/assets/gone.js"), {}, empty).status, 404);
}

TEST_F(ui_assets_test, refuses_paths_that_climb_out_of_the_directory) {
  write(fs_, "/secret.txt", "no");
  for (const char* path : {"/../secret.txt", "/assets/../../secret.txt", "/./index.html",
                           "//secret.txt", "/a\\..\\secret.txt"}) {
    auto resp = serve(get(path), disk_, fs_);
    EXPECT_EQ(resp.status, 404) << path;
    EXPECT_NE(resp.body, "no") << path;
  }
}

TEST(ui_assets, content_types_by_extension) {
  EXPECT_EQ(content_type_for("/a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("/a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("/a.bin"), "application/octet-stream");
}

TEST(ui_assets, routes_leave_api_routes_alone) {
  http::router routes;
  routes.add_sync("GET", "/api/v2/services",
                  [](const http::request&) { return http::response::json(200, "[]"); });
  io::mem_file_system fs;
  add_ui_routes(routes, {}, fs);
  auto call = [&](std::string path) {
    http::response out;
    routes.dispatch(get(std::move(path)), http::responder([&](http::response&& r) { out = r; }));
    return out;
  };
  EXPECT_EQ(call("/api/v2/services").body, "[]");
  EXPECT_EQ(call("/").status, 200);
  EXPECT_EQ(call("/graph").status, 200);
  EXPECT_EQ(call("/api/outrider/v1/graph").status, 404);
}

}  // namespace
}  // namespace outrider::ui_assets
