// ui_assets: the web UI's built files (ui/, bundled by npm at build time) and
// the HTTP routes that serve them at `/` of the collector's query port.
//
// The build (src/ui_assets/CMakeLists.txt) runs the UI's bundler when ui/
// sources change and generates one .cpp holding every file of the bundle as a
// byte array (plus a gzip copy when that is smaller). Without npm the build
// embeds a placeholder page that says how to build the UI.
//
// Serving rules (both for embedded assets and for a --ui-dir on disk):
//  - GET/HEAD of a file answers it with a Content-Type from its extension;
//    `/` and SPA routes without a file extension answer index.html.
//  - Hashed bundle files under /assets/ are cacheable forever (immutable);
//    everything else must be revalidated (ETag + If-None-Match → 304).
//  - A gzip copy is sent when the client accepts gzip (Vary: Accept-Encoding).
//  - Paths under /api/ never fall back to index.html: they answer 404 JSON,
//    so the UI sees "no such endpoint" for APIs this build does not have.
//  - Paths with "..", "." or empty segments or a NUL are refused (404).
//
// Threading: the routes are stateless (disk mode reads the file per request);
// dispatch from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/router.h"
#include "io/file_system.h"

namespace outrider::ui_assets {

// One file of the built UI.
struct asset {
  std::string_view path;  // "/index.html", "/assets/index-3f2a.js"
  std::string_view body;
  std::string_view gzip_body;  // empty when gzip would not be smaller
  std::string_view etag;       // quoted, from the content hash
};

// The files compiled into this binary.
std::span<const asset> embedded_assets();
// True when the build had no npm and embedded only the placeholder page.
bool embedded_is_placeholder();

// "text/html; charset=utf-8" for "/index.html", ...; application/octet-stream
// for unknown extensions.
std::string_view content_type_for(std::string_view path);

struct ui_options {
  // Serve files from this directory instead of the embedded ones
  // (development: point it at the bundler's output). Empty: embedded.
  std::string dir;
};

// Answers a GET/HEAD of `req.path` by the rules above (pure; `fs` is used only
// when `opts.dir` is set).
http::response serve(const http::request& req, const ui_options& opts, io::file_system& fs);

// Adds GET / and GET /{*path} (the lowest-precedence routes: every more specific
// route added before or after wins). `fs` must outlive the router.
void add_ui_routes(http::router& routes, ui_options opts, io::file_system& fs);

}  // namespace outrider::ui_assets
