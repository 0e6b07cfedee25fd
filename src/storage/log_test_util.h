// Helpers shared by the log tests (test-only header; not part of the library).
#pragma once

#include <cstdint>
#include <gtest/gtest.h>
#include <vector>

#include "storage/log.h"

namespace outrider::storage::test {

// Deterministic payload for record `i`: its size varies from 0 to `max_size`.
inline std::vector<std::byte> payload_for(std::uint64_t i, std::size_t max_size = 300) {
  const std::size_t size = static_cast<std::size_t>((i * 7919) % (max_size + 1));
  std::vector<std::byte> out(size);
  for (std::size_t k = 0; k < size; ++k) out[k] = static_cast<std::byte>((i * 131 + k * 17) & 0xff);
  return out;
}

inline std::uint8_t type_for(std::uint64_t i) {
  return static_cast<std::uint8_t>(i % 251);
}

struct appended {
  position pos;
  std::uint64_t index;
};

// Every record from begin() to end(), or fails the test.
inline std::vector<record> read_all(const log& lg) {
  std::vector<record> out;
  auto rd = lg.read_from(lg.begin());
  EXPECT_TRUE(rd.ok()) << rd.error().message;
  if (!rd.ok()) return out;
  for (;;) {
    auto next = rd->next();
    EXPECT_TRUE(next.ok()) << next.error().message;
    if (!next.ok() || !next->has_value()) break;
    out.push_back(std::move(**next));
  }
  return out;
}

// Checks that `got` are exactly the records `want` (by index) in order, at their positions.
inline void expect_records(const std::vector<record>& got, const std::vector<appended>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].pos, want[i].pos) << "record " << i;
    ASSERT_EQ(got[i].type, type_for(want[i].index)) << "record " << i;
    ASSERT_EQ(got[i].payload, payload_for(want[i].index)) << "record " << i;
  }
}

}  // namespace outrider::storage::test
