#include "analysis/detail/stats.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

namespace outrider::analysis::detail {
namespace {

constexpr std::int64_t http_accepted = 202;
constexpr std::int64_t http_no_content = 204;

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

// The HTTP method of a span: its attribute, else the first word of its name.
std::string_view method_of(const tracing::span& s) {
  for (auto key : {"http.request.method", "http.method"}) {
    if (const auto* v = s.attribute(key);
        v != nullptr && v->kind == tracing::attribute_value::type::string) {
      return v->string_value;
    }
  }
  std::string_view name = s.name;
  return name.substr(0, name.find(' '));
}

// The last word of an operation: "/orders.OrderService/CreateOrder" -> "CreateOrder",
// "POST /orders/{id}/cancel" -> "cancel".
std::string_view operation_word(const tracing::span& s) {
  if (const auto* v = s.attribute("rpc.method");
      v != nullptr && v->kind == tracing::attribute_value::type::string) {
    return v->string_value;
  }
  std::string_view name = s.name;
  const auto cut = name.find_last_of("/. ");
  return cut == std::string_view::npos ? name : name.substr(cut + 1);
}

// `word` starts with `verb` followed by a word boundary (end, '_', '-', or an upper-case letter).
bool starts_with_verb(std::string_view word, std::string_view verb) {
  if (word.size() < verb.size() || !iequals(word.substr(0, verb.size()), verb)) return false;
  if (word.size() == verb.size()) return true;
  const char next = word[verb.size()];
  return next == '_' || next == '-' || std::isupper(static_cast<unsigned char>(next)) != 0;
}

constexpr std::array<std::string_view, 20> command_verbs{
    "create", "update",   "delete", "remove", "cancel",  "place",    "submit",
    "send",   "reserve",  "charge", "refund", "notify",  "register", "approve",
    "reject", "complete", "set",    "add",    "publish", "process"};
constexpr std::array<std::string_view, 7> read_verbs{"get",    "list",  "find", "query",
                                                     "search", "fetch", "read"};

}  // namespace

string_table::string_table() : texts_{""} {}

name_id string_table::intern(std::string_view text) {
  if (text.empty()) return 0;
  auto it = ids_.find(std::string(text));
  if (it != ids_.end()) return it->second;
  const auto id = static_cast<name_id>(texts_.size());
  texts_.emplace_back(text);
  ids_.emplace(std::string(text), id);
  return id;
}

bool is_loopback(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return iequals(host, "localhost") || host.starts_with("127.") || host == "::1" ||
         host == "0:0:0:0:0:0:0:1";
}

name_id string_table::peer(const tracing::endpoint& e) {
  if (!e.service_name.empty()) return is_loopback(e.service_name) ? 0 : intern(e.service_name);
  std::string address = !e.ipv4.empty() ? e.ipv4 : e.ipv6;
  if (address.empty() || is_loopback(address)) return 0;
  if (e.port != 0) address += ":" + std::to_string(e.port);
  return intern(address);
}

void example_list::add(const std::string& id, std::size_t max) {
  if (ids.size() >= max || std::find(ids.begin(), ids.end(), id) != ids.end()) return;
  ids.push_back(id);
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  const std::size_t index = std::min(v.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(index), v.end());
  return v[index];
}

std::uint32_t percentile(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  const std::size_t index = std::min(v.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(index), v.end());
  return v[index];
}

std::int64_t union_length(std::vector<std::pair<std::int64_t, std::int64_t>>& intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::int64_t total = 0;
  std::int64_t open_from = 0;
  std::int64_t open_to = 0;
  bool open = false;
  for (const auto& [from, to] : intervals) {
    if (to <= from) continue;
    if (open && from <= open_to) {
      open_to = std::max(open_to, to);
      continue;
    }
    if (open) total += open_to - open_from;
    open_from = from;
    open_to = to;
    open = true;
  }
  if (open) total += open_to - open_from;
  return total;
}

std::uint32_t max_overlap(std::vector<std::pair<std::int64_t, std::int64_t>>& intervals) {
  // Ends sort before starts at the same instant: back-to-back calls do not overlap.
  std::vector<std::pair<std::int64_t, int>> points;
  points.reserve(intervals.size() * 2);
  for (const auto& [from, to] : intervals) {
    points.emplace_back(from, 1);
    points.emplace_back(std::max(from, to), -1);
  }
  std::sort(points.begin(), points.end());
  int open = 0;
  int most = 0;
  for (const auto& [at, delta] : points) {
    open += delta;
    most = std::max(most, open);
  }
  return static_cast<std::uint32_t>(most);
}

bool is_command(const tracing::span& s) {
  const auto method = method_of(s);
  for (auto m : {"POST", "PUT", "PATCH", "DELETE"}) {
    if (iequals(method, m)) return true;
  }
  for (auto m : {"GET", "HEAD", "OPTIONS"}) {
    if (iequals(method, m)) return false;
  }
  const auto word = operation_word(s);
  return std::any_of(command_verbs.begin(), command_verbs.end(),
                     [&](std::string_view verb) { return starts_with_verb(word, verb); });
}

bool is_read(const tracing::span& s) {
  const auto method = method_of(s);
  if (iequals(method, "GET") || iequals(method, "HEAD")) return true;
  const auto word = operation_word(s);
  return std::any_of(read_verbs.begin(), read_verbs.end(),
                     [&](std::string_view verb) { return starts_with_verb(word, verb); });
}

bool is_accepted_status(std::int64_t status) {
  return status == http_accepted || status == http_no_content;
}

}  // namespace outrider::analysis::detail
