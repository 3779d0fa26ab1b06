// The front end seen batched on tensors, for training (CPU or CUDA) and batched inference.
// Same FrontEndConfig, same window values and the same framing as FrontEnd (front_end.h); a test
// holds the two equal. Uses torch::stft/istft with center padding by zeros.
#pragma once

#include <torch/torch.h>

#include "denoise/front_end.h"

namespace denoise {

class TensorFrontEnd {
 public:
  explicit TensorFrontEnd(const FrontEndConfig& config);

  const FrontEndConfig& config() const { return config_; }

  // signal [T] or [B, T] (float) -> complex spectrogram [B, n_bins, frames] (batch kept if given).
  torch::Tensor analyze(const torch::Tensor& signal) const;
  // complex [B, n_bins, frames] -> [B, length] (the inverse of analyze for that length).
  torch::Tensor synthesize(const torch::Tensor& spec, int64_t length) const;
  // Compressed magnitude features of a complex spectrogram, per config.compression.
  torch::Tensor features(const torch::Tensor& spec) const;

  // The analysis/synthesis window on `device` ([n_fft], float).
  torch::Tensor window(const torch::Device& device) const;

 private:
  FrontEndConfig config_;
  torch::Tensor window_;  // CPU copy of FrontEnd's window
};

}  // namespace denoise
