// routing: the routing-rule expressions of Dapr subscriptions
// (`routes.rules[].match`), a small subset of CEL that covers what people
// write:
//
//   event.type == "order.created" && event.data.total > 100
//   !(event.source == "legacy") || event.data["kind"] != "test"
//
// Grammar: `||`, `&&`, `!`, parentheses; comparisons == != < <= > >= between
// field paths and literals (strings in double or single quotes with \-escapes,
// numbers, true, false, null); field paths start at `event` and continue with
// `.name` or `["name"]`. Anything else (functions, `in`, arithmetic, other
// roots) is rejected at parse time with the position of the offending text.
//
// Evaluation is over the CloudEvent as JSON. A comparison that reads a missing
// field, or compares values of different types with < <= > >=, is false (CEL
// would raise an error and the rule would not match). A bare path must be a
// boolean. Thread-safe once built (immutable).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace outrider::sidecar {

class route_expression {
 public:
  struct node;

  // Errors: invalid_argument "expression 'TEXT': at position N: WHAT".
  static result<route_expression> parse(std::string_view text);

  // True if the expression holds for `event_json` (false when it is not JSON).
  bool matches(std::string_view event_json) const;
  const std::string& text() const noexcept { return text_; }

 private:
  friend class routing_table;
  std::shared_ptr<const node> root_;
  std::string text_;
};

// The routes of one subscription: rules in order, then the default.
class routing_table {
 public:
  struct rule {
    route_expression match;
    std::string path;
  };

  routing_table() = default;
  routing_table(std::vector<rule> rules, std::string default_path)
      : rules_(std::move(rules)), default_(std::move(default_path)) {}

  // The path of the first matching rule, else the default ("" when there is
  // none: the message is not for this app, as in Dapr it is dropped).
  std::string select(std::string_view event_json) const;
  bool has_rules() const noexcept { return !rules_.empty(); }
  const std::vector<rule>& rules() const noexcept { return rules_; }
  const std::string& default_path() const noexcept { return default_; }

 private:
  std::vector<rule> rules_;
  std::string default_;
};

}  // namespace outrider::sidecar
