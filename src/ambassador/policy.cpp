#include "ambassador/policy.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/core.h>

#include "base/time_format.h"
#include "config/settings.h"
#include "io/file_system.h"

namespace outrider::ambassador {
namespace {

constexpr double max_backoff_exponent = 62;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <class T>
status read_scalar(const config::node& map, std::string_view key, T& out) {
  const auto* n = map.find(key);
  if (n == nullptr || n->is_null()) return ok_status();
  if (!n->is_scalar()) return n->fail("expected a scalar value");
  if (auto st = config::parse_value(n->scalar(), out); !st) return n->fail(st.error().message);
  return ok_status();
}

status expect_map(const config::node& n) {
  if (!n.is_map()) return n.fail("expected a map");
  return ok_status();
}

// Keys of `n` must be among `known`.
status known_keys(const config::node& n, std::initializer_list<std::string_view> known) {
  for (const auto& [key, child] : n.entries()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return child.fail("unknown key");
    }
  }
  return ok_status();
}

result<int> parse_status(std::string_view text, const config::node& where) {
  text = trim(text);
  int v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || v < 100 || v > 599) {
    return where.fail(fmt::format("'{}' is not an HTTP status code (100-599)", text));
  }
  return v;
}

status add_ranges(std::string_view text, const config::node& where,
                  std::vector<status_range>& out) {
  while (!text.empty()) {
    auto comma = text.find(',');
    auto part = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (part.empty()) continue;
    auto dash = part.find('-');
    auto low = parse_status(part.substr(0, dash), where);
    if (!low) return low.error();
    int high = *low;
    if (dash != std::string_view::npos) {
      auto h = parse_status(part.substr(dash + 1), where);
      if (!h) return h.error();
      high = *h;
    }
    if (high < *low) return where.fail(fmt::format("range '{}' is empty", part));
    out.push_back({*low, high});
  }
  return ok_status();
}

result<retry_policy> parse_retry(const config::node& n) {
  OUTRIDER_TRY(expect_map(n));
  OUTRIDER_TRY(known_keys(n, {"policy", "duration", "initialInterval", "maxInterval", "multiplier",
                              "randomizationFactor", "maxRetries", "maxElapsedTime", "matching",
                              "retryNonIdempotent"}));
  retry_policy p;
  std::string kind = "constant";
  OUTRIDER_TRY(read_scalar(n, "policy", kind));
  if (kind == "constant") {
    p.type = retry_policy::kind::constant;
  } else if (kind == "exponential") {
    p.type = retry_policy::kind::exponential;
  } else {
    return n.find("policy")->fail("expected 'constant' or 'exponential'");
  }
  OUTRIDER_TRY(read_scalar(n, "duration", p.duration));
  OUTRIDER_TRY(read_scalar(n, "initialInterval", p.initial_interval));
  OUTRIDER_TRY(read_scalar(n, "maxInterval", p.max_interval));
  OUTRIDER_TRY(read_scalar(n, "multiplier", p.multiplier));
  OUTRIDER_TRY(read_scalar(n, "randomizationFactor", p.randomization_factor));
  OUTRIDER_TRY(read_scalar(n, "maxRetries", p.max_retries));
  OUTRIDER_TRY(read_scalar(n, "retryNonIdempotent", p.retry_non_idempotent));
  if (p.max_retries < -1) return n.find("maxRetries")->fail("expected -1 (unlimited) or more");
  if (p.multiplier < 1.0) return n.find("multiplier")->fail("expected a number >= 1");
  if (p.randomization_factor < 0 || p.randomization_factor > 1) {
    return n.find("randomizationFactor")->fail("expected a number from 0 to 1");
  }
  if (const auto* m = n.find("matching")) {
    OUTRIDER_TRY(expect_map(*m));
    OUTRIDER_TRY(known_keys(*m, {"httpStatusCodes", "gRPCStatusCodes"}));
    if (const auto* codes = m->find("httpStatusCodes")) {
      auto ranges = parse_status_ranges(*codes);
      if (!ranges) return ranges.error();
      p.retry_on = std::move(*ranges);
    }
  }
  return p;
}

result<trip_condition> parse_trip(const config::node& n) {
  if (!n.is_scalar()) return n.fail("expected an expression like 'consecutiveFailures > 5'");
  std::string_view text = trim(n.scalar());
  trip_condition t;
  std::string_view rest;
  for (auto [name, what] :
       {std::pair{std::string_view("consecutiveFailures"),
                  trip_condition::counter::consecutive_failures},
        std::pair{std::string_view("totalFailures"), trip_condition::counter::total_failures}}) {
    if (text.starts_with(name)) {
      t.what = what;
      rest = trim(text.substr(name.size()));
      break;
    }
  }
  bool or_equal = false;
  if (rest.starts_with(">=")) {
    or_equal = true;
    rest = trim(rest.substr(2));
  } else if (rest.starts_with(">")) {
    rest = trim(rest.substr(1));
  } else {
    return n.fail(
        "expected 'consecutiveFailures > N', 'consecutiveFailures >= N' or the same with "
        "totalFailures");
  }
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (ec != std::errc{} || ptr != rest.data() + rest.size() || (or_equal && v == 0)) {
    return n.fail(fmt::format("'{}' is not a positive number", rest));
  }
  t.threshold = or_equal ? v - 1 : v;
  return t;
}

result<breaker_policy> parse_breaker(const config::node& n) {
  OUTRIDER_TRY(expect_map(n));
  OUTRIDER_TRY(known_keys(n, {"maxRequests", "interval", "timeout", "trip"}));
  breaker_policy b;
  OUTRIDER_TRY(read_scalar(n, "maxRequests", b.max_requests));
  OUTRIDER_TRY(read_scalar(n, "interval", b.interval));
  OUTRIDER_TRY(read_scalar(n, "timeout", b.timeout));
  if (b.max_requests == 0) b.max_requests = 1;
  if (const auto* t = n.find("trip")) {
    auto trip = parse_trip(*t);
    if (!trip) return trip.error();
    b.trip = *trip;
  }
  return b;
}

result<target_policy> resolve_target(const config::node& n, const resiliency& r) {
  OUTRIDER_TRY(expect_map(n));
  OUTRIDER_TRY(known_keys(
      n, {"timeout", "retry", "circuitBreaker", "circuitBreakerScope", "circuitBreakerCacheSize"}));
  target_policy t;
  auto name_of = [&](std::string_view key, std::string& out) -> status {
    return read_scalar(n, key, out);
  };
  std::string timeout;
  std::string retry;
  std::string breaker;
  OUTRIDER_TRY(name_of("timeout", timeout));
  OUTRIDER_TRY(name_of("retry", retry));
  OUTRIDER_TRY(name_of("circuitBreaker", breaker));
  if (!timeout.empty()) {
    if (auto it = r.timeouts.find(timeout); it != r.timeouts.end()) {
      t.timeout = it->second;
    } else if (auto d = parse_duration(timeout)) {
      t.timeout = *d;  // Dapr also accepts a literal duration here
    } else {
      return n.find("timeout")->fail(fmt::format("no timeout policy named '{}'", timeout));
    }
  }
  if (!retry.empty()) {
    auto it = r.retries.find(retry);
    if (it == r.retries.end())
      return n.find("retry")->fail(fmt::format("no retry policy named '{}'", retry));
    t.retry = it->second;
  }
  if (!breaker.empty()) {
    auto it = r.breakers.find(breaker);
    if (it == r.breakers.end()) {
      return n.find("circuitBreaker")
          ->fail(fmt::format("no circuit breaker policy named '{}'", breaker));
    }
    t.breaker = it->second;
  }
  return t;
}

status parse_targets(const config::node& n, const resiliency& r, bool outbound_level,
                     std::map<std::string, target_policy>& out) {
  OUTRIDER_TRY(expect_map(n));
  for (const auto& [name, child] : n.entries()) {
    const config::node* policy_node = &child;
    if (outbound_level) {
      OUTRIDER_TRY(expect_map(child));
      OUTRIDER_TRY(known_keys(child, {"outbound", "inbound"}));
      policy_node = child.find("outbound");
      if (policy_node == nullptr) continue;  // inbound policies are not applied by Outrider
    }
    auto t = resolve_target(*policy_node, r);
    if (!t) return t.error();
    out[name] = std::move(*t);
  }
  return ok_status();
}

template <class Map>
status merge_map(Map& into, const Map& from, const config::node& where, std::string_view what) {
  for (const auto& [k, v] : from) {
    if (!into.emplace(k, v).second) {
      return where.fail(fmt::format("{} '{}' is defined twice", what, k));
    }
  }
  return ok_status();
}

std::string metadata_name(const config::node& item) {
  const auto* n = item.find("name");
  return n != nullptr && n->is_scalar() ? n->scalar() : std::string();
}

result<http_binding> parse_http_binding(const config::node& doc, std::string name) {
  http_binding b;
  b.name = std::move(name);
  const auto* spec = doc.find("spec");
  const auto* meta = spec->find("metadata");
  std::string token;
  std::string token_header = "Authorization";
  if (meta != nullptr) {
    if (!meta->is_sequence()) return meta->fail("expected a list of {name, value}");
    for (const auto& item : meta->items()) {
      OUTRIDER_TRY(expect_map(item));
      const std::string key = metadata_name(item);
      const auto* value = item.find("value");
      if (key.empty() || value == nullptr || !value->is_scalar()) {
        return item.fail("expected {name, value} with a scalar value");
      }
      const std::string& v = value->scalar();
      if (key == "url") {
        b.url = v;
      } else if (key.starts_with("header.")) {
        b.headers.push_back({key.substr(7), v});
      } else if (key == "securityToken") {
        token = v;
      } else if (key == "securityTokenHeader") {
        token_header = v;
      } else if (key == "errorIfNot2XX") {
        if (auto st = config::parse_value(v, b.error_if_not_2xx); !st)
          return value->fail(st.error().message);
      } else if (key == "MTLSRootCA" || key == "caFile") {
        b.ca_file = v;
      } else if (key == "MTLSClientCert" || key == "clientCertFile") {
        b.client_cert_file = v;
      } else if (key == "MTLSClientKey" || key == "clientKeyFile") {
        b.client_key_file = v;
      } else if (key == "insecureSkipVerify") {
        if (auto st = config::parse_value(v, b.insecure_skip_verify); !st)
          return value->fail(st.error().message);
      } else {
        return item.fail(fmt::format(
            "unknown metadata '{}' for bindings.http (url, header.<Name>, securityToken, "
            "securityTokenHeader, errorIfNot2XX, MTLSRootCA, MTLSClientCert, MTLSClientKey, "
            "insecureSkipVerify)",
            key));
      }
    }
  }
  if (b.url.empty()) return spec->fail("bindings.http needs a 'url' metadata item");
  if (!b.url.starts_with("http://") && !b.url.starts_with("https://")) {
    return spec->fail(fmt::format("url '{}' must start with http:// or https://", b.url));
  }
  if (!token.empty()) b.headers.push_back({token_header, token});
  return b;
}

result<http_endpoint> parse_http_endpoint(const config::node& doc, std::string name) {
  http_endpoint e;
  e.name = std::move(name);
  const auto* spec = doc.find("spec");
  if (spec == nullptr || !spec->is_map()) return doc.fail("HTTPEndpoint needs a 'spec' map");
  OUTRIDER_TRY(read_scalar(*spec, "baseUrl", e.base_url));
  if (!e.base_url.starts_with("http://") && !e.base_url.starts_with("https://")) {
    return spec->fail("HTTPEndpoint needs 'baseUrl' starting with http:// or https://");
  }
  if (const auto* headers = spec->find("headers")) {
    if (!headers->is_sequence()) return headers->fail("expected a list of {name, value}");
    for (const auto& item : headers->items()) {
      const auto* value = item.find("value");
      const std::string key = metadata_name(item);
      if (key.empty() || value == nullptr || !value->is_scalar()) {
        return item.fail("expected {name, value} with a scalar value");
      }
      e.headers.push_back({key, value->scalar()});
    }
  }
  return e;
}

result<std::string> read_file(io::file_system& fs, const std::string& path) {
  auto f = fs.open_for_read(path);
  if (!f) return f.error();
  auto size = (*f)->size();
  if (!size) return size.error();
  std::string text(*size, '\0');
  auto n = (*f)->read_at(0, std::as_writable_bytes(std::span(text.data(), text.size())));
  if (!n) return n.error();
  text.resize(*n);
  return text;
}

}  // namespace

nanoseconds retry_policy::backoff(std::uint32_t retry, double unit_random) const {
  double ns = 0;
  if (type == kind::constant) {
    return duration;
  }
  const double exponent = std::min<double>(retry > 0 ? retry - 1 : 0, max_backoff_exponent);
  ns = static_cast<double>(initial_interval.count()) * std::pow(multiplier, exponent);
  ns = std::min(ns, static_cast<double>(max_interval.count()));
  ns *= 1.0 + randomization_factor * (2.0 * unit_random - 1.0);
  return nanoseconds(static_cast<std::int64_t>(std::max(0.0, ns)));
}

bool retry_policy::retries_status(int status) const {
  if (retry_on.empty()) return status >= 500 && status != 501 && status != 505;
  return std::any_of(retry_on.begin(), retry_on.end(),
                     [&](const status_range& r) { return status >= r.low && status <= r.high; });
}

bool trip_condition::tripped(std::uint32_t consecutive, std::uint32_t total) const {
  return (what == counter::consecutive_failures ? consecutive : total) > threshold;
}

status resiliency::merge(const resiliency& other, const config::node& where) {
  OUTRIDER_TRY(merge_map(timeouts, other.timeouts, where, "timeout policy"));
  OUTRIDER_TRY(merge_map(retries, other.retries, where, "retry policy"));
  OUTRIDER_TRY(merge_map(breakers, other.breakers, where, "circuit breaker policy"));
  OUTRIDER_TRY(merge_map(apps, other.apps, where, "app target"));
  OUTRIDER_TRY(merge_map(endpoints, other.endpoints, where, "endpoint target"));
  OUTRIDER_TRY(merge_map(components, other.components, where, "component target"));
  budget = other.budget;
  return ok_status();
}

result<std::vector<status_range>> parse_status_ranges(const config::node& n) {
  std::vector<status_range> out;
  if (n.is_scalar()) {
    OUTRIDER_TRY(add_ranges(n.scalar(), n, out));
  } else if (n.is_sequence()) {
    for (const auto& item : n.items()) {
      if (!item.is_scalar()) return item.fail("expected a status code or a range like 500-599");
      OUTRIDER_TRY(add_ranges(item.scalar(), item, out));
    }
  } else {
    return n.fail("expected status codes like \"429,500-599\"");
  }
  return out;
}

result<resiliency> parse_resiliency(const config::node& doc) {
  resiliency r;
  const auto* spec = doc.find("spec");
  if (spec == nullptr) return doc.fail("a Resiliency resource needs 'spec'");
  OUTRIDER_TRY(expect_map(*spec));
  OUTRIDER_TRY(known_keys(*spec, {"policies", "targets"}));
  if (const auto* policies = spec->find("policies")) {
    OUTRIDER_TRY(expect_map(*policies));
    OUTRIDER_TRY(known_keys(*policies, {"timeouts", "retries", "circuitBreakers", "retryBudget"}));
    if (const auto* t = policies->find("timeouts")) {
      OUTRIDER_TRY(expect_map(*t));
      for (const auto& [name, v] : t->entries()) {
        nanoseconds d{};
        if (!v.is_scalar()) return v.fail("expected a duration like 5s");
        if (auto st = config::parse_value(v.scalar(), d); !st) return v.fail(st.error().message);
        if (d <= nanoseconds::zero()) return v.fail("a timeout must be positive");
        r.timeouts[name] = d;
      }
    }
    if (const auto* t = policies->find("retries")) {
      OUTRIDER_TRY(expect_map(*t));
      for (const auto& [name, v] : t->entries()) {
        auto p = parse_retry(v);
        if (!p) return p.error();
        r.retries[name] = std::move(*p);
      }
    }
    if (const auto* t = policies->find("circuitBreakers")) {
      OUTRIDER_TRY(expect_map(*t));
      for (const auto& [name, v] : t->entries()) {
        auto b = parse_breaker(v);
        if (!b) return b.error();
        r.breakers[name] = *b;
      }
    }
    if (const auto* b = policies->find("retryBudget")) {
      OUTRIDER_TRY(expect_map(*b));
      OUTRIDER_TRY(known_keys(*b, {"budgetPercent", "minRetryConcurrency"}));
      OUTRIDER_TRY(read_scalar(*b, "budgetPercent", r.budget.budget_percent));
      OUTRIDER_TRY(read_scalar(*b, "minRetryConcurrency", r.budget.min_retry_concurrency));
      if (r.budget.budget_percent < 0 || r.budget.budget_percent > 100) {
        return b->find("budgetPercent")->fail("expected a percentage from 0 to 100");
      }
    }
  }
  if (const auto* targets = spec->find("targets")) {
    OUTRIDER_TRY(expect_map(*targets));
    OUTRIDER_TRY(known_keys(*targets, {"apps", "endpoints", "components", "actors"}));
    if (const auto* t = targets->find("apps")) OUTRIDER_TRY(parse_targets(*t, r, false, r.apps));
    if (const auto* t = targets->find("endpoints"))
      OUTRIDER_TRY(parse_targets(*t, r, false, r.endpoints));
    if (const auto* t = targets->find("components"))
      OUTRIDER_TRY(parse_targets(*t, r, true, r.components));
  }
  return r;
}

status add_resource(const config::node& doc, resources& out, std::string* skipped) {
  auto skip = [&](std::string why) {
    if (skipped != nullptr) *skipped = std::move(why);
    return ok_status();
  };
  if (doc.is_null()) return skip("empty document");
  OUTRIDER_TRY(expect_map(doc));
  std::string kind;
  OUTRIDER_TRY(read_scalar(doc, "kind", kind));
  std::string name;
  if (const auto* meta = doc.find("metadata"); meta != nullptr && meta->is_map()) {
    OUTRIDER_TRY(read_scalar(*meta, "name", name));
  }
  if (kind == "Resiliency") {
    auto r = parse_resiliency(doc);
    if (!r) return r.error();
    return out.policies.merge(*r, doc);
  }
  if (kind != "Component" && kind != "HTTPEndpoint") return skip("kind '" + kind + "'");
  if (name.empty()) return doc.fail(fmt::format("a {} needs metadata.name", kind));
  if (kind == "HTTPEndpoint") {
    auto e = parse_http_endpoint(doc, name);
    if (!e) return e.error();
    out.endpoints.push_back(std::move(*e));
    return ok_status();
  }
  const auto* spec = doc.find("spec");
  if (spec == nullptr || !spec->is_map()) return doc.fail("a Component needs a 'spec' map");
  std::string type;
  OUTRIDER_TRY(read_scalar(*spec, "type", type));
  if (type != "bindings.http") return skip("component type '" + type + "'");
  auto b = parse_http_binding(doc, name);
  if (!b) return b.error();
  out.bindings.push_back(std::move(*b));
  return ok_status();
}

result<resources> load_resources(const std::vector<std::string>& dirs) {
  auto& fs = io::posix_file_system();
  resources out;
  for (const auto& dir : dirs) {
    auto names = fs.list_dir(dir);
    if (!names) {
      return error(names.error().code,
                   fmt::format("resources path '{}': {}", dir, names.error().message));
    }
    std::sort(names->begin(), names->end());
    for (const auto& file_name : *names) {
      if (!file_name.ends_with(".yaml") && !file_name.ends_with(".yml")) continue;
      const std::string path = dir + "/" + file_name;
      auto text = read_file(fs, path);
      if (!text) return text.error();
      // Documents separated by "---" lines; earlier lines become blank so
      // error positions stay right.
      std::size_t start = 0;
      std::size_t line_start = 0;
      std::size_t lines_before = 0;
      auto parse_part = [&](std::size_t end) -> status {
        std::string part(lines_before, '\n');
        part.append(*text, start, end - start);
        auto doc = config::parse_yaml(part, path);
        if (!doc) return doc.error();
        return add_resource(*doc, out);
      };
      std::size_t line_no = 0;
      while (line_start <= text->size()) {
        auto nl = text->find('\n', line_start);
        auto line_end = nl == std::string::npos ? text->size() : nl;
        std::string_view line(text->data() + line_start, line_end - line_start);
        if (trim(line) == "---" || (line.starts_with("--- ") && trim(line.substr(4)).empty())) {
          OUTRIDER_TRY(parse_part(line_start));
          start = line_end;
          lines_before = line_no;
        }
        ++line_no;
        if (nl == std::string::npos) break;
        line_start = nl + 1;
      }
      OUTRIDER_TRY(parse_part(text->size()));
    }
  }
  return out;
}

}  // namespace outrider::ambassador
