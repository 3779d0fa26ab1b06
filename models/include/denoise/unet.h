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
// Two options make it a much cheaper network of the same shape (both off in models trained before
// them, whose files read as before):
//   * band compression (`linear_bins`, `erb_bands`): the encoder sees the first linear_bins bins
//     as they are and the rest pooled into erb_bands triangular bands equally spaced on the ERB
//     scale (Glasberg & Moore 1990), and the mask computed on that compressed axis is spread back
//     over the bins by the same triangles (each bin's gain a convex mix of its bands' gains). High
//     frequencies need no 50 Hz resolution; 161 bins become, say, 48 + 24.
//   * dual-path recurrent blocks (`dual_path_blocks`) after the convolutional bottleneck: each
//     block runs a bidirectional GRU across the frequency positions of every frame (within one
//     frame, so causal), then a unidirectional GRU along time at every frequency position, each
//     followed by a linear map, LayerNorm over channels and a residual sum (the dual-path idea of
//     DPRNN, used by GTCRN and DPCRN). The time GRU gives unbounded past context for the cost
//     of a few small matrix products per frame; its hidden state goes in UNetState.
//
// Module names ("input_norm", "enc1", "bott1", "dec1", "head", "dp1_freq_gru", ...) are
// checkpoint keys; the band matrices are buffers ("band_pool", "band_spread").
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <utility>
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
  int linear_bins = 0;       // with erb_bands > 0: bins kept at full resolution
  int erb_bands = 0;         // bands above linear_bins; 0: no band compression
  int dual_path_blocks = 0;  // recurrent blocks after the bottleneck convolutions

  // Throws denoise::Error for out-of-range values.
  void validate() const;
  // Frames before / after a frame that its mask depends on. With dual-path blocks the past is
  // unbounded (the time GRU); past_frames() then counts the convolutions' frames only.
  int past_frames() const;
  bool recurrent() const { return dual_path_blocks > 0; }
  int future_frames() const;
  bool operator==(const UNetOptions& o) const;
  bool operator!=(const UNetOptions& o) const { return !(*this == o); }
};
// Every key written; reading is strict (unknown keys are errors, and so are missing ones except
// linear_bins, erb_bands and dual_path_blocks, which files written before them lack: 0).
void to_json(nlohmann::json& j, const UNetOptions& o);
void from_json(const nlohmann::json& j, UNetOptions& o);

// Per-stream memory of a causal U-Net: the last input frames of each time convolution and the
// time GRUs' hidden states. Empty (undefined tensors) means silence before the stream, i.e. the
// zero padding and zero initial state of a whole-signal pass. reset() starts a new stream.
struct UNetState {
  std::vector<torch::Tensor> caches;
  std::vector<torch::Tensor> hidden;
  void reset() { caches.clear(), hidden.clear(); }
};

// The band matrices of `options` for n_bins bins up to nyquist_hz: pool [F', n_bins] (each row
// a normalised triangle, an average) and spread [n_bins, F'] (each row sums to 1). F' =
// linear_bins + erb_bands. Throws denoise::Error when a band would hold no bin.
std::pair<torch::Tensor, torch::Tensor> band_matrices(int linear_bins, int erb_bands, int n_bins,
                                                      double nyquist_hz);

// What `conv` (stride (2, 1), kernel (K, 1), padding (pad, 0), output bins f_out) computes on x
// [B, in, F, T], as one ordinary convolution and an interleave (unet.cpp says why). The decoder
// calls it instead of conv->forward().
torch::Tensor upsample_freq(const torch::nn::ConvTranspose2d& conv, const torch::Tensor& x,
                            int64_t pad, int64_t f_out);

class UNetImpl : public torch::nn::Module {
 public:
  // sample_rate_hz places the ERB bands (band compression only).
  UNetImpl(const UNetOptions& options, int n_bins, int sample_rate_hz = 16000);

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
  // Dual-path block i on h [B, C, F, T].
  torch::Tensor dual_path(size_t i, const torch::Tensor& h, UNetState* state);

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
  torch::Tensor band_pool_, band_spread_;  // buffers; undefined without band compression
  std::vector<torch::nn::GRU> freq_gru_, time_gru_;
  std::vector<torch::nn::Linear> freq_fc_, time_fc_;
  std::vector<torch::nn::LayerNorm> freq_norm_, time_norm_;
};
TORCH_MODULE(UNet);

}  // namespace denoise
