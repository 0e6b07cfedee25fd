#include "http/detail/wire.h"

#include <gtest/gtest.h>
#include <string>

namespace outrider::http::detail {
namespace {

TEST(wire, has_crlf_finds_cr_and_lf_at_every_position_of_every_length) {
  for (std::size_t n = 0; n <= 40; ++n) {
    const std::string clean(n, 'a');
    EXPECT_FALSE(has_crlf(clean)) << n;
    for (std::size_t at = 0; at < n; ++at) {
      for (const char c : {'\r', '\n'}) {
        std::string s = clean;
        s[at] = c;
        EXPECT_TRUE(has_crlf(s)) << "length " << n << " at " << at;
      }
    }
  }
}

TEST(wire, has_crlf_ignores_neighbouring_and_high_bytes) {
  // Bytes one off CR (0x0d) and LF (0x0a), and the same with the high bit set,
  // must not look like them (a borrow across bytes in the word-wise check would).
  std::string s;
  for (int c : {0x09, 0x0b, 0x0c, 0x0e, 0x8a, 0x8d, 0xff, 0x00, 0x01, 0x1a, 0x2d, 0x80}) {
    s.push_back(static_cast<char>(c));
  }
  for (std::size_t n = 0; n <= s.size(); ++n) {
    EXPECT_FALSE(has_crlf(std::string_view(s).substr(0, n))) << n;
    EXPECT_FALSE(has_crlf(std::string_view(s).substr(s.size() - n))) << n;
  }
}

TEST(wire, writer_fills_exactly_what_was_counted_after_what_was_there) {
  std::string out = "kept|";
  const std::size_t bytes = 3 + 1 + field_bytes("Name", "value");
  wire_writer w(out, bytes);
  w.put("abc");
  EXPECT_FALSE(w.full());
  w.put(' ');
  w.field("Name", "value");
  EXPECT_TRUE(w.full());
  EXPECT_EQ(out, "kept|abc Name: value\r\n");
}

}  // namespace
}  // namespace outrider::http::detail
