#include "http/router.h"

#include <algorithm>
#include <fmt/core.h>

#include "base/assert.h"

namespace outrider::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  parts.reserve(8);  // one allocation for the usual API path (/v1.0/publish/pubsub/topic)
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

void router::add(std::string_view method, std::string_view pattern, handler h) {
  OUTRIDER_ASSERT(!pattern.empty() && pattern.front() == '/', "route pattern must start with '/'");
  route rt;
  rt.method = std::string(method);
  rt.h = std::move(h);
  auto parts = split_path(pattern);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto p = parts[i];
    if (p.size() >= 3 && p.front() == '{' && p.back() == '}') {
      if (p[1] == '*') {
        OUTRIDER_ASSERT(i + 1 == parts.size(), "tail parameter must be last");
        rt.segments.push_back({segment::kind::tail, std::string(p.substr(2, p.size() - 3))});
      } else {
        rt.segments.push_back({segment::kind::param, std::string(p.substr(1, p.size() - 2))});
      }
    } else {
      rt.segments.push_back({segment::kind::literal, std::string(p)});
      ++rt.literal_score;
    }
  }
  // Keep more literal routes first among equals (stable for insertion order).
  auto pos = std::find_if(routes_.begin(), routes_.end(),
                          [&](const route& r) { return r.literal_score < rt.literal_score; });
  routes_.insert(pos, std::move(rt));
}

bool router::match(const route& rt, const std::vector<std::string_view>& parts, request& req,
                   bool& bad_escape) {
  req.params.clear();
  std::size_t i = 0;
  for (const auto& seg : rt.segments) {
    if (seg.type == segment::kind::tail) {
      // Rest of the path joined back with '/', possibly empty.
      std::string rest;
      for (std::size_t j = i; j < parts.size(); ++j) {
        if (j > i) rest.push_back('/');
        rest.append(parts[j]);
      }
      auto decoded = percent_decode(rest);
      if (!decoded) {
        bad_escape = true;
        return false;
      }
      req.params.add(seg.text, std::move(*decoded));
      return true;
    }
    if (i >= parts.size()) return false;
    if (seg.type == segment::kind::literal) {
      if (parts[i] != seg.text) return false;
    } else {
      if (parts[i].empty()) return false;
      auto decoded = percent_decode(parts[i]);
      if (!decoded) {
        bad_escape = true;
        return false;
      }
      req.params.add(seg.text, std::move(*decoded));
    }
    ++i;
  }
  return i == parts.size();
}

void router::dispatch(request&& req, responder r) const {
  auto parts = split_path(req.path);
  std::string allowed;
  bool bad_escape = false;
  for (const auto& rt : routes_) {
    if (!match(rt, parts, req, bad_escape)) continue;
    if (rt.method == req.method || (req.method == "HEAD" && rt.method == "GET")) {
      rt.h(std::move(req), std::move(r));
      return;
    }
    if (allowed.find(rt.method) == std::string::npos) {
      if (!allowed.empty()) allowed += ", ";
      allowed += rt.method;
    }
  }
  if (bad_escape) {
    r.send(response::from_error(error(
        errc::malformed_request, fmt::format("malformed percent-escape in path '{}'", req.path))));
    return;
  }
  if (!allowed.empty()) {
    auto resp = response::from_error(
        error(errc::method_not_allowed,
              fmt::format("{} is not allowed on {} (allowed: {})", req.method, req.path, allowed)));
    resp.headers.set("Allow", allowed);
    r.send(std::move(resp));
    return;
  }
  r.send(response::from_error(
      error(errc::route_not_found, fmt::format("no route for {} {}", req.method, req.path))));
}

handler router::as_handler() const {
  return [this](request&& req, responder r) { dispatch(std::move(req), std::move(r)); };
}

}  // namespace outrider::http
