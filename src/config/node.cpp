#include "config/node.h"

#include <fmt/core.h>
#include <fstream>
#include <sstream>
#include <yaml-cpp/yaml.h>

namespace outrider::config {
namespace {

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

result<node> convert(const YAML::Node& y, const std::string& file, const std::string& path) {
  mark m{file, y.Mark().line + 1, y.Mark().column + 1};
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return node(node::kind::null, m, path);
    case YAML::NodeType::Scalar: {
      node n(node::kind::scalar, m, path);
      n.set_scalar(y.Scalar());
      return n;
    }
    case YAML::NodeType::Sequence: {
      node n(node::kind::sequence, m, path);
      std::size_t i = 0;
      for (const auto& item : y) {
        auto child = convert(item, file, fmt::format("{}[{}]", path, i++));
        if (!child) return child;
        n.add_item(std::move(*child));
      }
      return n;
    }
    case YAML::NodeType::Map: {
      node n(node::kind::map, m, path);
      for (const auto& kv : y) {
        if (!kv.first.IsScalar()) {
          return node(node::kind::null,
                      mark{file, kv.first.Mark().line + 1, kv.first.Mark().column + 1}, path)
              .fail("map keys must be plain strings");
        }
        const auto& key = kv.first.Scalar();
        if (n.find(key) != nullptr) {
          return node(node::kind::null,
                      mark{file, kv.first.Mark().line + 1, kv.first.Mark().column + 1},
                      child_path(path, key))
              .fail("duplicate key");
        }
        auto child = convert(kv.second, file, child_path(path, key));
        if (!child) return child;
        // Errors about an entry point at its key (where a reader looks for it).
        child->set_where(mark{file, kv.first.Mark().line + 1, kv.first.Mark().column + 1});
        n.add_entry(key, std::move(*child));
      }
      return n;
    }
  }
  return node(node::kind::null, m, path);
}

}  // namespace

const node* node::find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

error node::fail(std::string_view message) const {
  std::string where;
  if (!where_.file.empty()) where = where_.file + ":";
  if (where_.line > 0) where += fmt::format("{}:{}:", where_.line, where_.column);
  if (!where.empty()) where += " ";
  if (!path_.empty()) where += fmt::format("key '{}': ", path_);
  return error(errc::config_invalid, where + std::string(message));
}

result<node> parse_yaml(std::string_view text, std::string_view file_name) {
  std::string file(file_name);
  try {
    auto doc = YAML::Load(std::string(text));
    return convert(doc, file, "");
  } catch (const YAML::Exception& e) {
    return error(errc::config_invalid,
                 fmt::format("{}{}:{}: invalid YAML: {}", file.empty() ? "" : file + ":",
                             e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

result<node> load_yaml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return error(errc::not_found, fmt::format("cannot open configuration file '{}'", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad())
    return error(errc::io_error, fmt::format("cannot read configuration file '{}'", path));
  return parse_yaml(text.str(), path);
}

}  // namespace outrider::config
