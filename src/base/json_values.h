// Checks of parsed JSON that code re-serializing untrusted JSON needs (CloudEvents,
// bulk publish, jobs, bindings). Header-only over Boost.JSON: for the modules that
// link Boost::json (base itself does not).
#pragma once

#include <boost/json/value.hpp>
#include <cmath>

namespace outrider {

// Whether a parsed value holds a number out of a double's range. Boost.JSON reads
// 1e400 as infinity and would write it back as `Infinity`, which is not JSON; Go's
// encoding/json (and so Dapr) rejects such a body as invalid JSON. The recursion is
// bounded by the parser's max_depth.
inline bool has_non_finite_number(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: return !std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& e : v.get_array()) {
        if (has_non_finite_number(e)) return true;
      }
      return false;
    case boost::json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (has_non_finite_number(kv.value())) return true;
      }
      return false;
    default: return false;
  }
}

}  // namespace outrider
