// Spectral subtraction (Boll 1979) with over-subtraction and a spectral floor (Berouti, Schwartz &
// Makhoul 1979): gain = sqrt(max(1 - alpha * N^2 / |X|^2, beta^2)), where N^2 is the noise clip's
// mean power per frequency. The floor keeps residual noise smooth instead of "musical".
#pragma once

#include "denoise/denoiser.h"

namespace denoise {

class SpectralSubtraction : public Denoiser {
 public:
  SpectralSubtraction(const SubtractOptions& options, int sample_rate_hz);
  std::string name() const override { return "subtract"; }
  const FrontEndConfig& front_end() const override { return config_; }
  int context_frames() const override { return 0; }
  bool uses_noise_profile() const override { return true; }
  double default_noise_seconds() const override { return options_.noise_seconds; }
  void set_noise(const std::vector<float>& noise) override;
  void gains(const Spectrogram& noisy, std::vector<float>& gain) override;

 private:
  SubtractOptions options_;
  FrontEndConfig config_;
  std::vector<float> noise_power_;
};

}  // namespace denoise
