#include "backends/registry.h"

#include <array>

#include "backends/compiled_backends.h"

namespace outrider::backends {
namespace {

#define OUTRIDER_BACKEND(type_name, factory_fn) registration{type_name, &factory_fn},
constexpr std::array compiled_list = {
#include "backends/compiled_backends.inc"
    registration{"", nullptr},  // keeps the array non-empty when no backend is compiled in
};
#undef OUTRIDER_BACKEND

}  // namespace

std::span<const registration> compiled_backends() {
  return std::span<const registration>(compiled_list.data(), compiled_list.size() - 1);
}

result<std::unique_ptr<backend>> create(std::string_view type, const config::node& metadata,
                                        const backend_context& context) {
  std::string known;
  for (const auto& r : compiled_backends()) {
    if (r.type == type) {
      return r.make(metadata, context);
    }
    known += known.empty() ? "" : ", ";
    known += r.type;
  }
  return error(errc::config_invalid,
               "unknown pub/sub backend type '" + std::string(type) +
                   "' (compiled in: " + (known.empty() ? std::string("none") : known) + ")");
}

const std::string* find_header(const header_list& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size()) {
      bool same = true;
      for (std::size_t i = 0; i < k.size() && same; ++i) {
        auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
        same = lower(k[i]) == lower(name[i]);
      }
      if (same) {
        return &v;
      }
    }
  }
  return nullptr;
}

}  // namespace outrider::backends
