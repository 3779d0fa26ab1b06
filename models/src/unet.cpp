#include "denoise/unet.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

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
  if (erb_bands < 0 || erb_bands > 256)
    fail("erb_bands must be 0-256, got " + std::to_string(erb_bands));
  if (linear_bins < 0 || linear_bins > 4096)
    fail("linear_bins must be 0-4096, got " + std::to_string(linear_bins));
  if (erb_bands == 0 && linear_bins != 0)
    fail("linear_bins applies with erb_bands > 0 (band compression) only");
  if (dual_path_blocks < 0 || dual_path_blocks > 8)
    fail("dual_path_blocks must be 0-8, got " + std::to_string(dual_path_blocks));
  if (dual_path_blocks > 0 && !causal)
    fail("dual-path blocks are causal (a forward GRU over time): set causal");
  if (dual_path_blocks > 0 && lookahead_frames != 0)
    fail("dual-path blocks do not take a look-ahead yet (lookahead_frames must be 0)");
  if (dual_path_blocks > 0 && channels.back() % 2 != 0)
    fail("dual-path blocks need an even last channel width (two GRU directions), got " +
         std::to_string(channels.back()));
}

namespace {
double erb_number(double hz) { return 21.4 * std::log10(1.0 + 0.00437 * hz); }
}  // namespace

std::pair<torch::Tensor, torch::Tensor> band_matrices(int linear_bins, int erb_bands, int n_bins,
                                                      double nyquist_hz) {
  if (linear_bins + erb_bands > n_bins || linear_bins < 1)
    throw Error("U-Net: band compression needs 1 <= linear_bins and linear_bins + erb_bands <= " +
                std::to_string(n_bins) + " bins, got " + std::to_string(linear_bins) + " + " +
                std::to_string(erb_bands));
  const int f_out = linear_bins + erb_bands;
  torch::Tensor spread = torch::zeros({n_bins, f_out});
  auto s = spread.accessor<float, 2>();
  for (int k = 0; k < linear_bins; ++k) s[k][k] = 1.f;
  // Band centres equally spaced in ERB number from the first pooled bin to the Nyquist bin;
  // between two centres a bin's weight goes linearly from one to the other (a partition of one).
  auto erb_of_bin = [&](int k) { return erb_number(nyquist_hz * k / (n_bins - 1)); };
  const double lo = erb_of_bin(linear_bins), hi = erb_of_bin(n_bins - 1);
  for (int k = linear_bins; k < n_bins; ++k) {
    if (erb_bands == 1) {
      s[k][linear_bins] = 1.f;
      continue;
    }
    const double pos = (erb_of_bin(k) - lo) / (hi - lo) * (erb_bands - 1);
    const int j = std::min(erb_bands - 2, static_cast<int>(std::floor(pos)));
    const double w = pos - j;
    s[k][linear_bins + j] = static_cast<float>(1.0 - w);
    s[k][linear_bins + j + 1] = static_cast<float>(w);
  }
  const torch::Tensor mass = spread.sum(0);  // [f_out]
  for (int j = 0; j < erb_bands; ++j)
    if (mass[linear_bins + j].item<float>() <= 1e-3f)
      throw Error("U-Net: " + std::to_string(erb_bands) + " ERB bands above bin " +
                  std::to_string(linear_bins) + " of " + std::to_string(n_bins) +
                  " leave band " + std::to_string(j + 1) + " without a bin; use fewer bands");
  const torch::Tensor pool = (spread / mass.unsqueeze(0)).t().contiguous();
  return {pool, spread};
}

namespace {
// Frames of padding before (and after) a time convolution of kernel k and dilation d.
int pad_past(int k, int d, bool causal) { return causal ? (k - 1) * d : ((k - 1) * d + 1) / 2; }
int pad_future(int k, int d, bool causal) { return causal ? 0 : (k - 1) * d / 2; }
}  // namespace

// ConvTranspose2d with stride (2, 1), kernel (K, 1), padding (P, 0) and output padding, computed as
// one ordinary convolution with 2 x out channels followed by interleaving (the polyphase form
// of a strided transposed convolution: output bin 2m + r only meets the kernel taps k with
// k = r + P (mod 2)). Same result up to rounding, but LibTorch 1.13 runs ordinary convolutions
// through oneDNN, while its transposed ones take the slow im2col path (a third of a training
// step, forward and backward, before this). Weights stay the module's, so checkpoints do not
// change.
torch::Tensor upsample_freq(const torch::nn::ConvTranspose2d& conv, const torch::Tensor& x,
                            int64_t pad, int64_t f_out) {
  const torch::Tensor& w = conv->weight;  // [in, out, K, 1]
  const int64_t k_size = w.size(2), f_in = x.size(2);
  const int64_t m_out = (f_out + 1) / 2;
  // Phase r: y_r[m] = sum_k x[i] w[k] over i = (2m + r + pad - k) / 2, i.e. a correlation
  // z[m] = sum_q x[m + q] v_r[q] over offsets q = (r + pad - k) / 2.
  int64_t lo = 0, hi = 0;
  bool first = true;
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t k = 0; k < k_size; ++k)
      if ((r + pad - k) % 2 == 0) {
        const int64_t q = (r + pad - k) / 2;
        lo = first ? q : std::min(lo, q);
        hi = first ? q : std::max(hi, q);
        first = false;
      }
  const int64_t taps = hi - lo + 1;
  const torch::Tensor wt = w.transpose(0, 1);  // [out, in, K, 1]
  std::vector<torch::Tensor> phases;
  for (int64_t r = 0; r < 2; ++r) {
    std::vector<torch::Tensor> column(static_cast<size_t>(taps));
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t k = r + pad - 2 * (lo + t);  // the tap that offset lo + t meets
      column[t] =
          (k >= 0 && k < k_size) ? wt.narrow(2, k, 1) : torch::zeros_like(wt.narrow(2, 0, 1));
    }
    phases.push_back(torch::cat(column, 2));
  }
  const torch::Tensor weight = torch::cat(phases, 0);  // [2 out, in, taps, 1]
  const torch::Tensor bias = conv->bias.defined() ? conv->bias.repeat({2}) : torch::Tensor();
  // z[m] reads x[m + lo .. m + hi] for m in [0, m_out): pad (or crop) the bins to match.
  const torch::Tensor padded =
      torch::constant_pad_nd(x, {0, 0, -lo, m_out - 1 + hi - (f_in - 1)}, 0);
  const torch::Tensor z = torch::conv2d(padded, weight, bias);  // [B, 2 out, m_out, T]
  const int64_t b = x.size(0), c = w.size(1), t = x.size(3);
  return z.view({b, 2, c, m_out, t})
      .permute({0, 2, 3, 1, 4})
      .reshape({b, c, 2 * m_out, t})
      .narrow(2, 0, f_out);
}

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
         lookahead_frames == o.lookahead_frames && mask_max == o.mask_max &&
         linear_bins == o.linear_bins && erb_bands == o.erb_bands &&
         dual_path_blocks == o.dual_path_blocks;
}

void to_json(nlohmann::json& j, const UNetOptions& o) {
  j = nlohmann::json{{"channels", o.channels},
                     {"kernel_freq", o.kernel_freq},
                     {"kernel_time", o.kernel_time},
                     {"bottleneck_kernel_time", o.bottleneck_kernel_time},
                     {"bottleneck_dilations", o.bottleneck_dilations},
                     {"causal", o.causal},
                     {"lookahead_frames", o.lookahead_frames},
                     {"mask_max", o.mask_max},
                     {"linear_bins", o.linear_bins},
                     {"erb_bands", o.erb_bands},
                     {"dual_path_blocks", o.dual_path_blocks}};
}

void from_json(const nlohmann::json& j, UNetOptions& o) {
  // Files written before band compression and dual-path blocks lack their keys: 0 (off).
  nlohmann::json known = UNetOptions{};
  if (j.is_object())
    for (const char* key : {"linear_bins", "erb_bands", "dual_path_blocks"})
      if (!j.contains(key)) known.erase(key);
  require_same_keys(j, known, "U-Net options");
  try {
    o = UNetOptions{};
    j.at("channels").get_to(o.channels);
    j.at("kernel_freq").get_to(o.kernel_freq);
    j.at("kernel_time").get_to(o.kernel_time);
    j.at("bottleneck_kernel_time").get_to(o.bottleneck_kernel_time);
    j.at("bottleneck_dilations").get_to(o.bottleneck_dilations);
    j.at("causal").get_to(o.causal);
    j.at("lookahead_frames").get_to(o.lookahead_frames);
    j.at("mask_max").get_to(o.mask_max);
    if (j.contains("linear_bins")) j.at("linear_bins").get_to(o.linear_bins);
    if (j.contains("erb_bands")) j.at("erb_bands").get_to(o.erb_bands);
    if (j.contains("dual_path_blocks")) j.at("dual_path_blocks").get_to(o.dual_path_blocks);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("U-Net options: ") + e.what());
  }
}

UNetImpl::UNetImpl(const UNetOptions& options, int n_bins, int sample_rate_hz)
    : options_(options), n_bins_(n_bins) {
  options_.validate();
  if (n_bins < 9)
    throw Error("U-Net: need at least 9 frequency bins, got " + std::to_string(n_bins));
  namespace nn = torch::nn;
  const int kf = options_.kernel_freq, pf = kf / 2;
  const int levels = static_cast<int>(options_.channels.size());
  if (options_.erb_bands > 0) {
    auto [pool, spread] =
        band_matrices(options_.linear_bins, options_.erb_bands, n_bins, sample_rate_hz / 2.0);
    band_pool_ = register_buffer("band_pool", pool);
    band_spread_ = register_buffer("band_spread", spread);
  }
  const int f_net = options_.erb_bands > 0 ? options_.linear_bins + options_.erb_bands : n_bins;
  sizes_.push_back(f_net);
  for (int l = 0; l < levels; ++l) {
    // Conv over frequency with stride 2 and padding kf/2: s -> (s - 1) / 2 + 1.
    sizes_.push_back((sizes_.back() - 1) / 2 + 1);
  }
  if (sizes_.back() < 2)
    throw Error("U-Net: " + std::to_string(levels) + " levels leave fewer than 2 of " +
                std::to_string(f_net) + " bins; use fewer channels entries");

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
  for (int i = 0; i < options_.dual_path_blocks; ++i) {
    const std::string id = "dp" + std::to_string(i + 1);
    freq_gru_.push_back(register_module(
        id + "_freq_gru",
        nn::GRU(nn::GRUOptions(deep, deep / 2).batch_first(true).bidirectional(true))));
    freq_fc_.push_back(register_module(id + "_freq_fc", nn::Linear(deep, deep)));
    freq_norm_.push_back(register_module(
        id + "_freq_norm", nn::LayerNorm(nn::LayerNormOptions({static_cast<int64_t>(deep)}))));
    time_gru_.push_back(
        register_module(id + "_time_gru", nn::GRU(nn::GRUOptions(deep, deep).batch_first(true))));
    time_fc_.push_back(register_module(id + "_time_fc", nn::Linear(deep, deep)));
    time_norm_.push_back(register_module(
        id + "_time_norm", nn::LayerNorm(nn::LayerNormOptions({static_cast<int64_t>(deep)}))));
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
  const torch::Tensor pooled =
      band_pool_.defined()
          ? torch::matmul(band_pool_, features.squeeze(1)).unsqueeze(1)  // [B, 1, F', T]
          : features;
  const torch::Tensor x = input_norm_->forward(pooled);
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
  for (size_t i = 0; i < freq_gru_.size(); ++i) h = dual_path(i, h, state);
  for (size_t i = 0; i < dec_.size(); ++i) {
    const torch::Tensor& skip = skips[skips.size() - 1 - i];
    h = torch::elu(dec_norm_[i]->forward(
        upsample_freq(dec_[i], h + skip, options_.kernel_freq / 2, sizes_[dec_.size() - 1 - i])));
  }
  // The 1x1 head over [h, x] as a matrix product: oneDNN's backward of a one-channel 1x1
  // convolution took longer than the rest of the decoder.
  const int64_t b = h.size(0), c = h.size(1), f = h.size(2), t = h.size(3);
  const torch::Tensor w = head_->weight.view({1, c + 1});
  torch::Tensor y =
      torch::matmul(w.narrow(1, 0, c).unsqueeze(0), h.reshape({b, c, f * t})).view({b, 1, f, t}) +
      w.narrow(1, c, 1).view({1, 1, 1, 1}) * x + head_->bias.view({1, 1, 1, 1});
  torch::Tensor m = torch::sigmoid(y);
  if (options_.mask_max != 1.0) m = m * options_.mask_max;
  // Back to every bin: each bin's gain a convex mix of its bands' gains.
  if (band_spread_.defined()) m = torch::matmul(band_spread_, m.squeeze(1)).unsqueeze(1);
  return m;
}

torch::Tensor UNetImpl::dual_path(size_t i, const torch::Tensor& h, UNetState* state) {
  const int64_t b = h.size(0), c = h.size(1), f = h.size(2), t = h.size(3);
  // Across frequency, within each frame: [B*T, F, C].
  torch::Tensor z = h.permute({0, 3, 2, 1}).reshape({b * t, f, c});
  torch::Tensor y = std::get<0>(freq_gru_[i]->forward(z));
  z = z + freq_norm_[i]->forward(freq_fc_[i]->forward(y));
  // Along time, at each frequency position: [B*F, T, C], the hidden state carried by `state`.
  z = z.view({b, t, f, c}).permute({0, 2, 1, 3}).reshape({b * f, t, c});
  torch::Tensor h0;
  if (state) {
    if (state->hidden.size() <= i) state->hidden.resize(i + 1);
    h0 = state->hidden[i];
  }
  if (!h0.defined()) h0 = torch::zeros({1, b * f, c}, z.options());
  auto [out, h_n] = time_gru_[i]->forward(z, h0);
  if (state) state->hidden[i] = h_n;
  z = z + time_norm_[i]->forward(time_fc_[i]->forward(out));
  return z.view({b, f, t, c}).permute({0, 3, 1, 2});  // [B, C, F, T]
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
