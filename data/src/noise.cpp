// Generated noises for augmentation (dataset.h: generate_noise).
#include <algorithm>
#include <cmath>

#include "denoise/dataset.h"
#include "denoise/error.h"
#include "random_util.h"

namespace denoise {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Pink (1/f) noise: Paul Kellet's "refined" filter bank of six one-pole low-passes on white noise
// (music-dsp archive, "pink noise filter"), within 0.05 dB of -3 dB/octave above fs / 4800.
void pink(std::vector<float>& x, int64_t warmup, std::mt19937_64& rng) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> white(n + warmup);
  detail::fill_gaussian(white.data(), n + warmup, rng);
  double b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
  for (int64_t i = 0; i < n + warmup; ++i) {
    const double w = white[i];
    b0 = 0.99886 * b0 + w * 0.0555179;
    b1 = 0.99332 * b1 + w * 0.0750759;
    b2 = 0.96900 * b2 + w * 0.1538520;
    b3 = 0.86650 * b3 + w * 0.3104856;
    b4 = 0.55000 * b4 + w * 0.5329522;
    b5 = -0.7616 * b5 - w * 0.0168980;
    const double y = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
    b6 = w * 0.115926;
    if (i >= warmup) x[i - warmup] = static_cast<float>(y);
  }
}

// Brown (1/f^2) noise: white noise through a leaky integrator. The leak (a one-pole low-pass at
// 20 Hz instead of a pure integrator) keeps it from wandering off; the mean is removed after.
void brown(std::vector<float>& x, int rate_hz, std::mt19937_64& rng) {
  const int64_t n = static_cast<int64_t>(x.size());
  const double a = std::exp(-2 * kPi * 20.0 / rate_hz);
  const auto warmup = static_cast<int64_t>(std::ceil(8.0 / (1.0 - a)));
  std::vector<float> white(n + warmup);
  detail::fill_gaussian(white.data(), n + warmup, rng);
  double y = 0, sum = 0;
  for (int64_t i = 0; i < n + warmup; ++i) {
    y = a * y + white[i];
    if (i >= warmup) x[i - warmup] = static_cast<float>(y), sum += y;
  }
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  for (auto& v : x) v -= mean;
}

// A harmonic series on `fundamental_hz` up to `top_hz`, `n` samples: harmonic k at amplitude
// decay^(k-1) times a random 0.3-1, each at a random phase. `power` gets its mean power.
std::vector<double> harmonic_series(int64_t n, int rate_hz, double fundamental_hz, double decay,
                                    double top_hz, std::mt19937_64& rng, double& power) {
  std::vector<double> amplitude, step, phase;
  double a = 1;
  for (int k = 1; k * fundamental_hz <= top_hz; ++k, a *= decay) {
    amplitude.push_back(a * detail::uniform(rng, 0.3, 1.0));
    step.push_back(2 * kPi * k * fundamental_hz / rate_hz);
    phase.push_back(detail::uniform(rng, 0, 2 * kPi));
  }
  std::vector<double> x(n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (size_t k = 0; k < amplitude.size(); ++k)
      x[i] += amplitude[k] * std::sin(step[k] * static_cast<double>(i) + phase[k]);
  power = 0;
  for (double v : amplitude) power += 0.5 * v * v;
  return x;
}

// Mains hum: 50 or 60 Hz (slightly off, as real grids are) with harmonics up to 1 kHz whose
// amplitudes fall off at a random rate, plus a little white noise (-26 dB) so it is never a pure
// line spectrum.
void hum(std::vector<float>& x, int rate_hz, std::mt19937_64& rng) {
  const int64_t n = static_cast<int64_t>(x.size());
  const double mains =
      (detail::uniform01(rng) < 0.5 ? 50.0 : 60.0) + detail::uniform(rng, -0.2, 0.2);
  const double decay = detail::uniform(rng, 0.55, 0.9);
  const double top = std::min(1000.0, 0.45 * rate_hz);
  double power = 0;
  const std::vector<double> lines = harmonic_series(n, rate_hz, mains, decay, top, rng, power);
  std::vector<float> white(n);
  detail::fill_gaussian(white.data(), n, rng);
  const double noise_rms = 0.05 * std::sqrt(power);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(lines[i] + noise_rms * white[i]);
}

// Band-limited noise: white noise through two identical RBJ band-pass biquads (Audio EQ Cookbook,
// constant 0 dB peak gain), centre log-uniform in 200-6000 Hz, Q 0.7-4.
void band(std::vector<float>& x, int rate_hz, std::mt19937_64& rng) {
  const int64_t n = static_cast<int64_t>(x.size());
  const double top = std::min(6000.0, 0.4 * rate_hz);
  const double centre = 200.0 * std::pow(top / 200.0, detail::uniform01(rng));
  const double q = detail::uniform(rng, 0.7, 4.0);
  const double w0 = 2 * kPi * centre / rate_hz;
  const double alpha = std::sin(w0) / (2 * q);
  const double a0 = 1 + alpha;
  const double b0 = alpha / a0, b2 = -alpha / a0;
  const double a1 = -2 * std::cos(w0) / a0, a2 = (1 - alpha) / a0;
  // Enough samples for the filter's ringing (bandwidth centre / q) to die out.
  const auto warmup = static_cast<int64_t>(std::ceil(20.0 * q * rate_hz / centre)) + 64;
  std::vector<float> white(n + warmup);
  detail::fill_gaussian(white.data(), n + warmup, rng);
  double s[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};  // x1, x2, y1, y2 per stage
  for (int64_t i = 0; i < n + warmup; ++i) {
    double v = white[i];
    for (auto& st : s) {
      const double y = b0 * v + b2 * st[1] - a1 * st[2] - a2 * st[3];
      st[1] = st[0], st[0] = v, st[3] = st[2], st[2] = y;
      v = y;
    }
    if (i >= warmup) x[i - warmup] = static_cast<float>(v);
  }
}

}  // namespace

std::vector<std::string> generated_noise_kinds() {
  return {"white", "pink", "brown", "hum", "band"};
}

std::vector<float> generate_tone(int64_t samples, int rate_hz, double fundamental_hz,
                                 std::mt19937_64& rng) {
  if (samples < 0)
    throw Error("generate_tone: samples must be >= 0 (got " + std::to_string(samples) + ")");
  if (!(fundamental_hz > 0 && fundamental_hz < 0.45 * rate_hz))
    throw Error("generate_tone: the fundamental must be within (0, " +
                std::to_string(0.45 * rate_hz) + ") Hz (got " + std::to_string(fundamental_hz) +
                ")");
  // A third are a bare sine (a test tone, a whistle); the rest a series of up to 12 harmonics
  // below 2 kHz falling off at a random rate (hum, transformer whine, motors, power supplies).
  const bool bare = detail::uniform01(rng) < 1.0 / 3.0;
  const double decay = detail::uniform(rng, 0.4, 0.9);
  const double top =
      bare ? fundamental_hz : std::min({2000.0, 12.5 * fundamental_hz, 0.45 * rate_hz});
  double power = 0;
  const std::vector<double> series =
      harmonic_series(samples, rate_hz, fundamental_hz, decay, top, rng, power);
  const double g = 1.0 / std::sqrt(power);
  std::vector<float> x(samples);
  for (int64_t i = 0; i < samples; ++i) x[i] = static_cast<float>(g * series[i]);
  return x;
}

std::vector<float> generate_noise(const std::string& kind, int64_t samples, int rate_hz,
                                  std::mt19937_64& rng) {
  if (samples < 0)
    throw Error("generate_noise: samples must be >= 0 (got " + std::to_string(samples) + ")");
  if (rate_hz < 1000)
    throw Error("generate_noise: rate_hz must be >= 1000 (got " + std::to_string(rate_hz) + ")");
  std::vector<float> x(samples, 0.f);
  if (kind == "white") {
    detail::fill_gaussian(x.data(), samples, rng);
  } else if (kind == "pink") {
    pink(x, 8192, rng);
  } else if (kind == "brown") {
    brown(x, rate_hz, rng);
  } else if (kind == "hum") {
    hum(x, rate_hz, rng);
  } else if (kind == "band") {
    band(x, rate_hz, rng);
  } else {
    throw Error("generate_noise: unknown kind '" + kind +
                "' (expected white, pink, brown, hum or band)");
  }
  if (samples == 0) return x;
  const double r = detail::rms(x);
  if (!(r > 1e-30) || !std::isfinite(r)) {
    // Cannot happen with these filters, but a NaN must never reach training.
    return generate_noise("white", samples, rate_hz, rng);
  }
  const double gain = 1.0 / r;
  for (auto& v : x) v = static_cast<float>(v * gain);
  return x;
}

}  // namespace denoise
