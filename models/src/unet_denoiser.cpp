#include "denoise/unet_denoiser.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "denoise/error.h"
#include "denoise/stream.h"

namespace fs = std::filesystem;

namespace denoise {

UNetDenoiser::UNetDenoiser(std::shared_ptr<Model> model)
    : model_(std::move(model)), tensor_front_end_(model_->metadata.front_end) {}

int UNetDenoiser::context_frames() const {
  const UNetOptions& o = model_->metadata.model;
  return std::max(o.past_frames(), o.future_frames());
}

torch::Tensor UNetDenoiser::features(const Spectrogram& noisy) const {
  // Frame-major [frames, bins] seen as the tensor front end's [1, bins, frames]. from_blob does
  // not copy and does not write.
  auto* data = const_cast<std::complex<float>*>(noisy.bins.data());
  const torch::Tensor spec =
      torch::from_blob(data, {noisy.n_frames, noisy.n_bins}, torch::kComplexFloat).t().unsqueeze(0);
  return tensor_front_end_.features(spec).unsqueeze(1);
}

void UNetDenoiser::begin_signal() {
  state_.reset();
  kept_ = torch::Tensor();
  kept_first_ = next_frame_ = 0;
}

torch::Tensor UNetDenoiser::recurrent_mask(const Spectrogram& noisy) {
  const int64_t k0 = noisy.first_frame, k1 = k0 + noisy.n_frames;
  if (k0 == 0 || k0 < kept_first_ || k0 > next_frame_) {
    begin_signal();
    kept_first_ = next_frame_ = k0;
  }
  if (k1 <= next_frame_) return kept_.narrow(3, k0 - kept_first_, k1 - k0);
  const torch::Tensor f = features(noisy);
  torch::Tensor fresh = model_->net->forward(f.narrow(3, next_frame_ - k0, k1 - next_frame_), &state_);
  torch::Tensor m =
      next_frame_ > k0
          ? torch::cat({kept_.narrow(3, k0 - kept_first_, next_frame_ - k0), fresh}, 3)
          : fresh;
  kept_ = m;
  kept_first_ = k0;
  next_frame_ = k1;
  return m;
}

void UNetDenoiser::gains(const Spectrogram& noisy, std::vector<float>& gain) {
  torch::NoGradGuard no_grad;
  const torch::Tensor mask = model_->metadata.model.recurrent()
                                 ? recurrent_mask(noisy)
                                 : model_->net->mask(features(noisy));  // [1, 1, bins, frames]
  const torch::Tensor frame_major = mask[0][0].t().contiguous();
  gain.resize(noisy.bins.size());
  std::memcpy(gain.data(), frame_major.data_ptr<float>(), gain.size() * sizeof(float));
}

namespace {

// The causal U-Net frame by frame: each call runs the network on one frame, its time
// convolutions continuing from the stream's caches (UNetState), so that the gains equal the
// whole-signal mask. The model is shared and only read.
class UNetFrameGains : public FrameGains {
 public:
  explicit UNetFrameGains(std::shared_ptr<Model> model)
      : model_(std::move(model)),
        tensor_front_end_(model_->metadata.front_end),
        frame_(torch::zeros({1, model_->metadata.front_end.n_bins(), 1}, torch::kComplexFloat)) {}
  const FrontEndConfig& front_end() const override { return model_->metadata.front_end; }
  int lookahead_frames() const override { return model_->metadata.model.lookahead_frames; }
  void reset() override { state_.reset(); }
  void process(const std::complex<float>* frame, float* gain) override {
    torch::NoGradGuard no_grad;
    const int bins = model_->metadata.front_end.n_bins();
    std::memcpy(frame_.data_ptr(), frame, sizeof(std::complex<float>) * bins);
    const torch::Tensor mask =
        model_->net->forward(tensor_front_end_.features(frame_).unsqueeze(1), &state_);
    const torch::Tensor m = mask.reshape({bins}).contiguous();
    std::memcpy(gain, m.data_ptr<float>(), sizeof(float) * bins);
  }

 private:
  std::shared_ptr<Model> model_;
  TensorFrontEnd tensor_front_end_;
  torch::Tensor frame_;  // [1, bins, 1] complex, reused
  UNetState state_;
};

}  // namespace

std::unique_ptr<FrameGains> UNetDenoiser::make_frame_gains() const {
  if (!model_->metadata.model.causal) return nullptr;
  return std::make_unique<UNetFrameGains>(model_);
}

std::shared_ptr<Model> load_model_cached(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<Model>> loaded;
  std::error_code ec;
  std::string key = fs::weakly_canonical(path, ec).string();
  if (ec) key = path;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(key);
  if (it != loaded.end()) return it->second;
  auto model = load_checkpoint(path);
  loaded[key] = model;
  return model;
}

void register_unet_method() {
  register_method("unet", [](const MethodOptions& options, int) -> std::unique_ptr<Denoiser> {
    std::string path = options.model_path.empty() ? default_model_path() : options.model_path;
    if (path.empty())
      throw Error(
          "unet: no model given (--model FILE) and no default model found (set DENOISE_MODEL "
          "or install models/pretrained/default.dnz)");
    if (options.threads > 0) torch::set_num_threads(options.threads);
    return std::make_unique<UNetDenoiser>(load_model_cached(path));
  });
}

}  // namespace denoise

// The plugin entry point (see load_model_methods in denoiser.h).
extern "C" __attribute__((visibility("default"))) void denoise_register_model_methods() {
  denoise::register_unet_method();
}
