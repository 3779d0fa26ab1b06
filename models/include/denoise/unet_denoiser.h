// The trained U-Net as a Denoiser: the `unet` method of infer and evaluate.
//
// It analyses with the front end stored in the model (the file pipeline resamples to the model's
// rate and back), computes features with TensorFrontEnd::features -- the function training uses
// -- and returns the network's mask as the gains. Weights are shared: every channel and file
// denoised with one model file uses one loaded Model.
#pragma once

#include <memory>
#include <string>

#include "denoise/checkpoint.h"
#include "denoise/denoiser.h"
#include "denoise/front_end_torch.h"

namespace denoise {

class UNetDenoiser : public Denoiser {
 public:
  explicit UNetDenoiser(std::shared_ptr<Model> model);

  std::string name() const override { return "unet"; }
  const FrontEndConfig& front_end() const override { return model_->metadata.front_end; }
  // The network's receptive field (past or look-ahead, whichever is longer).
  int context_frames() const override;
  void begin_signal() override;
  void gains(const Spectrogram& noisy, std::vector<float>& gain) override;
  // Causal models stream (live mode); nullptr for a non-causal one.
  std::unique_ptr<FrameGains> make_frame_gains() const override;

  // The network's input for `noisy`: [1, 1, n_bins, frames].
  torch::Tensor features(const Spectrogram& noisy) const;
  const Model& model() const { return *model_; }

 private:
  // A recurrent model (dual-path blocks) follows the signal through the blocks of a pass: frames
  // computed for the previous block are taken from there, new ones continue the stream state, so
  // blocks give what the whole signal gives. A block starting at frame 0 or out of order starts
  // a new stream.
  torch::Tensor recurrent_mask(const Spectrogram& noisy);

  std::shared_ptr<Model> model_;
  TensorFrontEnd tensor_front_end_;
  UNetState state_;
  torch::Tensor kept_;  // masks of frames [kept_first_, next_frame_)
  int64_t kept_first_ = 0, next_frame_ = 0;
};

// Loads a model once per path per process (later calls share it). Throws denoise::Error.
std::shared_ptr<Model> load_model_cached(const std::string& path);

// Registers the `unet` method with make_denoiser (MethodOptions::model_path, or
// default_model_path()). Programs linking this library call it at start-up; others load the
// library as a plugin (load_model_methods() in denoiser.h), which calls it through
// denoise_register_model_methods().
void register_unet_method();

}  // namespace denoise
