// Element-wise kernels of the classical methods, in their own translation unit compiled with
// -ffast-math so that GCC vectorises logf/expf through glibc's libmvec. Inputs must be finite
// (the audio reader rejects NaN/Inf). Internal to denoise_core.
#pragma once

#include <complex>
#include <cstdint>

namespace denoise::vec {

// db[i] = 10 log10(max(power[i], floor_power)).
void power_to_db(const float* power, float* db, int64_t n, float floor_power);
// magnitude[i] = |x[i]|.
void magnitude(const std::complex<float>* x, float* magnitude, int64_t n);
// out[i] = 1 / (1 + exp(-slope * ((mag[i] - floor[i]) / floor[i] - n_mult))), floor clamped to
// a tiny positive value so silent bins give a ratio of 0 instead of 0/0.
void soft_gate(const float* mag, const float* floor, float* out, int64_t n, float n_mult,
               float slope);

}  // namespace denoise::vec
