// The OTLP/JSON shape of an attribute list ([{"key":..,"value":{AnyValue}}]),
// shared by json_encode.cpp (spans) and recorded_json.cpp (records).
#pragma once

#include <string>

#include "tracing/span.h"

namespace outrider::tracing::detail {

void append_otlp_attributes(std::string& out, const attribute_list& attrs);

}  // namespace outrider::tracing::detail
