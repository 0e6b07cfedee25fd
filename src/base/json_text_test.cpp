#include "base/json_text.h"

#include <gtest/gtest.h>

namespace outrider {
namespace {

TEST(json_text, escapes_specials_and_controls) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c\nd\x01"), R"("a\"b\\c\nd\u0001")");
  EXPECT_EQ(json_string("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(json_string(std::string_view("\0", 1)), R"("\u0000")");
}

TEST(json_text, copies_runs_between_escapes) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("\"\""), R"("\"\"")");
  EXPECT_EQ(json_string("long run before\tand after\x1f"), R"("long run before\tand after\u001f")");
  EXPECT_EQ(json_string("\\end"), R"("\\end")");
  std::string out = "x";
  append_json_string(out, "a\rb");
  EXPECT_EQ(out, R"(x"a\rb")");
}

// Every byte value at every offset of a run long enough for the 8-bytes-a-step scan (at its
// start, inside a step, in the tail after the last whole step) is written as a byte-by-byte
// escape writes it.
TEST(json_text, every_byte_at_every_offset_matches_a_byte_by_byte_escape) {
  const auto one = [](unsigned char c) -> std::string {
    switch (c) {
      case '"': return "\\\"";
      case '\\': return "\\\\";
      case '\n': return "\\n";
      case '\r': return "\\r";
      case '\t': return "\\t";
      case '\b': return "\\b";
      case '\f': return "\\f";
      default: break;
    }
    if (c < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      return std::string("\\u00") + hex[c >> 4] + hex[c & 0xF];
    }
    if (c >= 0x80) return "\xef\xbf\xbd";  // alone, no byte >= 0x80 is UTF-8
    return std::string(1, static_cast<char>(c));
  };
  for (const std::size_t size : {1, 7, 8, 9, 16, 21}) {
    for (std::size_t at = 0; at < size; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string text(size, 'a');
        text[at] = static_cast<char>(b);
        const std::string want = "\"" + std::string(at, 'a') + one(static_cast<unsigned char>(b)) +
                                 std::string(size - at - 1, 'a') + "\"";
        ASSERT_EQ(json_string(text), want) << "byte " << b << " at " << at << " of " << size;
        ASSERT_EQ(is_plain_json_text(text), want == "\"" + text + "\"")
            << "byte " << b << " at " << at << " of " << size;
      }
    }
  }
}

TEST(json_text, bytes_that_are_not_utf8_become_the_replacement_character) {
  EXPECT_EQ(json_string("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_string("a\xff"
                        "b"),
            "\"a\xef\xbf\xbd"
            "b\"");
  EXPECT_EQ(json_string("\xc3"), "\"\xef\xbf\xbd\"");  // cut short at the end
  EXPECT_EQ(json_string("\xed\xa0\x80\""), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\\\"\"");
  EXPECT_TRUE(is_valid_utf8(json_string("\xff\xfe\x80 \xc0\xaf")));
}

TEST(json_text, valid_utf8_is_told_from_what_a_json_string_cannot_carry) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii \x01"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));                               // U+D7FF
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff\xfe"));
  EXPECT_FALSE(is_valid_utf8("\x80"));              // a continuation byte first
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong, three bytes
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("caf\xc3"));           // cut short
  EXPECT_FALSE(is_valid_utf8("\xe2\x82x"));         // a bad continuation
}

}  // namespace
}  // namespace outrider
