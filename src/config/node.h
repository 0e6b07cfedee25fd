// node: a configuration document as a plain tree with source positions.
//
// YAML files are parsed once (by yaml-cpp, only in node.cpp) into this tree,
// so modules read configuration without yaml-cpp in their headers and every
// error can name file, line and key: "outrider.yaml:12:5: key
// 'resiliency.retries.fast.maxRetries': expected an integer, got 'three'".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace outrider::config {

struct mark {
  std::string file;  // "" when the text did not come from a file
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based
};

class node {
 public:
  enum class kind { null, scalar, sequence, map };

  node() = default;
  node(kind k, mark m, std::string path) : type_(k), where_(std::move(m)), path_(std::move(path)) {}

  kind type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == kind::null; }
  bool is_scalar() const noexcept { return type_ == kind::scalar; }
  bool is_map() const noexcept { return type_ == kind::map; }
  bool is_sequence() const noexcept { return type_ == kind::sequence; }

  const std::string& scalar() const noexcept { return scalar_; }
  const std::vector<node>& items() const noexcept { return items_; }
  const std::vector<std::pair<std::string, node>>& entries() const noexcept { return entries_; }
  // Child of a map by key, or nullptr.
  const node* find(std::string_view key) const;

  const mark& where() const noexcept { return where_; }
  // Dotted key path from the document root: "broker.listen", "apps[2].name".
  const std::string& path() const noexcept { return path_; }

  // An error that names this node's file, line and key:
  // "FILE:LINE:COL: key 'PATH': MESSAGE".
  error fail(std::string_view message) const;

  // Builders (used by the parser and by tests).
  void set_scalar(std::string value) { scalar_ = std::move(value); }
  void add_item(node n) { items_.push_back(std::move(n)); }
  void add_entry(std::string key, node n) { entries_.emplace_back(std::move(key), std::move(n)); }
  void set_where(mark m) { where_ = std::move(m); }

 private:
  kind type_ = kind::null;
  mark where_;
  std::string path_;
  std::string scalar_;
  std::vector<node> items_;
  std::vector<std::pair<std::string, node>> entries_;
};

// Parses YAML text. Errors (config_invalid) name `file_name` and the position
// of the syntax error. Duplicate keys in a map are errors.
result<node> parse_yaml(std::string_view text, std::string_view file_name = "");
// Reads and parses a file (not_found / io_error / config_invalid).
result<node> load_yaml_file(const std::string& path);

}  // namespace outrider::config
