// The spectrogram-masking U-Net.
//
// Input: compressed noisy magnitudes [B, 1, n_bins, T] (TensorFrontEnd::features of the noisy
// STFT). Output: a mask in [0, mask_max] of the same shape, multiplied with the noisy complex STFT;
// the front end's inverse gives the waveform (the noisy phase is kept).
//
//   input_norm -> enc_1 .. enc_L            Conv2d, kernel (kernel_freq x kernel_time),
//                                           stride 2 over frequency only: n_bins -> ~n_bins/2^L
//              -> bottleneck               residual Conv2d (1 x bottleneck_kernel_time), dilated
//                                           in time (long temporal context at low cost)
//              -> dec_L .. dec_1           ConvTranspose2d (kernel_freq x 1), stride 2 over
//                                           frequency, each fed decoder + encoder output (skip)
//              -> head                     1x1 Conv2d over [dec_1, input] -> sigmoid * mask_max
//
// Cost sits at low frequency resolution: the first layer already halves the bins and has one
// input channel, and the full-resolution output is a transposed convolution plus a 1x1 head.
// (A U-Net with full-resolution convolutions over 257 bins ran at RTF 0.1 on one core; this
// layout is several times cheaper for the same widths.)
//
// Time: no pooling or striding over time. With `causal`, every time convolution looks only at
// the current and past frames; the optional look-ahead delays the output by lookahead_frames
// (the mask of frame t is produced from frames <= t + lookahead). A causal model streams through
// the same forward(): a UNetState carries each layer's last input frames, which replace the zero
// padding, so feeding a signal in pieces gives what feeding it whole gives.
//
// Module names ("input_norm", "enc1", "bott1", "dec1", "head", ...) are checkpoint keys.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace denoise {

struct UNetOptions {
  std::vector<int> channels = {16, 24, 32, 48};  // encoder widths; each level halves the bins
  int kernel_freq = 3;                           // odd
  int kernel_time = 2;                           // encoder time kernel
  int bottleneck_kernel_time = 3;
  std::vector<int> bottleneck_dilations = {1, 2, 4, 8, 16};
  bool causal = true;
  int lookahead_frames = 0;  // causal models only
  double mask_max = 1.0;

  // Throws denoise::Error for out-of-range values.
  void validate() const;
  // Frames before / after a frame that its mask depends on.
  int past_frames() const;
  int future_frames() const;
  bool operator==(const UNetOptions& o) const;
  bool operator!=(const UNetOptions& o) const { return !(*this == o); }
};
// Every key written; reading is strict (missing or unknown keys are errors).
void to_json(nlohmann::json& j, const UNetOptions& o);
void from_json(const nlohmann::json& j, UNetOptions& o);

// Per-stream memory of a causal U-Net: the last input frames of each time convolution. Empty
// (undefined tensors) means silence before the stream, i.e. the zero padding of a whole-signal
// pass. reset() starts a new stream.
struct UNetState {
  std::vector<torch::Tensor> caches;
  void reset() { caches.clear(); }
};

// What `conv` (stride (2, 1), kernel (K, 1), padding (pad, 0), output bins f_out) computes on x
// [B, in, F, T], as one ordinary convolution and an interleave (unet.cpp says why). The decoder
// calls it instead of conv->forward().
torch::Tensor upsample_freq(const torch::nn::ConvTranspose2d& conv, const torch::Tensor& x,
                            int64_t pad, int64_t f_out);

class UNetImpl : public torch::nn::Module {
 public:
  UNetImpl(const UNetOptions& options, int n_bins);

  // features [B, 1, n_bins, T] -> mask [B, 1, n_bins, T]. With a state (causal models only) the
  // time padding comes from and goes to the state: consecutive calls continue one stream.
  // Look-ahead is not applied here (see mask()).
  torch::Tensor forward(const torch::Tensor& features, UNetState* state = nullptr);

  // Whole-signal mask with the look-ahead applied: frame t's mask from frames <= t + lookahead.
  torch::Tensor mask(const torch::Tensor& features);

  const UNetOptions& options() const { return options_; }
  int n_bins() const { return n_bins_; }
  int64_t parameter_count() const;

 private:
  torch::Tensor pad_time(const torch::Tensor& x, int past, int future, UNetState* state,
                         size_t& cache_index);

  UNetOptions options_;
  int n_bins_;
  std::vector<int> sizes_;  // bins at each level: sizes_[0] = n_bins
  torch::nn::BatchNorm2d input_norm_{nullptr};
  std::vector<torch::nn::Conv2d> enc_;
  std::vector<torch::nn::BatchNorm2d> enc_norm_;
  std::vector<torch::nn::Conv2d> bott_;
  std::vector<torch::nn::BatchNorm2d> bott_norm_;
  std::vector<torch::nn::ConvTranspose2d> dec_;
  std::vector<torch::nn::BatchNorm2d> dec_norm_;
  torch::nn::Conv2d head_{nullptr};
};
TORCH_MODULE(UNet);

}  // namespace denoise
