// bench_http_server: the Outrider HTTP layer serving one small fixed response,
// for the `http` suite (wrk against this and against nginx, same body).
//   bench_http_server [--listen 127.0.0.1:0] [--threads N] [--body TEXT]
// Prints "listening on HOST:PORT" when ready; stops on SIGINT/SIGTERM.
#include <cstdio>
#include <cstring>
#include <string>

#include "base/log.h"
#include "http/router.h"
#include "http/server.h"
#include "io/runtime.h"

int main(int argc, char** argv) {
  using namespace outrider;
  std::string listen = "127.0.0.1:0";
  std::size_t threads = 2;
  std::string body = "hello, world\n";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--listen") == 0) {
      listen = argv[i + 1];
    } else if (std::strcmp(argv[i], "--threads") == 0) {
      threads = std::stoul(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--body") == 0) {
      body = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  io::block_shutdown_signals();
  io::runtime rt(threads);
  http::router routes;
  routes.add_sync("GET", "/", [&body](const http::request&) {
    return http::response::with_body(200, body, "text/plain");
  });
  // For the invoke suite's app: answers a POST with the same small body.
  routes.add_sync("POST", "/", [&body](const http::request&) {
    return http::response::with_body(200, body, "text/plain");
  });
  http::server_options opts;
  opts.listen = listen;
  http::server srv(rt, opts, routes.as_handler());
  if (auto s = srv.start(); !s) {
    std::fprintf(stderr, "bench_http_server: %s\n", s.error().message.c_str());
    return 1;
  }
  rt.start();
  std::printf("listening on %s\n", srv.address().c_str());
  std::fflush(stdout);
  io::wait_for_shutdown_signal();
  srv.stop(std::chrono::seconds(2));
  rt.stop();
  return 0;
}
