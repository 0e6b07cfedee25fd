#include "sidecar/routing.h"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <optional>
#include <variant>

namespace outrider::sidecar {
namespace json = boost::json;

struct route_expression::node {
  enum class kind { logical_or, logical_and, logical_not, compare, literal, path } type;
  std::string op;  // compare: "==", "!=", "<", "<=", ">", ">="
  std::vector<std::shared_ptr<const node>> children;
  json::value literal;            // literal
  std::vector<std::string> path;  // path: field names after `event`
};

namespace {

using node = route_expression::node;
using node_ptr = std::shared_ptr<const node>;

constexpr std::string_view root_name = "event";

// An event is parsed one level deeper than Boost.JSON's default (32): the sidecar puts a
// JSON body that parses at that default into `data` as written, so its envelope can be 33
// deep (the rest is margin for events from other producers). At 32, such an event went to
// the default route, whatever its rules said.
json::parse_options event_parse_options() {
  json::parse_options o;
  o.max_depth = 64;
  return o;
}

class parser {
 public:
  explicit parser(std::string_view text) : text_(text) {}

  result<node_ptr> parse() {
    auto n = parse_or();
    if (!n) return n;
    skip_space();
    if (pos_ != text_.size()) {
      return fail("unexpected '" + std::string(text_.substr(pos_, 12)) + "'");
    }
    return n;
  }

 private:
  error fail(const std::string& what) const {
    return error(errc::invalid_argument, "expression '" + std::string(text_) + "': at position " +
                                             std::to_string(pos_ + 1) + ": " + what);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(std::string_view token) {
    skip_space();
    if (text_.substr(pos_, token.size()) == token) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  static node_ptr make(node::kind k, std::vector<node_ptr> children, std::string op = {}) {
    auto n = std::make_shared<node>();
    n->type = k;
    n->children = std::move(children);
    n->op = std::move(op);
    return n;
  }

  result<node_ptr> parse_or() {
    auto left = parse_and();
    if (!left) return left;
    node_ptr l = *left;
    while (eat("||")) {
      auto right = parse_and();
      if (!right) return right;
      l = make(node::kind::logical_or, {l, *right});
    }
    return l;
  }
  result<node_ptr> parse_and() {
    auto left = parse_unary();
    if (!left) return left;
    node_ptr l = *left;
    while (eat("&&")) {
      auto right = parse_unary();
      if (!right) return right;
      l = make(node::kind::logical_and, {l, *right});
    }
    return l;
  }
  result<node_ptr> parse_unary() {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '!' && text_.substr(pos_, 2) != "!=") {
      ++pos_;
      auto inner = parse_unary();
      if (!inner) return inner;
      return make(node::kind::logical_not, {*inner});
    }
    return parse_compare();
  }
  result<node_ptr> parse_compare() {
    auto left = parse_primary();
    if (!left) return left;
    skip_space();
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (text_.substr(pos_, op.size()) == op) {
        pos_ += op.size();
        auto right = parse_primary();
        if (!right) return right;
        return make(node::kind::compare, {*left, *right}, std::string(op));
      }
    }
    return left;
  }
  result<node_ptr> parse_primary() {
    skip_space();
    if (pos_ >= text_.size()) {
      return fail("expected a value, got the end of the expression");
    }
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      auto inner = parse_or();
      if (!inner) return inner;
      if (!eat(")")) return fail("expected ')'");
      return inner;
    }
    if (c == '"' || c == '\'') {
      auto s = parse_string();
      if (!s) return s.error();
      auto n = std::make_shared<node>();
      n->type = node::kind::literal;
      n->literal = json::string(*s);
      return node_ptr(n);
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t end = pos_ + 1;
      while (end < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[end])) ||
                                    text_[end] == '.' || text_[end] == 'e' || text_[end] == 'E' ||
                                    ((text_[end] == '+' || text_[end] == '-') &&
                                     (text_[end - 1] == 'e' || text_[end - 1] == 'E')))) {
        ++end;
      }
      double v = 0;
      auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + end, v);
      if (ec != std::errc{} || ptr != text_.data() + end) {
        return fail("bad number '" + std::string(text_.substr(pos_, end - pos_)) + "'");
      }
      pos_ = end;
      auto n = std::make_shared<node>();
      n->type = node::kind::literal;
      n->literal = v;
      return node_ptr(n);
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::size_t start = pos_;
      std::string name = identifier();
      if (name == "true" || name == "false" || name == "null") {
        auto n = std::make_shared<node>();
        n->type = node::kind::literal;
        if (name != "null") n->literal = (name == "true");
        return node_ptr(n);
      }
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == '(') {
        pos_ = start;
        return fail("function calls such as '" + name + "(...)' are not supported");
      }
      if (name != root_name) {
        pos_ = start;
        return fail("unknown name '" + name + "' (field paths start with 'event')");
      }
      auto n = std::make_shared<node>();
      n->type = node::kind::path;
      while (true) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '.') {
          ++pos_;
          skip_space();
          if (pos_ >= text_.size() ||
              !(std::isalpha(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
            return fail("expected a field name after '.'");
          }
          const std::size_t field_start = pos_;
          std::string field = identifier();
          skip_space();
          if (pos_ < text_.size() && text_[pos_] == '(') {
            pos_ = field_start;
            return fail("method calls such as '." + field + "(...)' are not supported");
          }
          n->path.push_back(std::move(field));
        } else if (pos_ < text_.size() && text_[pos_] == '[') {
          ++pos_;
          skip_space();
          if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
            return fail("expected a quoted field name inside [ ]");
          }
          auto s = parse_string();
          if (!s) return s.error();
          if (!eat("]")) return fail("expected ']'");
          n->path.push_back(std::move(*s));
        } else {
          break;
        }
      }
      return node_ptr(n);
    }
    return fail("unexpected '" + std::string(1, c) + "'");
  }
  std::string identifier() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }
  result<std::string> parse_string() {
    const char quote = text_[pos_++];
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size()) break;
        const char e = text_[pos_++];
        switch (e) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case '\\':
          case '"':
          case '\'': c = e; break;
          default: --pos_; return fail(std::string("unsupported escape '\\") + e + "'");
        }
      }
      out += c;
    }
    if (pos_ >= text_.size()) {
      return fail("unterminated string");
    }
    ++pos_;
    return out;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// The value of a node: a JSON value, or nullopt for a missing field.
std::optional<json::value> value_of(const node& n, const json::value& event) {
  if (n.type == node::kind::literal) {
    return n.literal;
  }
  const json::value* cur = &event;
  for (const auto& field : n.path) {
    const auto* obj = cur->if_object();
    if (obj == nullptr) return std::nullopt;
    auto it = obj->find(field);
    if (it == obj->end()) return std::nullopt;
    cur = &it->value();
  }
  return *cur;
}

std::optional<double> number_of(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

bool evaluate(const node& n, const json::value& event);

bool compare(const node& n, const json::value& event) {
  auto a = value_of(*n.children[0], event);
  auto b = value_of(*n.children[1], event);
  if (!a || !b) return false;
  const auto na = number_of(*a);
  const auto nb = number_of(*b);
  if (n.op == "==" || n.op == "!=") {
    bool equal = (na && nb) ? *na == *nb : *a == *b;
    return n.op == "==" ? equal : !equal;
  }
  int order = 0;
  if (na && nb) {
    order = *na < *nb ? -1 : (*na > *nb ? 1 : 0);
  } else if (a->is_string() && b->is_string()) {
    auto sa = a->get_string();
    auto sb = b->get_string();
    order = sa < sb ? -1 : (sa > sb ? 1 : 0);
  } else {
    return false;
  }
  if (n.op == "<") return order < 0;
  if (n.op == "<=") return order <= 0;
  if (n.op == ">") return order > 0;
  return order >= 0;
}

bool evaluate(const node& n, const json::value& event) {
  switch (n.type) {
    case node::kind::logical_or:
      return evaluate(*n.children[0], event) || evaluate(*n.children[1], event);
    case node::kind::logical_and:
      return evaluate(*n.children[0], event) && evaluate(*n.children[1], event);
    case node::kind::logical_not: return !evaluate(*n.children[0], event);
    case node::kind::compare: return compare(n, event);
    case node::kind::literal:
    case node::kind::path: {
      auto v = value_of(n, event);
      return v && v->is_bool() && v->get_bool();
    }
  }
  return false;
}

}  // namespace

result<route_expression> route_expression::parse(std::string_view text) {
  parser p(text);
  auto root = p.parse();
  if (!root) return root.error();
  route_expression e;
  e.root_ = *root;
  e.text_ = std::string(text);
  return e;
}

bool route_expression::matches(std::string_view event_json) const {
  boost::system::error_code ec;
  json::value v = json::parse(event_json, ec, {}, event_parse_options());
  return !ec && evaluate(*root_, v);
}

std::string routing_table::select(std::string_view event_json) const {
  if (rules_.empty()) {
    return default_;
  }
  boost::system::error_code ec;
  json::value v = json::parse(event_json, ec, {}, event_parse_options());
  if (!ec) {
    for (const auto& r : rules_) {
      if (evaluate(*r.match.root_, v)) {
        return r.path;
      }
    }
  }
  return default_;
}

}  // namespace outrider::sidecar
