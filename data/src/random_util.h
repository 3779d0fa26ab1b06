// Random draws for the data library. The standard distributions (uniform_real_distribution,
// normal_distribution, ...) are implementation-defined, so the same seed would give other batches
// with another standard library; these take bits straight from mt19937_64 (fully specified).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace denoise::detail {

// Uniform in [0, 1) with 53 random bits.
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}

// Uniform in [0, n); n > 0.
inline int64_t uniform_index(std::mt19937_64& rng, int64_t n) {
  const auto i = static_cast<int64_t>(uniform01(rng) * static_cast<double>(n));
  return i < n ? i : n - 1;
}

// Standard normal samples (Box-Muller, both outputs of each pair used).
inline void fill_gaussian(float* out, int64_t n, std::mt19937_64& rng) {
  constexpr double kTwoPi = 6.283185307179586;
  for (int64_t i = 0; i < n; i += 2) {
    const double u1 = 1.0 - uniform01(rng);  // (0, 1]: log stays finite
    const double u2 = uniform01(rng);
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(r * std::cos(kTwoPi * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(kTwoPi * u2));
  }
}

inline double rms(const float* x, int64_t n) {
  if (n <= 0) return 0;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s / static_cast<double>(n));
}
inline double rms(const std::vector<float>& x) {
  return rms(x.data(), static_cast<int64_t>(x.size()));
}

}  // namespace denoise::detail
