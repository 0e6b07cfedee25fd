#include "base/errc.h"

#include <array>

#include "base/assert.h"

namespace outrider {
namespace {

constexpr std::array catalog{
#define OUTRIDER_X_ROW(id, value, status, name, retryable, meaning) \
  error_info{errc::id, name, status, retryable, meaning},
    OUTRIDER_ERROR_CATALOG(OUTRIDER_X_ROW)
#undef OUTRIDER_X_ROW
};

}  // namespace

const error_info& describe(errc code) noexcept {
  for (const auto& row : catalog) {
    if (row.code == code) {
      return row;
    }
  }
  OUTRIDER_UNREACHABLE("errc value without a catalog row");
}

std::span<const error_info> error_catalog() noexcept {
  return catalog;
}

}  // namespace outrider
