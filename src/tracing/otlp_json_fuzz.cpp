// libFuzzer target: the OTLP/JSON decoder must never crash, assert or leak on
// any input, and what it accepts must encode to Zipkin and native JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tracing/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = outrider::tracing::decode_otlp_json(body);
  if (!decoded) return 0;
  std::string out;
  for (const auto& s : decoded->spans) {
    outrider::tracing::append_zipkin_json(out, s);
    outrider::tracing::append_native_json(out, s);
  }
  return 0;
}
