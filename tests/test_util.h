// Helpers shared by the tests: signals, SI-SDR, the shared-data location.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace denoise::test {

inline std::string shared_dir() { return DENOISE_SHARED_DIR; }
inline bool have_shared() { return std::filesystem::is_directory(shared_dir() + "/reference"); }

// Scale-invariant SDR in dB (Le Roux et al. 2019), zero-mean signals.
inline double si_sdr(const std::vector<float>& reference, const std::vector<float>& estimate) {
  const size_t n = std::min(reference.size(), estimate.size());
  double mr = 0, me = 0;
  for (size_t i = 0; i < n; ++i) mr += reference[i], me += estimate[i];
  mr /= n, me /= n;
  double dot = 0, rr = 0;
  for (size_t i = 0; i < n; ++i)
    dot += (estimate[i] - me) * (reference[i] - mr),
        rr += (reference[i] - mr) * (reference[i] - mr);
  const double a = dot / rr;
  double t = 0, e = 0;
  for (size_t i = 0; i < n; ++i) {
    const double target = a * (reference[i] - mr);
    const double err = (estimate[i] - me) - target;
    t += target * target, e += err * err;
  }
  return 10.0 * std::log10(t / e);
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

inline std::vector<float> white_noise(int64_t n, double rms, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, static_cast<float>(rms));
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

// Speech-like test signal: harmonic bursts (syllables) with pauses, peak about 0.5.
inline std::vector<float> voiced_bursts(int64_t n, int rate) {
  std::vector<float> x(n, 0.f);
  const double syllable = 0.25 * rate, gap = 0.15 * rate;
  for (int64_t i = 0; i < n; ++i) {
    const double pos = std::fmod(static_cast<double>(i), syllable + gap);
    if (pos >= syllable) continue;
    const double env = std::sin(M_PI * pos / syllable);
    const double f0 = 140.0 + 30.0 * std::sin(2 * M_PI * i / (1.7 * rate));
    double v = 0;
    for (int h = 1; h <= 12; ++h) v += std::sin(2 * M_PI * f0 * h * i / rate) / h;
    x[i] = static_cast<float>(0.18 * env * v);
  }
  return x;
}

}  // namespace denoise::test
