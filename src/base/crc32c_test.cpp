#include "base/crc32c.h"

#include <gtest/gtest.h>
#include <string_view>
#include <vector>

namespace outrider {
namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Check values from RFC 3720 (iSCSI) appendix B.4 and the common "123456789" check.
TEST(crc32c, published_check_values) {
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xe3069283U);
  EXPECT_EQ(crc32c_extend_portable(0, as_bytes("123456789")), 0xe3069283U);
  EXPECT_EQ(crc32c({}), 0U);

  std::vector<std::byte> zeros(32, std::byte{0});
  EXPECT_EQ(crc32c(zeros), 0x8a9136aaU);
  std::vector<std::byte> ones(32, std::byte{0xff});
  EXPECT_EQ(crc32c(ones), 0x62a8ab43U);
  std::vector<std::byte> ascending(32);
  for (std::size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<std::byte>(i);
  EXPECT_EQ(crc32c(ascending), 0x46dd794eU);
  std::vector<std::byte> descending(32);
  for (std::size_t i = 0; i < descending.size(); ++i)
    descending[i] = static_cast<std::byte>(31 - i);
  EXPECT_EQ(crc32c(descending), 0x113fdb5cU);
}

TEST(crc32c, hardware_and_portable_agree_on_every_length_and_alignment) {
  std::vector<std::byte> data(300);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 131 + 7);
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len = 0; start + len <= data.size(); len += 13) {
      const auto part = std::span<const std::byte>(data).subspan(start, len);
      ASSERT_EQ(crc32c(part), crc32c_extend_portable(0, part)) << start << " " << len;
    }
  }
}

TEST(crc32c, extend_equals_the_crc_of_the_concatenation) {
  const auto all = as_bytes("hello, durable world");
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    EXPECT_EQ(crc32c_extend(crc32c(all.first(cut)), all.subspan(cut)), crc32c(all));
  }
}

TEST(crc32c, mask_round_trips_and_changes_the_value) {
  for (std::uint32_t crc : {0U, 1U, 0xe3069283U, 0xffffffffU}) {
    EXPECT_EQ(crc32c_unmask(crc32c_mask(crc)), crc);
    EXPECT_NE(crc32c_mask(crc), crc);
    EXPECT_NE(crc32c_mask(crc32c_mask(crc)), crc32c_mask(crc));
  }
}

}  // namespace
}  // namespace outrider
