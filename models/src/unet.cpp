#include "denoise/unet.h"

#include <algorithm>
#include <string>

#include "denoise/error.h"
#include "denoise/json_strict.h"

namespace denoise {

void UNetOptions::validate() const {
  auto fail = [](const std::string& what) { throw Error("U-Net options: " + what); };
  if (channels.empty() || channels.size() > 8)
    fail("channels must list 1 to 8 encoder widths, got " + std::to_string(channels.size()));
  for (int c : channels)
    if (c < 1 || c > 1024) fail("channel width " + std::to_string(c) + " outside 1-1024");
  if (kernel_freq < 1 || kernel_freq % 2 == 0 || kernel_freq > 15)
    fail("kernel_freq must be odd and 1-15, got " + std::to_string(kernel_freq));
  if (kernel_time < 1 || kernel_time > 15)
    fail("kernel_time must be 1-15, got " + std::to_string(kernel_time));
  if (bottleneck_kernel_time < 1 || bottleneck_kernel_time > 15)
    fail("bottleneck_kernel_time must be 1-15, got " + std::to_string(bottleneck_kernel_time));
  for (int d : bottleneck_dilations)
    if (d < 1 || d > 1024) fail("bottleneck dilation " + std::to_string(d) + " outside 1-1024");
  if (lookahead_frames < 0 || lookahead_frames > 64)
    fail("lookahead_frames must be 0-64, got " + std::to_string(lookahead_frames));
  if (!causal && lookahead_frames != 0)
    fail("lookahead_frames applies to causal models only (a non-causal model sees the future)");
  if (!(mask_max > 0 && mask_max <= 4))
    fail("mask_max must be in (0, 4], got " + std::to_string(mask_max));
}

namespace {
// Frames of padding before (and after) a time convolution of kernel k and dilation d.
int pad_past(int k, int d, bool causal) { return causal ? (k - 1) * d : ((k - 1) * d + 1) / 2; }
int pad_future(int k, int d, bool causal) { return causal ? 0 : (k - 1) * d / 2; }
}  // namespace

int UNetOptions::past_frames() const {
  int n = static_cast<int>(channels.size()) * pad_past(kernel_time, 1, causal);
  for (int d : bottleneck_dilations) n += pad_past(bottleneck_kernel_time, d, causal);
  // The look-ahead shifts the network's window forward: frame t's mask is its output at t + L.
  return causal ? std::max(0, n - lookahead_frames) : n;
}

int UNetOptions::future_frames() const {
  if (causal) return lookahead_frames;
  int n = static_cast<int>(channels.size()) * pad_future(kernel_time, 1, false);
  for (int d : bottleneck_dilations) n += pad_future(bottleneck_kernel_time, d, false);
  return n;
}

bool UNetOptions::operator==(const UNetOptions& o) const {
  return channels == o.channels && kernel_freq == o.kernel_freq && kernel_time == o.kernel_time &&
         bottleneck_kernel_time == o.bottleneck_kernel_time &&
         bottleneck_dilations == o.bottleneck_dilations && causal == o.causal &&
         lookahead_frames == o.lookahead_frames && mask_max == o.mask_max;
}

void to_json(nlohmann::json& j, const UNetOptions& o) {
  j = nlohmann::json{{"channels", o.channels},
                     {"kernel_freq", o.kernel_freq},
                     {"kernel_time", o.kernel_time},
                     {"bottleneck_kernel_time", o.bottleneck_kernel_time},
                     {"bottleneck_dilations", o.bottleneck_dilations},
                     {"causal", o.causal},
                     {"lookahead_frames", o.lookahead_frames},
                     {"mask_max", o.mask_max}};
}

void from_json(const nlohmann::json& j, UNetOptions& o) {
  require_same_keys(j, UNetOptions{}, "U-Net options");
  try {
    j.at("channels").get_to(o.channels);
    j.at("kernel_freq").get_to(o.kernel_freq);
    j.at("kernel_time").get_to(o.kernel_time);
    j.at("bottleneck_kernel_time").get_to(o.bottleneck_kernel_time);
    j.at("bottleneck_dilations").get_to(o.bottleneck_dilations);
    j.at("causal").get_to(o.causal);
    j.at("lookahead_frames").get_to(o.lookahead_frames);
    j.at("mask_max").get_to(o.mask_max);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("U-Net options: ") + e.what());
  }
}

UNetImpl::UNetImpl(const UNetOptions& options, int n_bins) : options_(options), n_bins_(n_bins) {
  options_.validate();
  if (n_bins < 9)
    throw Error("U-Net: need at least 9 frequency bins, got " + std::to_string(n_bins));
  namespace nn = torch::nn;
  const int kf = options_.kernel_freq, pf = kf / 2;
  const int levels = static_cast<int>(options_.channels.size());
  sizes_.push_back(n_bins);
  for (int l = 0; l < levels; ++l) {
    // Conv over frequency with stride 2 and padding kf/2: s -> (s - 1) / 2 + 1.
    sizes_.push_back((sizes_.back() - 1) / 2 + 1);
  }
  if (sizes_.back() < 2)
    throw Error("U-Net: " + std::to_string(levels) + " levels leave fewer than 2 of " +
                std::to_string(n_bins) + " bins; use fewer channels entries");

  input_norm_ = register_module("input_norm", nn::BatchNorm2d(1));
  int in = 1;
  for (int l = 0; l < levels; ++l) {
    const int out = options_.channels[l];
    const std::string id = std::to_string(l + 1);
    enc_.push_back(register_module("enc" + id,
                                   nn::Conv2d(nn::Conv2dOptions(in, out, {kf, options_.kernel_time})
                                                  .stride({2, 1})
                                                  .padding({pf, 0}))));
    enc_norm_.push_back(register_module("enc" + id + "_norm", nn::BatchNorm2d(out)));
    in = out;
  }
  const int deep = options_.channels.back();
  for (size_t i = 0; i < options_.bottleneck_dilations.size(); ++i) {
    const std::string id = std::to_string(i + 1);
    const int d = options_.bottleneck_dilations[i];
    bott_.push_back(register_module(
        "bott" + id,
        nn::Conv2d(
            nn::Conv2dOptions(deep, deep, {1, options_.bottleneck_kernel_time}).dilation({1, d}))));
    bott_norm_.push_back(register_module("bott" + id + "_norm", nn::BatchNorm2d(deep)));
  }
  // Decoder level l maps level l's bins back to level l-1's; output_padding makes the size exact
  // for even sizes (the transposed convolution alone gives 2s - 1).
  for (int l = levels; l >= 1; --l) {
    const int c_in = options_.channels[l - 1];
    const int c_out = options_.channels[l >= 2 ? l - 2 : 0];
    const int out_pad = sizes_[l - 1] - (2 * sizes_[l] - 1);
    const std::string id = std::to_string(l);
    dec_.push_back(register_module(
        "dec" + id, nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c_in, c_out, {kf, 1})
                                            .stride({2, 1})
                                            .padding({pf, 0})
                                            .output_padding({out_pad, 0}))));
    dec_norm_.push_back(register_module("dec" + id + "_norm", nn::BatchNorm2d(c_out)));
  }
  head_ =
      register_module("head", nn::Conv2d(nn::Conv2dOptions(options_.channels[0] + 1, 1, {1, 1})));
}

int64_t UNetImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor UNetImpl::pad_time(const torch::Tensor& x, int past, int future, UNetState* state,
                                 size_t& cache_index) {
  if (!state) {
    if (past == 0 && future == 0) return x;
    return torch::constant_pad_nd(x, {past, future}, 0);
  }
  // Streaming (causal): the past comes from the previous call's last frames.
  const size_t i = cache_index++;
  if (past == 0) return x;
  if (state->caches.size() <= i) state->caches.resize(i + 1);
  torch::Tensor& cache = state->caches[i];
  if (!cache.defined()) cache = torch::zeros({x.size(0), x.size(1), x.size(2), past}, x.options());
  torch::Tensor y = torch::cat({cache, x}, 3);
  cache = y.narrow(3, y.size(3) - past, past).clone();
  return y;
}

torch::Tensor UNetImpl::forward(const torch::Tensor& features, UNetState* state) {
  TORCH_CHECK(features.dim() == 4 && features.size(1) == 1 && features.size(2) == n_bins_,
              "U-Net input must be [B, 1, ", n_bins_, ", T], got ", features.sizes());
  TORCH_CHECK(!state || options_.causal, "U-Net: streaming needs a causal model");
  const bool causal = options_.causal;
  size_t cache_index = 0;
  const torch::Tensor x = input_norm_->forward(features);
  std::vector<torch::Tensor> skips;
  torch::Tensor h = x;
  const int kt = options_.kernel_time;
  for (size_t l = 0; l < enc_.size(); ++l) {
    h = pad_time(h, pad_past(kt, 1, causal), pad_future(kt, 1, causal), state, cache_index);
    h = torch::elu(enc_norm_[l]->forward(enc_[l]->forward(h)));
    skips.push_back(h);
  }
  const int kb = options_.bottleneck_kernel_time;
  for (size_t i = 0; i < bott_.size(); ++i) {
    const int d = options_.bottleneck_dilations[i];
    torch::Tensor r =
        pad_time(h, pad_past(kb, d, causal), pad_future(kb, d, causal), state, cache_index);
    h = h + torch::elu(bott_norm_[i]->forward(bott_[i]->forward(r)));
  }
  for (size_t i = 0; i < dec_.size(); ++i) {
    const torch::Tensor& skip = skips[skips.size() - 1 - i];
    h = torch::elu(dec_norm_[i]->forward(dec_[i]->forward(h + skip)));
  }
  torch::Tensor m = torch::sigmoid(head_->forward(torch::cat({h, x}, 1)));
  return options_.mask_max == 1.0 ? m : m * options_.mask_max;
}

torch::Tensor UNetImpl::mask(const torch::Tensor& features) {
  const int la = options_.causal ? options_.lookahead_frames : 0;
  if (la == 0) return forward(features);
  // Frame t's mask is the network's output at t + la: run on the features followed by la
  // frames of silence (zero features) and drop the first la outputs.
  torch::Tensor padded = torch::constant_pad_nd(features, {0, la}, 0);
  return forward(padded).narrow(3, la, features.size(3));
}

}  // namespace denoise
