#include "ambassador/forwarding.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <fmt/core.h>
#include <iterator>

#include "base/json_values.h"

namespace outrider::ambassador {
namespace json = boost::json;
namespace {

constexpr std::string_view invoke_prefix = "/v1.0/invoke/";
constexpr std::string_view method_marker = "/method/";
constexpr std::size_t max_error_body_chars = 512;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool iequals_any(std::string_view name, std::initializer_list<std::string_view> names) {
  for (const auto& n : names) {
    if (http::iequals(name, n)) return true;
  }
  return false;
}

bool valid_header_text(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == 0; });
}

}  // namespace

namespace {

// RFC 9110's hop-by-hop names, Host, Content-Length and Expect, by length: a field
// is compared with at most two of them. With `but_framing`, not Content-Length,
// Transfer-Encoding and Connection.
template <bool but_framing>
bool listed(std::string_view name) {
  auto is = [name](std::string_view what) { return http::iequals(name, what); };
  switch (name.size()) {
    case 2: return is("TE");
    case 4: return is("Host");
    case 6: return is("Expect");
    case 7: return is("Trailer") || is("Upgrade");
    case 10: return (!but_framing && is("Connection")) || is("Keep-Alive");
    case 14: return !but_framing && is("Content-Length");
    case 16: return is("Proxy-Connection");
    case 17: return !but_framing && is("Transfer-Encoding");
    case 18: return is("Proxy-Authenticate");
    case 19: return is("Proxy-Authorization");
    default: return false;
  }
}

template <bool but_framing>
void strip(http::fields& headers, std::initializer_list<std::string_view> also) {
  // The names Connection lists that are not listed already (usually none: its
  // value is "keep-alive" or "close").
  std::vector<std::string> named;
  bool any = false;  // a field listed or in `also` (else, with nothing named, no erase pass)
  for (const auto& f : headers) {
    if (!any && (listed<but_framing>(f.name) || iequals_any(f.name, also))) any = true;
    if (f.name.size() != 10 || !http::iequals(f.name, "Connection")) continue;
    std::string_view v = f.value;
    if (http::iequals(v, "keep-alive")) continue;  // the usual value names a listed field
    while (!v.empty()) {
      auto comma = v.find(',');
      auto token = v.substr(0, comma);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      if (!token.empty() && !listed<false>(token) && !iequals_any(token, also)) {
        named.emplace_back(token);
      }
      v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    }
  }
  if (!any && named.empty()) return;  // the usual answer: nothing to erase
  // One pass erases them all (moving each kept field at most once).
  headers.erase_if([&](const http::fields::field& f) {
    if (listed<but_framing>(f.name) || iequals_any(f.name, also)) return true;
    for (const auto& n : named) {
      if (http::iequals(f.name, n)) return true;
    }
    return false;
  });
}

}  // namespace

void strip_hop_by_hop(http::fields& headers, std::initializer_list<std::string_view> also) {
  strip<false>(headers, also);
}

void strip_hop_by_hop_but_framing(http::fields& headers) {
  strip<true>(headers, {});
}

result<invoke_target> parse_invoke_target(std::string_view raw) {
  auto bad = [&](std::string_view why) {
    return error(errc::invalid_argument, fmt::format("invalid invocation path '{}': {} (expected "
                                                     "/v1.0/invoke/{{app-id}}/method/{{path}})",
                                                     raw.substr(0, 200), why));
  };
  if (!raw.starts_with(invoke_prefix)) return bad("wrong prefix");
  auto rest = raw.substr(invoke_prefix.size());
  auto marker = rest.find(method_marker);
  std::string_view tail;  // after "/method/", or the query of ".../method?q"
  if (marker != std::string_view::npos) {
    tail = rest.substr(marker + method_marker.size());
  } else {
    // "/v1.0/invoke/app/method" with an empty path
    const auto q = rest.find('?');
    const auto head = rest.substr(0, q);
    if (!head.ends_with("/method")) return bad("no '/method/'");
    marker = head.size() - std::string_view("/method").size();
    if (q != std::string_view::npos) tail = rest.substr(q);
  }
  auto id = http::percent_decode(rest.substr(0, marker));
  if (!id) return bad("bad escape in the app id");
  if (id->empty() || id->find('/') != std::string::npos) return bad("empty app id");
  invoke_target t;
  t.app_id = std::move(*id);
  t.method_target = "/";
  t.method_target += tail;
  return t;
}

result<binding_request> parse_binding_request(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return error(errc::invalid_argument,
                 "the body must be a JSON object {\"data\", \"metadata\", \"operation\"}" +
                     (ec ? ": " + ec.message() : std::string()));
  }
  if (has_non_finite_number(doc)) {
    return error(errc::invalid_argument,
                 "the body has a number out of the range of a double (it could not be "
                 "forwarded as valid JSON)");
  }
  const auto& o = doc.get_object();
  binding_request out;
  const auto* op = o.if_contains("operation");
  if (op == nullptr || !op->is_string() || op->get_string().empty()) {
    return error(errc::invalid_argument, "\"operation\" must be a non-empty string");
  }
  out.operation = lower(std::string_view(op->get_string()));
  if (const auto* d = o.if_contains("data"); d != nullptr && !d->is_null()) {
    if (d->is_string()) {
      out.data = std::string(d->get_string());
    } else {
      out.data = json::serialize(*d);
      out.data_is_json = true;
    }
  }
  if (const auto* m = o.if_contains("metadata"); m != nullptr && !m->is_null()) {
    if (!m->is_object()) return error(errc::invalid_argument, "\"metadata\" must be an object");
    for (const auto& kv : m->get_object()) {
      if (!kv.value().is_string()) {
        return error(errc::invalid_argument,
                     fmt::format("metadata '{}' must be a string", std::string_view(kv.key())));
      }
      out.metadata.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
    }
  }
  return out;
}

result<binding_call> make_binding_call(const http_binding& binding, const binding_request& in) {
  static constexpr std::pair<std::string_view, std::string_view> methods[] = {
      {"get", "GET"},   {"post", "POST"},       {"create", "POST"},
      {"put", "PUT"},   {"delete", "DELETE"},   {"patch", "PATCH"},
      {"head", "HEAD"}, {"options", "OPTIONS"}, {"trace", "TRACE"}};
  std::string_view method;
  for (const auto& [op, m] : methods) {
    if (op == in.operation) method = m;
  }
  if (method.empty()) {
    return error(errc::invalid_argument,
                 fmt::format("binding '{}' does not support operation '{}' (get, post, put, "
                             "delete, patch, head, options, trace, create)",
                             binding.name, in.operation));
  }
  std::string url = binding.url;
  for (const auto& [k, v] : in.metadata) {
    if (k != "path") continue;
    if (!url.empty() && url.back() == '/' && v.starts_with('/')) url.pop_back();
    if (!url.empty() && url.back() != '/' && !v.empty() && !v.starts_with('/') &&
        !v.starts_with('?')) {
      url += '/';
    }
    url += v;
  }
  auto dest = http::url::parse(url);
  if (!dest) {
    return error(errc::invalid_argument,
                 fmt::format("binding '{}': {}", binding.name, dest.error().message));
  }
  binding_call call;
  call.destination = std::move(*dest);
  call.request.method = std::string(method);
  call.request.target = call.destination.target;
  for (const auto& h : binding.headers) call.request.headers.set(h.name, h.value);
  for (const auto& [k, v] : in.metadata) {
    if (k == "path") continue;
    if (k.empty() || !valid_header_text(k) || !valid_header_text(v) ||
        k.find_first_of(" :") != std::string::npos) {
      return error(errc::invalid_argument,
                   fmt::format("metadata '{}' cannot be sent as an HTTP header", k));
    }
    call.request.headers.set(k, v);
  }
  if (in.data_is_json && !call.request.headers.contains("Content-Type")) {
    call.request.headers.set("Content-Type", "application/json");
  }
  call.request.body = in.data;
  return call;
}

http::response binding_response(const http_binding& binding, http::response upstream) {
  const int status = upstream.status;
  if (binding.error_if_not_2xx && (status < 200 || status >= 300)) {
    std::string body = upstream.body.substr(0, max_error_body_chars);
    return http::response::from_error(
        error(errc::invoke_output_binding,
              fmt::format("binding '{}': the service answered {} {}{}{}", binding.name, status,
                          http::reason_phrase(status), body.empty() ? "" : ": ", body)));
  }
  http::response out;
  out.status = 200;
  out.body = std::move(upstream.body);
  out.headers.set("metadata.statusCode", std::to_string(status));
  out.headers.set("metadata.status", fmt::format("{} {}", status, http::reason_phrase(status)));
  for (const auto& f : upstream.headers) {
    if (http::iequals(f.name, "Content-Length") || http::iequals(f.name, "Transfer-Encoding") ||
        http::iequals(f.name, "Connection")) {
      continue;
    }
    out.headers.add("metadata." + f.name, f.value);
    if (http::iequals(f.name, "Content-Type")) out.headers.set("Content-Type", f.value);
  }
  return out;
}

}  // namespace outrider::ambassador
