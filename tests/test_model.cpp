// The U-Net (receptive field, streaming), the loss, checkpoints (round trip and every way a file
// can be unusable), the unet method in the block pipeline, and short training runs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "denoise/audio_io.h"
#include "denoise/checkpoint.h"
#include "denoise/error.h"
#include "denoise/file_pipeline.h"
#include "denoise/front_end.h"
#include "denoise/loss.h"
#include "denoise/resample.h"
#include "denoise/stream.h"
#include "denoise/trainer.h"
#include "denoise/unet.h"
#include "denoise/unet_denoiser.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace denoise;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("denoise_model_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A network with random weights and non-trivial batch-norm statistics, in eval mode.
UNet random_unet(const UNetOptions& options, int n_bins, uint64_t seed) {
  torch::manual_seed(seed);
  UNet net(options, n_bins);
  torch::NoGradGuard no_grad;
  for (auto& b : net->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  net->eval();
  return net;
}

ModelMetadata small_metadata() {
  ModelMetadata m;
  m.front_end = default_model_front_end();
  m.model.channels = {8, 12, 16};
  m.model.bottleneck_dilations = {1, 2};
  return m;
}

// The cheaper layout: ERB band compression and dual-path recurrent blocks.
ModelMetadata small_recurrent_metadata() {
  ModelMetadata m = small_metadata();
  m.model.linear_bins = 24;
  m.model.erb_bands = 12;
  m.model.dual_path_blocks = 2;
  m.model.bottleneck_dilations = {1};
  return m;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// Re-seals a checkpoint after an edit (FNV-1a 64 over everything before the trailing hash), so
// that the edit is judged by the checks after the checksum.
void reseal(std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i + 8 < bytes.size(); ++i) {
    h ^= bytes[i];
    h *= 1099511628211ull;
  }
  std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
}

// Replaces the metadata JSON of a checkpoint with `edit(json)` and reseals it.
std::vector<uint8_t> edit_metadata(const std::vector<uint8_t>& bytes,
                                   const std::function<void(nlohmann::json&)>& edit) {
  uint64_t meta_len;
  std::memcpy(&meta_len, bytes.data() + 12, 8);
  nlohmann::json j = nlohmann::json::parse(bytes.begin() + 20, bytes.begin() + 20 + meta_len);
  edit(j);
  const std::string text = j.dump();
  // header (magic, version) | new length | new text | the rest (payload length, payload, hash)
  const uint64_t len = text.size();
  const size_t rest = bytes.size() - 20 - meta_len;
  std::vector<uint8_t> out(20 + text.size() + rest);
  std::memcpy(out.data(), bytes.data(), 12);
  std::memcpy(out.data() + 12, &len, 8);
  std::memcpy(out.data() + 20, text.data(), text.size());
  std::memcpy(out.data() + 20 + text.size(), bytes.data() + 20 + meta_len, rest);
  reseal(out);
  return out;
}

std::string load_error(const std::string& path) {
  try {
    load_checkpoint(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The network

TEST(UNet, OptionsJsonRoundTripIsStrict) {
  UNetOptions o;
  o.channels = {4, 8};
  o.lookahead_frames = 2;
  nlohmann::json j = o;
  EXPECT_EQ(j.get<UNetOptions>(), o);
  nlohmann::json unknown = j;
  unknown["depth"] = 3;
  EXPECT_THROW(unknown.get<UNetOptions>(), Error);
  nlohmann::json missing = j;
  missing.erase("causal");
  EXPECT_THROW(missing.get<UNetOptions>(), Error);
  // Files from before band compression and dual-path blocks lack those keys: off.
  UNetOptions banded = o;
  banded.linear_bins = 20;
  banded.erb_bands = 10;
  banded.dual_path_blocks = 1;
  nlohmann::json old = banded;
  EXPECT_EQ(old.get<UNetOptions>(), banded);
  for (const char* key : {"linear_bins", "erb_bands", "dual_path_blocks"}) old.erase(key);
  EXPECT_EQ(old.get<UNetOptions>(), o);
  UNetOptions bad;
  bad.kernel_freq = 4;
  EXPECT_THROW(bad.validate(), Error);
  bad = UNetOptions{};
  bad.causal = false;
  bad.lookahead_frames = 1;
  EXPECT_THROW(bad.validate(), Error);
  bad = UNetOptions{};
  bad.dual_path_blocks = 1;
  bad.lookahead_frames = 1;
  EXPECT_THROW(bad.validate(), Error);
  bad = UNetOptions{};
  bad.linear_bins = 10;  // without erb_bands
  EXPECT_THROW(bad.validate(), Error);
  // More bands than bins to fill them: refused when the network is built.
  UNetOptions crowded;
  crowded.linear_bins = 150;
  crowded.erb_bands = 11;
  crowded.channels = {4, 8};
  EXPECT_NO_THROW(UNet(crowded, 161));
  crowded.linear_bins = 8;
  crowded.erb_bands = 160;
  EXPECT_THROW(UNet(crowded, 161), Error);
}

// The band matrices: low bins pass through, every pooled row is an average (sums to 1), every
// bin's spread row sums to 1 (its gain a convex mix), and bands widen with frequency.
TEST(UNet, BandMatricesPoolAndSpreadOnTheErbScale) {
  const auto [pool, spread] = band_matrices(48, 24, 161, 8000.0);
  ASSERT_EQ(pool.sizes(), torch::IntArrayRef({72, 161}));
  ASSERT_EQ(spread.sizes(), torch::IntArrayRef({161, 72}));
  EXPECT_TRUE(torch::allclose(pool.narrow(0, 0, 48).narrow(1, 0, 48), torch::eye(48)));
  EXPECT_TRUE(torch::allclose(pool.sum(1), torch::ones({72})));
  EXPECT_TRUE(torch::allclose(spread.sum(1), torch::ones({161})));
  EXPECT_GE(pool.min().item<float>(), 0.f);
  const torch::Tensor width = (pool.narrow(0, 48, 24) > 0).sum(1);  // bins per band
  EXPECT_LT(width[1].item<int64_t>(), width[22].item<int64_t>());
  // A flat gain stays flat; features of one level stay that level.
  EXPECT_TRUE(torch::allclose(torch::matmul(spread, torch::full({72}, 0.3)), torch::full({161}, 0.3)));
  EXPECT_TRUE(torch::allclose(torch::matmul(pool, torch::full({161}, 2.0)), torch::full({72}, 2.0)));
}

TEST(UNet, OutputShapeAndMaskBoundsForOddAndEvenBinCounts) {
  for (int bins : {161, 257, 200}) {
    UNetOptions o;
    o.channels = {4, 6, 8, 8};
    o.mask_max = 1.5;
    UNet net = random_unet(o, bins, 1);
    torch::NoGradGuard no_grad;
    const torch::Tensor m = net->mask(torch::rand({2, 1, bins, 37}));
    ASSERT_EQ(m.sizes(), torch::IntArrayRef({2, 1, bins, 37})) << bins;
    EXPECT_GE(m.min().item<float>(), 0.f);
    EXPECT_LE(m.max().item<float>(), 1.5f);
  }
}

// Changing one input frame changes exactly the outputs the options say it reaches: frames
// t0 - future .. t0 + past (the past/future of an output are the future/past of an input).
TEST(UNet, ReceptiveFieldMatchesOptions) {
  struct Case {
    bool causal;
    int lookahead;
  };
  for (const Case c : {Case{true, 0}, Case{true, 2}, Case{false, 0}}) {
    UNetOptions o;
    o.channels = {4, 8};
    o.bottleneck_dilations = {1, 2};
    o.causal = c.causal;
    o.lookahead_frames = c.lookahead;
    UNet net = random_unet(o, 33, 2);
    torch::NoGradGuard no_grad;
    const int64_t frames = 60, t0 = 30;
    const torch::Tensor x = torch::rand({1, 1, 33, frames});
    torch::Tensor y = x.clone();
    y.select(3, t0).add_(0.5);
    const torch::Tensor changed =
        (net->mask(x) - net->mask(y)).abs().amax({0, 1, 2}).gt(0);  // [frames]
    const int64_t first = t0 - o.future_frames(), last = t0 + o.past_frames();
    for (int64_t t = 0; t < frames; ++t) {
      if (t < first || t > last) {
        EXPECT_FALSE(changed[t].item<bool>()) << "frame " << t << " causal " << c.causal;
      }
    }
    EXPECT_TRUE(changed[first].item<bool>()) << "causal " << c.causal;
    EXPECT_TRUE(changed[last].item<bool>()) << "causal " << c.causal;
  }
}

// A causal model fed a signal in pieces (carrying UNetState) gives what it gives fed whole, with
// and without band compression and dual-path blocks.
TEST(UNet, StreamingInPiecesEqualsWhole) {
  for (bool recurrent : {false, true}) {
    UNetOptions o;
    o.channels = {4, 8, 8};
    o.bottleneck_dilations = {1, 2, 4};
    if (recurrent) o.linear_bins = 20, o.erb_bands = 10, o.dual_path_blocks = 2;
    UNet net = random_unet(o, 65, 3);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::rand({1, 1, 65, 50});
    const torch::Tensor whole = net->forward(x);
    ASSERT_EQ(whole.sizes(), x.sizes());
    for (int piece : {1, 7}) {
      UNetState state;
      std::vector<torch::Tensor> parts;
      for (int64_t t = 0; t < 50; t += piece)
        parts.push_back(net->forward(x.narrow(3, t, std::min<int64_t>(piece, 50 - t)), &state));
      const torch::Tensor streamed = torch::cat(parts, 3);
      EXPECT_LT((streamed - whole).abs().max().item<float>(), 1e-5f)
          << "piece " << piece << " recurrent " << recurrent;
      EXPECT_EQ(state.hidden.size(), recurrent ? 2u : 0u);
      state.reset();
      EXPECT_TRUE(state.caches.empty());
      EXPECT_TRUE(state.hidden.empty());
    }
    // Causal: a change at frame 30 leaves frames before it alone and reaches the last frame
    // (the time GRU's unbounded past).
    torch::Tensor y = x.clone();
    y.select(3, 30).add_(0.5);
    const torch::Tensor changed = (net->forward(x) - net->forward(y)).abs().amax({0, 1, 2}).gt(0);
    EXPECT_FALSE(changed.narrow(0, 0, 30).any().item<bool>()) << "recurrent " << recurrent;
    EXPECT_EQ(changed[49].item<bool>(), recurrent);
  }
}

// ---------------------------------------------------------------------------------------------
// The loss

TEST(Loss, SiSdrMatchesReferenceFormulaAndIgnoresScale) {
  const auto clean = test::voiced_bursts(16000, 16000);
  auto noise = test::white_noise(16000, 0.05, 4);
  std::vector<float> noisy(clean.size());
  for (size_t i = 0; i < clean.size(); ++i) noisy[i] = clean[i] + noise[i];
  const auto c = torch::tensor(clean).unsqueeze(0), n = torch::tensor(noisy).unsqueeze(0);
  const double expected = test::si_sdr(clean, noisy);
  EXPECT_NEAR(si_sdr_db(n, c).item<double>(), expected, 1e-3);
  EXPECT_NEAR(si_sdr_db(n * 7.0, c).item<double>(), expected, 1e-3);
}

// The compressed loss with the epsilon inside the root has finite gradients at silent bins
// (exact zeros in the estimate and the target), where x^0.15 alone has an infinite slope.
TEST(Loss, GradientsAreFiniteAtSilence) {
  const TensorFrontEnd fe(default_model_front_end());
  const torch::Tensor clean = torch::zeros({2, 8000});
  clean[0].narrow(0, 2000, 2000).normal_(0, 0.1);
  torch::Tensor mask = torch::full({2, 161, 51}, 0.5, torch::requires_grad());
  const torch::Tensor noisy = clean.clone();
  const torch::Tensor spec = fe.analyze(noisy);
  const torch::Tensor est = mask * spec;
  const LossTerms t =
      enhancement_loss(est, fe.analyze(clean), fe.synthesize(est, 8000), clean, LossOptions{});
  t.total.backward();
  EXPECT_TRUE(torch::isfinite(t.total).item<bool>());
  EXPECT_TRUE(torch::isfinite(mask.grad()).all().item<bool>());
  EXPECT_GT(mask.grad().abs().sum().item<double>(), 0.0);
}

// Removing speech costs more than leaving the same amount of noise (the asymmetric term).
TEST(Loss, PenalisesSpeechRemovedMoreThanNoiseLeft) {
  const TensorFrontEnd fe(default_model_front_end());
  const torch::Tensor clean = torch::tensor(test::voiced_bursts(16000, 16000)).unsqueeze(0);
  const torch::Tensor spec = fe.analyze(clean);
  LossOptions o;
  o.si_sdr_weight = 0;
  const auto loss_at = [&](double gain) {
    const torch::Tensor est = spec * gain;
    return enhancement_loss(est, spec, fe.synthesize(est, 16000), clean, o).total.item<double>();
  };
  EXPECT_NEAR(loss_at(1.0), 0.0, 1e-6);
  EXPECT_GT(loss_at(1.0 / 1.5), loss_at(1.5));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

TEST(Checkpoint, SaveLoadGivesBitIdenticalOutputsAndMetadata) {
  TempDir dir;
  ModelMetadata meta = small_metadata();
  meta.training = {{"steps", 12}};
  meta.validation = {{"si_sdri_db", 3.5}};
  UNet net = make_unet(meta);
  {
    torch::NoGradGuard no_grad;
    for (auto& b : net->named_buffers())
      if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.1, 0.1);
  }
  net->eval();
  save_checkpoint(dir / "m.dnz", net, meta);
  const auto loaded = load_checkpoint(dir / "m.dnz");
  EXPECT_EQ(loaded->metadata.front_end, meta.front_end);
  EXPECT_EQ(loaded->metadata.model, meta.model);
  EXPECT_EQ(loaded->metadata.training, meta.training);
  EXPECT_EQ(loaded->metadata.validation, meta.validation);
  EXPECT_FALSE(loaded->metadata.created_utc.empty());
  EXPECT_EQ(loaded->metadata.project_version, DENOISE_VERSION);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({1, 1, 161, 40});
  EXPECT_TRUE(torch::equal(net->mask(x), loaded->net->mask(x)));
  // No temporary files are left beside the model.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);
}

TEST(Checkpoint, RejectsEveryUnusableFileWithItsReason) {
  TempDir dir;
  ModelMetadata meta = small_metadata();
  UNet net = make_unet(meta);
  const std::string good = dir / "good.dnz";
  save_checkpoint(good, net, meta);
  const auto bytes = read_bytes(good);
  ASSERT_EQ(load_error(good), "");

  auto expect_error = [&](const std::string& name, const std::vector<uint8_t>& content,
                          const std::string& reason) {
    const std::string path = dir / name;
    write_bytes(path, content);
    const std::string error = load_error(path);
    EXPECT_NE(error.find(path), std::string::npos) << name << ": " << error;
    EXPECT_NE(error.find(reason), std::string::npos) << name << ": " << error;
  };
  // Truncated anywhere: in the header, the metadata, the weights, the checksum.
  for (size_t keep : {size_t{4}, size_t{30}, bytes.size() / 2, bytes.size() - 3})
    expect_error("cut" + std::to_string(keep), {bytes.begin(), bytes.begin() + keep},
                 keep < 8 ? "not a denoise model" : "truncated");
  expect_error("empty", {}, "not a denoise model");
  // One flipped bit in the weights or the metadata.
  for (size_t at : {bytes.size() - 100, size_t{40}}) {
    auto flipped = bytes;
    flipped[at] ^= 0x10;
    expect_error("flip" + std::to_string(at), flipped, "checksum");
  }
  auto longer = bytes;
  longer.push_back(0);
  expect_error("longer", longer, "corrupt");
  // Someone else's file.
  std::vector<uint8_t> wav(200, 0);
  std::memcpy(wav.data(), "RIFF\0\0\0\0WAVE", 12);
  expect_error("foreign.wav", wav, "not a denoise model");
  // A newer format version.
  auto newer = bytes;
  newer[8] = 99;
  reseal(newer);
  expect_error("newer", newer, "format version 99");
  // Metadata that does not describe these weights, or is not ours.
  expect_error("other_shape",
               edit_metadata(bytes, [](nlohmann::json& j) { j["model"]["channels"][0] = 9; }),
               "incompatible model");
  expect_error("extra_key", edit_metadata(bytes, [](nlohmann::json& j) { j["colour"] = "red"; }),
               "unknown key 'colour'");
  expect_error("no_front_end",
               edit_metadata(bytes, [](nlohmann::json& j) { j.erase("front_end"); }),
               "missing key 'front_end'");
  expect_error("bad_front_end",
               edit_metadata(bytes, [](nlohmann::json& j) { j["front_end"]["n_fft"] = 3; }),
               "n_fft");
  expect_error("missing_tensor",
               edit_metadata(bytes,
                             [](nlohmann::json& j) {
                               auto& t = j["tensors"];
                               t[0]["name"] = "renamed";
                             }),
               "incompatible model");
  EXPECT_NE(load_error(dir / "absent.dnz").find("not found"), std::string::npos);
  EXPECT_NE(load_error(dir.path.string()).find("folder"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The unet method

namespace {
std::string save_random_model(const TempDir& dir, const std::string& name, bool causal,
                              bool recurrent = false) {
  ModelMetadata meta = recurrent ? small_recurrent_metadata() : small_metadata();
  meta.model.causal = causal;
  UNet net = random_unet(meta.model, meta.front_end.n_bins(), 5);
  const std::string path = dir / name;
  save_checkpoint(path, net, meta);
  return path;
}

std::vector<float> noisy_speech(int64_t n, int rate) {
  auto x = test::voiced_bursts(n, rate);
  const auto noise = test::white_noise(n, 0.03, 9);
  for (int64_t i = 0; i < n; ++i) x[i] += noise[i];
  return x;
}
}  // namespace

// The features the trainer computes for a signal equal those inference computes for it: both go
// through TensorFrontEnd::features, on spectra from torch::stft (training) and the FFTW frame
// front end (inference), which agree within float rounding.
TEST(UNetMethod, InferenceFeaturesEqualTrainingFeatures) {
  TempDir dir;
  const auto model = load_checkpoint(save_random_model(dir, "m.dnz", true));
  UNetDenoiser denoiser(model);
  const FrontEndConfig fc = model->metadata.front_end;
  const std::vector<float> x = noisy_speech(24000, fc.sample_rate_hz);

  const TensorFrontEnd tfe(fc);
  const torch::Tensor trained = network_input(tfe, torch::tensor(x).unsqueeze(0)).features;

  FrontEnd fe(fc);
  Spectrogram spec;
  fe.analyze(x.data(), static_cast<int64_t>(x.size()), spec);
  const torch::Tensor inferred = denoiser.features(spec);
  ASSERT_EQ(trained.sizes(), inferred.sizes());
  const double scale = trained.abs().max().item<double>();
  EXPECT_LT((trained - inferred).abs().max().item<double>(), 1e-5 * scale);
}

// Long inputs are processed in blocks with the network's receptive field as context; the output
// equals whole-signal processing within 1e-4, also when the input is resampled to the model rate.
TEST(UNetMethod, BlockOutputEqualsWholeSignal) {
  TempDir dir;
  register_unet_method();
  struct Case {
    bool causal, recurrent;
  };
  for (const Case c : {Case{true, false}, Case{false, false}, Case{true, true}}) {
    const bool causal = c.causal;
    for (int rate : {16000, 22050}) {
      PipelineOptions whole;
      whole.method = "unet";
      whole.method_options.model_path = save_random_model(
          dir, "m" + std::to_string(causal) + std::to_string(c.recurrent) + ".dnz", causal,
          c.recurrent);
      PipelineOptions blocks = whole;
      blocks.block_samples = 1000;  // at the model rate: many blocks of ~6 frames
      const std::vector<std::vector<float>> in = {noisy_speech(3 * rate, rate)};
      const auto a = denoise_channels(in, rate, whole);
      const auto b = denoise_channels(in, rate, blocks);
      ASSERT_EQ(a[0].size(), in[0].size());
      ASSERT_EQ(b[0].size(), in[0].size());
      EXPECT_LT(test::max_abs_diff(a[0], b[0]), 1e-4)
          << "causal " << causal << " recurrent " << c.recurrent << " rate " << rate;
    }
  }
}

// The streaming engine (live mode) on the causal U-Net: hop by hop, its output equals the
// offline causal path shifted by the engine's delay, with and without look-ahead; reset() starts
// over; a non-causal model is refused.
TEST(UNetMethod, StreamEngineEqualsOfflineCausalPath) {
  TempDir dir;
  register_unet_method();
  for (int lookahead : {0, 2, -1}) {  // -1: the recurrent layout (no look-ahead)
    ModelMetadata meta = lookahead < 0 ? small_recurrent_metadata() : small_metadata();
    meta.model.causal = true;
    meta.model.lookahead_frames = std::max(0, lookahead);
    const std::string path = dir / ("la" + std::to_string(lookahead) + ".dnz");
    UNet net = random_unet(meta.model, meta.front_end.n_bins(), 7);
    save_checkpoint(path, net, meta);
    MethodOptions mo;
    mo.model_path = path;
    const int rate = meta.front_end.sample_rate_hz;
    auto engine = make_stream_engine("unet", mo, rate);
    const int hop = engine->hop();
    EXPECT_EQ(engine->latency_samples(), meta.front_end.n_fft + std::max(0, lookahead) * hop);

    const std::vector<float> x = noisy_speech(2 * rate, rate);
    PipelineOptions po;
    po.method = "unet";
    po.method_options = mo;
    const std::vector<float> offline = denoise_channels({x}, rate, po)[0];

    const int delay = engine->delay_samples();
    auto run = [&] {
      std::vector<float> in = x, out;
      in.resize(((x.size() + delay) / hop + 1) * hop, 0.f);
      std::vector<float> hop_out(hop);
      for (size_t i = 0; i < in.size(); i += hop) {
        engine->process_hop(in.data() + i, hop_out.data());
        out.insert(out.end(), hop_out.begin(), hop_out.end());
      }
      return std::vector<float>(out.begin() + delay, out.begin() + delay + x.size());
    };
    const std::vector<float> streamed = run();
    // Up to the last window and look-ahead, where the offline path stops at the signal's end.
    const size_t tail = engine->latency_samples();
    EXPECT_LT(test::max_abs_diff(std::vector<float>(streamed.begin(), streamed.end() - tail),
                                 std::vector<float>(offline.begin(), offline.end() - tail)),
              1e-4)
        << "look-ahead " << lookahead;
    engine->reset();
    EXPECT_EQ(run(), streamed) << "after reset()";
  }
  MethodOptions non_causal;
  non_causal.model_path = save_random_model(dir, "nc.dnz", false);
  EXPECT_THROW(make_stream_engine("unet", non_causal, 16000), Error);
}

// The file path (streamed decoding, streaming resampler to the model rate and back) gives what
// the in-memory path (one-shot resampling) gives; the model is a recurrent one, whose state
// follows the blocks.
TEST(UNetMethod, FileOutputEqualsInMemoryOutput) {
  for (const int rate : {16000, 22050}) {
    TempDir dir;
    register_unet_method();
    Audio a;
    a.sample_rate_hz = rate;
    a.channels = {noisy_speech(2 * rate, rate)};
    write_audio(dir / "in.wav", a);
    PipelineOptions o;
    o.method = "unet";
    o.method_options.model_path = save_random_model(dir, "m.dnz", true, true);
    o.block_seconds = 0.3;
    denoise_file(dir / "in.wav", dir / "out.wav", o);
    const Audio out = read_audio(dir / "out.wav");
    const auto expected = denoise_channels(a.channels, rate, o);
    ASSERT_EQ(out.frames(), a.frames());
    EXPECT_LT(test::max_abs_diff(out.channels[0], expected[0]), 1e-4) << rate << " Hz";
  }
}

TEST(UNetMethod, UnknownWithoutRegistrationOrModel) {
  MethodOptions o;
  o.model_path = "/nonexistent/model.dnz";
  register_unet_method();
  try {
    make_denoiser("unet", o, 16000);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.dnz"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Training

namespace {
TrainOptions tiny_training(const TempDir& dir, const std::string& data) {
  TrainOptions o;
  o.out_path = dir / "model.dnz";
  o.data.data_dirs = {data};
  o.data.crop_seconds = 1.0;
  o.data.val_crop_seconds = 2.0;
  o.data.val_fraction = 0.25;
  o.batch_size = 4;
  o.threads = 2;
  o.loader_workers = 1;
  o.model.channels = {8, 12, 16};
  o.model.bottleneck_dilations = {1, 2, 4};
  o.learning_rate = 3e-3;
  return o;
}
void quiet(const std::string&) {}
}  // namespace

// A short run on a tiny generated Kaggle-layout dataset learns: the validation loss falls by a
// clear margin and the SI-SDR improves. The best model is saved with its metadata.
TEST(Training, ShortRunLowersValidationLoss) {
  TempDir dir;
  write_tiny_kaggle_dataset(dir / "kaggle", 10, 2.0, 16000, 3);
  TrainOptions o = tiny_training(dir, dir / "kaggle");
  o.steps = 60;
  o.val_every_steps = 30;
  const TrainResult r = train(o, quiet, nullptr, false);
  EXPECT_EQ(r.steps, 60);
  EXPECT_LT(r.best.loss, r.first.loss - 0.02)
      << "first " << r.first.loss << " best " << r.best.loss;
  EXPECT_GT(r.best.si_sdri_db(), r.first.si_sdri_db() + 2.0);
  EXPECT_GT(r.audio_seconds_per_second, 0);
  const auto model = load_checkpoint(r.model_path);
  EXPECT_EQ(model->metadata.model, o.model);
  EXPECT_EQ(model->metadata.training.at("data").at("identity_pairs"), 1);
  EXPECT_EQ(model->metadata.training.at("data").at("skipped_missing"), 1);
  EXPECT_NEAR(model->metadata.validation.at("si_sdri_db").get<double>(), r.best.si_sdri_db(), 1e-9);
  // One log line per validation: steps 0, 30, 60.
  std::ifstream log(r.log_path);
  std::vector<int64_t> steps;
  for (std::string line; std::getline(log, line);)
    steps.push_back(nlohmann::json::parse(line).at("step").get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 30, 60}));
}

// Stopping and resuming gives the weights an uninterrupted run gives: the resume state holds the
// weights, the optimizer and the step, and batches depend only on the seed and the step.
TEST(Training, ResumeContinuesExactly) {
  TempDir dir;
  write_tiny_kaggle_dataset(dir / "kaggle", 6, 1.5, 16000, 4);
  TrainOptions straight = tiny_training(dir, dir / "kaggle");
  straight.out_path = dir / "straight.dnz";
  straight.steps = 8;
  straight.val_every_steps = 4;
  train(straight, quiet, nullptr, false);

  TrainOptions first = straight;
  first.out_path = dir / "resumed.dnz";
  first.steps = 4;
  EXPECT_EQ(train(first, quiet, nullptr, false).steps, 4);
  TrainOptions second = first;
  second.steps = 8;
  second.resume = true;
  std::vector<std::string> messages;
  const TrainResult r = train(
      second, [&](const std::string& m) { messages.push_back(m); }, nullptr, false);
  EXPECT_EQ(r.steps, 8);
  bool said = false;
  for (const auto& m : messages) said = said || m.find("resuming at step 4") != std::string::npos;
  EXPECT_TRUE(said);

  // The resume states after step 8 hold the same weights (up to float reassociation).
  torch::serialize::InputArchive a, b;
  a.load_from(dir / "straight.resume.pt");
  b.load_from(dir / "resumed.resume.pt");
  torch::serialize::InputArchive na, nb;
  a.read("net", na);
  b.read("net", nb);
  UNet ua(straight.model, straight.front_end.n_bins()),
      ub(straight.model, straight.front_end.n_bins());
  ua->load(na);
  ub->load(nb);
  auto pa = ua->named_parameters(), pb = ub->named_parameters();
  double max_diff = 0;
  for (const auto& p : pa)
    max_diff = std::max(max_diff, (p.value() - pb[p.key()]).abs().max().item<double>());
  EXPECT_LT(max_diff, 1e-5);
}

TEST(Training, StopFlagSavesResumeState) {
  TempDir dir;
  write_tiny_kaggle_dataset(dir / "kaggle", 6, 1.5, 16000, 5);
  TrainOptions o = tiny_training(dir, dir / "kaggle");
  o.steps = 1000;
  std::atomic<bool> stop{true};
  const TrainResult r = train(o, quiet, &stop, false);
  EXPECT_EQ(r.steps, 0);
  EXPECT_TRUE(fs::exists(r.resume_path));
}

TEST(Training, RejectsBadOptionsAndUnavailableDevice) {
  TempDir dir;
  write_tiny_kaggle_dataset(dir / "kaggle", 4, 1.0, 16000, 6);
  TrainOptions o = tiny_training(dir, dir / "kaggle");
  o.steps = 1;
  TrainOptions bad = o;
  bad.batch_size = 0;
  EXPECT_THROW(train(bad, quiet, nullptr, false), Error);
  bad = o;
  bad.out_path = dir / "no/such/folder/m.dnz";
  EXPECT_THROW(train(bad, quiet, nullptr, false), Error);
  if (!torch::cuda::is_available()) {
    bad = o;
    bad.device = "cuda";
    try {
      train(bad, quiet, nullptr, false);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos);
    }
  }
}

TEST(Training, ConfigFileOverridesAndRejectsUnknownKeys) {
  TempDir dir;
  TrainOptions o;
  {
    std::ofstream f(dir / "good.json");
    f << R"({"model": {"channels": [8, 16]}, "loss": {"si_sdr_weight": 0.02},
             "train": {"batch_size": 3, "crop_seconds": 1.5}})";
  }
  apply_config_file(dir / "good.json", o);
  EXPECT_EQ(o.model.channels, (std::vector<int>{8, 16}));
  EXPECT_EQ(o.model.kernel_freq, UNetOptions{}.kernel_freq);  // untouched keys keep defaults
  EXPECT_DOUBLE_EQ(o.loss.si_sdr_weight, 0.02);
  EXPECT_EQ(o.batch_size, 3);
  EXPECT_DOUBLE_EQ(o.data.crop_seconds, 1.5);
  for (const std::string bad : {R"({"model": {"depth": 3}})", R"({"optimiser": {}})",
                                R"({"train": {"batchsize": 3}})", R"({"model": )"}) {
    {
      std::ofstream f(dir / "bad.json");
      f << bad;
    }
    EXPECT_THROW(apply_config_file(dir / "bad.json", o), Error) << bad;
  }
}

TEST(UNet, PolyphaseUpsampleEqualsTransposedConvolution) {
  // The decoder's upsample_freq() must compute exactly what its ConvTranspose2d module would,
  // values and gradients, for the kernels and odd/even bin counts the options allow.
  torch::manual_seed(3);
  for (const int k : {1, 3, 5, 7}) {
    for (const int64_t f_in : {2, 5, 11, 41}) {
      for (const int64_t out_pad : {0, 1}) {
        const int pad = k / 2;
        const int64_t f_out = (f_in - 1) * 2 - 2 * pad + k + out_pad;
        if (out_pad >= 2 || f_out < 1) continue;
        torch::nn::ConvTranspose2d conv(torch::nn::ConvTranspose2dOptions(6, 4, {k, 1})
                                            .stride({2, 1})
                                            .padding({pad, 0})
                                            .output_padding({out_pad, 0}));
        const torch::Tensor x = torch::randn({3, 6, f_in, 7}, torch::requires_grad());
        const torch::Tensor expected = conv->forward(x);
        const torch::Tensor got = upsample_freq(conv, x, pad, f_out);
        ASSERT_EQ(got.sizes(), expected.sizes()) << "k " << k << " f_in " << f_in;
        EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5)
            << "k " << k << " f_in " << f_in << " out_pad " << out_pad;
        const torch::Tensor g = torch::randn_like(expected);
        const auto grads_expected = torch::autograd::grad({expected}, {x, conv->weight}, {g});
        const auto grads_got = torch::autograd::grad({got}, {x, conv->weight}, {g});
        for (size_t i = 0; i < 2; ++i)
          EXPECT_LT((grads_got[i] - grads_expected[i]).abs().max().item<double>(), 1e-4)
              << "gradient " << i << ", k " << k << " f_in " << f_in;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Batch parts

namespace {
std::vector<float> read_dump(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}
// Which elements of a weight dump the comparison counts: all but the biases of convolutions that a
// BatchNorm follows. Their true gradient is zero (the normalisation removes them); what they get
// is rounding noise, which Adam's first step turns into a step of up to the learning rate.
std::vector<bool> counted_weights(const TrainOptions& o) {
  UNet net(o.model, o.front_end.n_bins(), o.front_end.sample_rate_hz);
  const auto named = net->named_parameters();
  std::vector<bool> counted;
  for (const auto& p : named) {
    const std::string& key = p.key();
    const bool before_norm = key.size() > 5 && key.compare(key.size() - 5, 5, ".bias") == 0 &&
                             named.contains(key.substr(0, key.size() - 5) + "_norm.weight");
    counted.insert(counted.end(), static_cast<size_t>(p.value().numel()), !before_norm);
  }
  for (const auto& b : net->buffers())
    if (b.is_floating_point()) counted.insert(counted.end(), static_cast<size_t>(b.numel()), true);
  return counted;
}
double max_difference(const std::vector<float>& a, const std::vector<float>& b,
                      const std::vector<bool>& counted) {
  if (a.size() != b.size() || a.size() != counted.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (counted[i]) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// The first step of `o` computed here by hand, the batch split into `parts` row ranges: each
// part's loss weighted by its share of the batch, its BatchNorm statistics from the same start,
// their mean kept; then clipping and Adam. Returns the weights as dump_module_weights lays them.
std::vector<float> first_step_by_hand(const TrainOptions& o, int parts) {
  DataOptions d = o.data;
  d.sample_rate_hz = o.front_end.sample_rate_hz;
  TrainingData data(d);
  BatchLoader loader(data, o.batch_size, 1, rank_seed(o.data.seed, 0), 0);
  const Batch batch = loader.next();
  torch::manual_seed(o.data.seed);
  const TensorFrontEnd fe(o.front_end);
  UNet net(o.model, o.front_end.n_bins(), o.front_end.sample_rate_hz);
  net->train();
  torch::optim::Adam adam(net->parameters(),
                          torch::optim::AdamOptions(learning_rate_at(o, 0, o.steps)));
  auto rows = [&](const std::vector<float>& v) {
    return torch::from_blob(const_cast<float*>(v.data()), {batch.batch_size, batch.length})
        .clone();
  };
  const torch::Tensor noisy = rows(batch.noisy), clean = rows(batch.clean);
  const std::vector<torch::Tensor> buffers = net->buffers();
  std::vector<torch::Tensor> start, sum(buffers.size());
  for (const auto& b : buffers) start.push_back(b.clone());
  for (int p = 0; p < parts; ++p) {
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(start[i]);
    }
    const int64_t begin = batch.batch_size * p / parts, end = batch.batch_size * (p + 1) / parts;
    const torch::Tensor x = noisy.narrow(0, begin, end - begin);
    const torch::Tensor s = clean.narrow(0, begin, end - begin);
    const NetworkInput in = network_input(fe, x);
    const torch::Tensor spec = net->mask(in.features).squeeze(1) * in.spec;
    const LossTerms t =
        enhancement_loss(spec, fe.analyze(s), fe.synthesize(spec, x.size(1)), s, o.loss);
    (t.total * (static_cast<double>(end - begin) / batch.batch_size)).backward();
    for (size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i].is_floating_point())
        sum[i] = p == 0 ? buffers[i].detach().clone() : sum[i] + buffers[i].detach();
  }
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i].is_floating_point()) buffers[i].copy_(sum[i] / static_cast<double>(parts));
  }
  torch::nn::utils::clip_grad_norm_(net->parameters(), o.grad_clip_norm);
  adam.step();
  const fs::path file = fs::temp_directory_path() / ("by_hand_" + std::to_string(getpid()) + ".f32");
  dump_module_weights(*net, file.string());
  std::vector<float> w = read_dump(file);
  fs::remove(file);
  return w;
}
}  // namespace

// Two batch parts on two threads: the step is the sum of the two halves' gradients (each half
// normalised by its own BatchNorm statistics), within float rounding (1e-5) of the same step
// computed by hand; the same seed gives the same weights bit for bit; and the whole batch at
// once (one part) is a different step, so that the first check can fail.
TEST(Training, BatchPartsSumTheirHalvesGradients) {
  TempDir dir;
  write_tiny_kaggle_dataset(dir / "kaggle", 8, 1.5, 16000, 5);
  TrainOptions o = tiny_training(dir, dir / "kaggle");
  o.steps = 1;
  o.val_every_steps = 1;
  o.val_pesq = false;
  o.batch_parts = 2;
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    const fs::path weights = dir / ("w" + std::to_string(run));
    fs::create_directories(weights);
    o.debug_weights_dir = weights;
    o.out_path = dir / ("m" + std::to_string(run) + ".dnz");
    const TrainResult r = train(o, quiet, nullptr, false);
    EXPECT_EQ(r.batch_parts, 2);
    runs.push_back(read_dump(weights / "rank0.step1.f32"));
  }
  ASSERT_FALSE(runs[0].empty());
  EXPECT_EQ(runs[0], runs[1]) << "the same seed gave other weights";
  const std::vector<bool> counted = counted_weights(o);
  const double by_hand = max_difference(runs[0], first_step_by_hand(o, 2), counted);
  EXPECT_LT(by_hand, 1e-5);
  const double whole = max_difference(runs[0], first_step_by_hand(o, 1), counted);
  EXPECT_GT(whole, 1e-4) << "one part gave the same step: the comparison above cannot fail";
  std::printf("batch parts: %.2g from the step by hand, %.2g from one part\n", by_hand, whole);
}

// More parts than examples, or parts on CUDA, are refused with one line before any work.
TEST(Training, BatchPartsOutOfRangeAreRefused) {
  TempDir dir;
  TrainOptions o = tiny_training(dir, dir / "none");
  o.batch_parts = o.batch_size + 1;
  try {
    train(o, quiet, nullptr, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--batch-parts 5"), std::string::npos) << e.what();
  }
}
