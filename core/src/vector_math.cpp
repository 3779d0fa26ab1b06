#include "vector_math.h"

#include <algorithm>
#include <cmath>

namespace denoise::vec {

void power_to_db(const float* power, float* db, int64_t n, float floor_power) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) db[i] = 10.f * std::log10(std::max(power[i], floor_power));
}

void magnitude(const std::complex<float>* x, float* magnitude, int64_t n) {
  const float* re_im = reinterpret_cast<const float*>(x);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float re = re_im[2 * i], im = re_im[2 * i + 1];
    magnitude[i] = std::sqrt(re * re + im * im);
  }
}

void soft_gate(const float* mag, const float* floor, float* out, int64_t n, float n_mult,
               float slope) {
  constexpr float kTiny = 1e-30f;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float s = std::max(floor[i], kTiny);
    const float ratio = (mag[i] - s) / s;
    out[i] = 1.f / (1.f + std::exp(-(ratio - n_mult) * slope));
  }
}

}  // namespace denoise::vec
