#include "denoise/spectral_subtract.h"

#include <algorithm>
#include <cmath>

#include "denoise/error.h"

namespace denoise {

SpectralSubtraction::SpectralSubtraction(const SubtractOptions& options, int sample_rate_hz)
    : options_(options) {
  config_.sample_rate_hz = sample_rate_hz;
  config_.n_fft = options.n_fft;
  config_.hop_length = options.hop_length;
  config_.window = WindowType::kHann;
  config_.center = true;
  config_.validate();
  // Written so that NaN fails too (every comparison with NaN is false).
  if (!(options_.over_subtraction >= 0.01 && options_.over_subtraction <= 100))
    throw Error("subtract: --over-subtraction must be in [0.01, 100]");
  if (!(options_.floor >= 0 && options_.floor <= 1))
    throw Error("subtract: --floor must be in [0, 1]");
  if (!(options_.noise_seconds > 0 && options_.noise_seconds <= 1e6))
    throw Error("subtract: --noise-seconds must be in (0, 1e6]");
}

void SpectralSubtraction::set_noise(const std::vector<float>& noise) {
  FrontEnd fe(config_);
  Spectrogram spec;
  fe.analyze(noise.data(), static_cast<int64_t>(noise.size()), spec);
  if (spec.n_frames < 1) throw Error("subtract: the noise sample is empty");
  noise_power_.assign(spec.n_bins, 0.f);
  std::vector<double> sum(spec.n_bins, 0.0);
  for (int64_t t = 0; t < spec.n_frames; ++t)
    for (int f = 0; f < spec.n_bins; ++f) sum[f] += power(spec.frame(t)[f]);
  for (int f = 0; f < spec.n_bins; ++f)
    noise_power_[f] = static_cast<float>(sum[f] / spec.n_frames);
}

void SpectralSubtraction::gains(const Spectrogram& noisy, std::vector<float>& gain) {
  if (noise_power_.empty()) throw Error("subtract: no noise profile was set");
  const int bins = noisy.n_bins;
  const float alpha = static_cast<float>(options_.over_subtraction);
  const float floor_sq = static_cast<float>(options_.floor * options_.floor);
  gain.resize(noisy.bins.size());
  for (int64_t t = 0; t < noisy.n_frames; ++t) {
    const auto* x = noisy.frame(t);
    float* g = gain.data() + t * bins;
    for (int f = 0; f < bins; ++f) {
      const float p = power(x[f]);
      const float keep = p > 0 ? 1.f - alpha * noise_power_[f] / p : 0.f;
      g[f] = std::sqrt(std::max(keep, floor_sq));
    }
  }
}

}  // namespace denoise
