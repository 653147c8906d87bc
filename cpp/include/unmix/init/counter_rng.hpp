#pragma once
#include <cmath>
#include <cstdint>

namespace unmix::init {

// Counter-based random numbers: the value at (stream, row, column) is a hash
// of the seed and those coordinates. Any process can generate any row on its
// own, so factors do not depend on how rows are split across ranks, and the
// numbers are the same on every platform (unlike <random>'s distributions).
class CounterRng {
 public:
  CounterRng(std::uint64_t seed, std::uint64_t stream) : key_(mix(seed ^ mix(stream + 1))) {}

  // Uniform in [0, 1).
  double uniform(std::uint64_t row, std::uint64_t col) const {
    const std::uint64_t h = mix(mix(key_ ^ row) + col);
    return static_cast<double>(h >> 11) * 0x1.0p-53;
  }

  // Standard normal by Box-Muller on two independent uniforms.
  double normal(std::uint64_t row, std::uint64_t col) const {
    const double u1 = 1.0 - uniform(row, 2 * col);  // (0, 1]
    const double u2 = uniform(row, 2 * col + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t mix(std::uint64_t z) {  // splitmix64 finalizer
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t key_;
};

}  // namespace unmix::init
