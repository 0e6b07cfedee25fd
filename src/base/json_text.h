// Writing JSON text by hand on hot paths (log lines, error bodies) without a
// JSON library: string escaping per RFC 8259.
#pragma once

#include <string>
#include <string_view>

namespace outrider {

// Appends `text` as a quoted JSON string ("..."), escaping quote, backslash and
// control characters. Well-formed UTF-8 passes through; a byte that starts no
// well-formed sequence is written as U+FFFD, so the result is always valid JSON.
void append_json_string(std::string& out, std::string_view text);

// Whether `text` goes into a JSON string as it is: printable ASCII but the quote
// and the backslash (append_json_string would copy it unchanged).
bool is_plain_json_text(std::string_view text) noexcept;

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF): what a JSON string may carry. Text that is not goes as
// base64 instead of being written into a JSON string.
bool is_valid_utf8(std::string_view text);

inline std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace outrider
