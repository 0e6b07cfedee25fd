#include "ui_assets/ui_assets.h"

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "base/crc32c.h"

namespace outrider::ui_assets {
namespace {

// Hashed bundle files never change under their name.
constexpr std::string_view immutable_prefix = "/assets/";
constexpr std::string_view cache_forever = "public, max-age=31536000, immutable";
constexpr std::string_view cache_revalidate = "no-cache";
// Largest file served from --ui-dir (a development aid, not a file server).
constexpr std::uint64_t max_disk_file_bytes = std::uint64_t{64} << 20;

struct extension_type {
  std::string_view extension;
  std::string_view type;
};
constexpr std::array<extension_type, 14> content_types{{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".txt", "text/plain; charset=utf-8"},
    {".webp", "image/webp"},
    {".wasm", "application/wasm"},
}};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A request path safe to look up: starts with '/', no empty, "." or ".."
// segments (a trailing '/' is allowed), no NUL or backslash.
bool safe_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos)
    return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return false;
    if (segment.empty() && end != path.size()) return false;
    start = end + 1;
  }
  return true;
}

// The last segment has no '.': a client-side route (/trace/abc), not a file.
bool looks_like_route(std::string_view path) {
  const auto slash = path.rfind('/');
  return path.substr(slash + 1).find('.') == std::string_view::npos;
}

bool accepts_gzip(const http::request& req) {
  auto accept = req.headers.get("Accept-Encoding");
  return accept && accept->find("gzip") != std::string_view::npos;
}

http::response not_found(std::string_view path) {
  return http::response::from_error(
      error(errc::route_not_found, "no route for GET " + std::string(path)));
}

// A found file, with the caching headers for `path`.
http::response file_response(const http::request& req, std::string_view path, std::string_view body,
                             std::string_view gzip_body, std::string_view etag) {
  http::response resp;
  resp.headers.set("Cache-Control",
                   path.starts_with(immutable_prefix) ? cache_forever : cache_revalidate);
  resp.headers.set("X-Content-Type-Options", "nosniff");
  if (!etag.empty()) {
    resp.headers.set("ETag", etag);
    if (auto match = req.headers.get("If-None-Match"); match && *match == etag) {
      resp.status = 304;
      return resp;
    }
  }
  resp.headers.set("Content-Type", content_type_for(path));
  if (!gzip_body.empty()) {
    resp.headers.set("Vary", "Accept-Encoding");
    if (accepts_gzip(req)) {
      resp.headers.set("Content-Encoding", "gzip");
      resp.body.assign(gzip_body);
      return resp;
    }
  }
  resp.body.assign(body);
  return resp;
}

const asset* find_embedded(std::string_view path) {
  for (const auto& a : embedded_assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

result<std::string> read_disk_file(io::file_system& fs, const std::string& path) {
  auto exists = fs.exists(path);
  if (!exists) return std::move(exists).error();
  if (!*exists) return error(errc::not_found, path + " does not exist");
  auto file = fs.open_for_read(path);
  if (!file) return std::move(file).error();
  auto size = (*file)->size();
  if (!size) return std::move(size).error();
  if (*size > max_disk_file_bytes) return error(errc::body_too_large, path + " is too large");
  std::string body(static_cast<std::size_t>(*size), '\0');
  std::size_t done = 0;
  while (done < body.size()) {
    auto n = (*file)->read_at(done, std::as_writable_bytes(std::span(body).subspan(done)));
    if (!n) return std::move(n).error();
    if (*n == 0) break;
    done += *n;
  }
  body.resize(done);
  return body;
}

std::string disk_etag(std::string_view body) {
  return "\"" + std::to_string(crc32c(std::as_bytes(std::span(body.data(), body.size())))) + "-" +
         std::to_string(body.size()) + "\"";
}

}  // namespace

std::string_view content_type_for(std::string_view path) {
  for (const auto& [extension, type] : content_types) {
    if (ends_with(path, extension)) return type;
  }
  return "application/octet-stream";
}

http::response serve(const http::request& req, const ui_options& opts, io::file_system& fs) {
  std::string_view path = req.path;
  if (path.starts_with("/api/") || !safe_path(path)) return not_found(path);
  std::string_view file = path;
  if (file.empty() || file.back() == '/') file = "/index.html";

  if (opts.dir.empty()) {
    const asset* found = find_embedded(file);
    if (!found && looks_like_route(path)) {
      file = "/index.html";
      found = find_embedded(file);
    }
    if (!found) return not_found(path);
    return file_response(req, file, found->body, found->gzip_body, found->etag);
  }

  auto body = read_disk_file(fs, opts.dir + std::string(file));
  if (!body && body.error().code == errc::not_found && looks_like_route(path)) {
    file = "/index.html";
    body = read_disk_file(fs, opts.dir + std::string(file));
  }
  if (!body) {
    if (body.error().code == errc::not_found) return not_found(path);
    return http::response::from_error(body.error());
  }
  const auto etag = disk_etag(*body);
  auto resp = file_response(req, file, *body, {}, etag);
  // Development files change under the same name: never cache them for long.
  resp.headers.set("Cache-Control", cache_revalidate);
  return resp;
}

void add_ui_routes(http::router& routes, ui_options opts, io::file_system& fs) {
  auto handler = [opts = std::move(opts), &fs](const http::request& req) {
    return serve(req, opts, fs);
  };
  routes.add_sync("GET", "/", handler);
  routes.add_sync("GET", "/{*path}", handler);
}

}  // namespace outrider::ui_assets
