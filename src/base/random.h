// Randomness behind an interface, so that jitter and ids are reproducible in tests.
#pragma once

#include <array>
#include <cstdint>

namespace outrider {

class random_source {
 public:
  virtual ~random_source() = default;
  virtual std::uint64_t next_u64() = 0;

  // Uniform in [0, bound). REQUIRES: bound > 0.
  std::uint64_t uniform(std::uint64_t bound);
  // Uniform in [0.0, 1.0).
  double unit();
};

// xoshiro256** (Blackman and Vigna): fast, small state, good statistical
// quality; not for secrets. Seeded explicitly (tests) or from the OS.
class xoshiro_random final : public random_source {
 public:
  explicit xoshiro_random(std::uint64_t seed);
  std::uint64_t next_u64() override;

 private:
  std::array<std::uint64_t, 4> state_{};
};

// A per-thread generator seeded from the operating system (getrandom). Use for
// ids and jitter in production code; thread-safe because each thread has its own.
random_source& thread_random();

// Fills `out` with bytes from the operating system's CSPRNG (getrandom).
void os_random_bytes(void* out, std::size_t size);

}  // namespace outrider
