// router: maps (method, path) to handlers.
//
// Patterns are '/'-separated segments: literals, "{name}" (one segment,
// percent-decoded into request.params) and a final "{*name}" (the rest of the
// path, possibly empty or containing '/'). Literal segments win over
// parameters at the same position; otherwise routes match in the order added.
// A path that matches no route answers 404 ERR_ROUTE_NOT_FOUND; a path that
// matches only under other methods answers 405 with an Allow header.
// Routes are added before serving starts; dispatch() is then thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/handler.h"

namespace outrider::http {

class router {
 public:
  // REQUIRES: a valid pattern (starts with '/', at most one tail parameter, last).
  void add(std::string_view method, std::string_view pattern, handler h);
  void add_sync(std::string_view method, std::string_view pattern,
                std::function<response(const request&)> fn) {
    add(method, pattern, sync_handler(std::move(fn)));
  }

  // Routes `req` and calls the handler (or answers 404/405/400 itself).
  void dispatch(request&& req, responder r) const;

  // As a handler, for the server.
  handler as_handler() const;

 private:
  struct segment {
    enum class kind { literal, param, tail } type;
    std::string text;  // literal text or parameter name
  };
  struct route {
    std::string method;
    std::vector<segment> segments;
    handler h;
    int literal_score = 0;  // number of literal segments, for precedence
  };
  static bool match(const route& rt, const std::vector<std::string_view>& parts, request& req,
                    bool& bad_escape);

  std::vector<route> routes_;
};

}  // namespace outrider::http
