#include "base/random.h"

#include <sys/random.h>

#include <cerrno>

#include "base/assert.h"

namespace outrider {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

std::uint64_t random_source::uniform(std::uint64_t bound) {
  OUTRIDER_ASSERT(bound > 0, "uniform() needs a positive bound");
  // Lemire's nearly-divisionless method would be faster; rejection keeps it unbiased and simple.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  std::uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % bound;
}

double random_source::unit() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

xoshiro_random::xoshiro_random(std::uint64_t seed) {
  for (auto& s : state_) s = splitmix64(seed);
}

std::uint64_t xoshiro_random::next_u64() {
  const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const std::uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

void os_random_bytes(void* out, std::size_t size) {
  auto* p = static_cast<unsigned char*>(out);
  while (size > 0) {
    ssize_t n = ::getrandom(p, size, 0);
    if (n < 0) {
      OUTRIDER_ASSERT(errno == EINTR, "getrandom failed");
      continue;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

random_source& thread_random() {
  thread_local xoshiro_random generator = [] {
    std::uint64_t seed;
    os_random_bytes(&seed, sizeof(seed));
    return xoshiro_random(seed);
  }();
  return generator;
}

}  // namespace outrider
