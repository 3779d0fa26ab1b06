// The block pipeline: block output equals whole-signal output, methods reduce noise, channels are
// independent, bad lengths are errors.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <filesystem>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/file_pipeline.h"
#include "denoise/spectral_gate.h"
#include "test_util.h"

using namespace denoise;

namespace {

constexpr int kRate = 16000;

std::vector<float> noisy_signal(int64_t n, std::vector<float>* clean_out = nullptr) {
  auto clean = test::voiced_bursts(n, kRate);
  auto noise = test::white_noise(n, 0.03, 42);
  // Noise level rising over the file, so the non-stationary floor has something to track.
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = clean[i] + noise[i] * (1.0f + 1.5f * i / n);
  if (clean_out) *clean_out = clean;
  return x;
}

struct BlockCase {
  std::string method;
  double time_constant_s;
  bool causal;
};

class BlockEquality : public ::testing::TestWithParam<BlockCase> {};

}  // namespace

TEST_P(BlockEquality, SmallBlocksEqualWholeSignal) {
  const auto& bc = GetParam();
  const int64_t n = 10 * kRate + 123;
  const auto x = noisy_signal(n);
  PipelineOptions opt;
  opt.method = bc.method;
  opt.method_options.gate.time_constant_s = bc.time_constant_s;
  opt.method_options.gate.causal = bc.causal;
  opt.block_samples = n;  // one block: the whole signal at once
  const auto whole = denoise_channels({x}, kRate, opt);
  for (int64_t block : {int64_t{3001}, int64_t{16384}}) {
    opt.block_samples = block;
    const auto blocks = denoise_channels({x}, kRate, opt);
    ASSERT_EQ(blocks[0].size(), whole[0].size());
    EXPECT_LE(test::max_abs_diff(whole[0], blocks[0]), 1e-4) << bc.method << " block " << block;
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, BlockEquality,
                         ::testing::Values(BlockCase{"gate", 2.0, false},
                                           BlockCase{"gate", 2.0, true},
                                           BlockCase{"gate-nonstationary", 0.1, false},
                                           BlockCase{"gate-nonstationary", 0.1, true},
                                           BlockCase{"gate-nonstationary", 2.0, false},
                                           BlockCase{"subtract", 2.0, false}),
                         [](const auto& param_info) {
                           std::string name = param_info.param.method +
                                              (param_info.param.causal ? "_causal" : "") + "_tc" +
                                              std::to_string(static_cast<int>(
                                                  param_info.param.time_constant_s * 10));
                           for (auto& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

// With noise 100+ dB below the speech, noisereduce's 80 dB floor lets whole frequencies pass: that
// needs the per-frequency maximum over the whole signal, which blocks get from a first pass.
TEST(Pipeline, GateBlocksEqualWholeWhenTheDbFloorMatters) {
  const int64_t n = 8 * kRate;
  auto x = test::voiced_bursts(n, kRate);
  std::fill(x.begin(), x.begin() + kRate / 2, 0.f);
  const auto hiss = test::white_noise(n, 1e-6, 5);
  for (int64_t i = 0; i < n; ++i) x[i] += hiss[i];
  // The 80 dB floor does act here (whole frequencies pass), so the pass is redone with it.
  StationaryGate probe(GateOptions{}, kRate);
  probe.set_noise(std::vector<float>(x.begin(), x.begin() + kRate / 2));
  FrontEnd fe(probe.front_end());
  Spectrogram spec;
  fe.analyze(x.data(), n, spec);
  std::vector<float> gains;
  probe.begin_signal();
  probe.gains(spec, gains);
  probe.accumulate_signal_statistics(spec);
  EXPECT_TRUE(probe.end_signal());
  probe.begin_signal();
  probe.gains(spec, gains);
  probe.accumulate_signal_statistics(spec);
  EXPECT_FALSE(probe.end_signal());
  PipelineOptions opt;
  opt.noise_seconds = 0.5;  // the leading pause: noise alone
  opt.block_samples = n;
  const auto whole = denoise_channels({x}, kRate, opt);
  opt.block_samples = 5000;
  const auto blocks = denoise_channels({x}, kRate, opt);
  EXPECT_LE(test::max_abs_diff(whole[0], blocks[0]), 1e-4);
}

TEST(Pipeline, EveryMethodImprovesSiSdrOnStationaryNoise) {
  const int64_t n = 6 * kRate;
  auto clean = test::voiced_bursts(n, kRate);
  // 0.5 s of noise alone first, as the subtract default expects.
  for (int64_t i = 0; i < kRate / 2; ++i) clean[i] = 0.f;
  const auto noise = test::white_noise(n, 0.05, 9);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = clean[i] + noise[i];
  const double before = test::si_sdr(clean, x);
  for (const std::string method : {"gate", "gate-nonstationary", "subtract"}) {
    PipelineOptions opt;
    opt.method = method;
    const auto y = denoise_channels({x}, kRate, opt);
    const double after = test::si_sdr(clean, y[0]);
    std::printf("  %-20s SI-SDR %.1f -> %.1f dB\n", method.c_str(), before, after);
    EXPECT_GE(after - before, 3.0) << method;
  }
}

TEST(Pipeline, ChannelsAreDenoisedIndependently) {
  const int64_t n = 3 * kRate;
  const auto left = noisy_signal(n);
  std::vector<float> right(n);
  for (int64_t i = 0; i < n; ++i) right[i] = 0.25f * left[i];
  PipelineOptions opt;  // gate: dB thresholds are relative to each channel's own noise
  const auto stereo = denoise_channels({left, right}, kRate, opt);
  const auto mono = denoise_channels({left}, kRate, opt);
  ASSERT_EQ(stereo.size(), 2u);
  EXPECT_LE(test::max_abs_diff(stereo[0], mono[0]), 1e-6);
  std::vector<float> scaled(n);
  for (int64_t i = 0; i < n; ++i) scaled[i] = 0.25f * mono[0][i];
  EXPECT_LE(test::max_abs_diff(stereo[1], scaled), 1e-5);
}

TEST(Pipeline, TooShortAndUnknownMethodAreErrors) {
  PipelineOptions opt;
  EXPECT_THROW(denoise_channels({std::vector<float>(500, 0.1f)}, kRate, opt), Error);
  opt.method = "wiener";
  EXPECT_THROW(denoise_channels({std::vector<float>(5000, 0.1f)}, kRate, opt), Error);
}

TEST(Pipeline, FileBlocksEqualWholeFileAndFormatIsKept) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("denoise_pipeline_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int64_t n = 5 * kRate;
  Audio a;
  a.sample_rate_hz = kRate;
  a.channels = {noisy_signal(n), test::white_noise(n, 0.05, 1)};
  const std::string in = (dir / "in.wav").string();
  write_audio(in, a, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  PipelineOptions opt;
  opt.method = "gate-nonstationary";
  opt.method_options.gate.time_constant_s = 0.2;
  const auto whole_report = denoise_file(in, (dir / "whole.wav").string(), opt);
  opt.block_samples = 4000;
  const auto block_report = denoise_file(in, (dir / "blocks.wav").string(), opt);
  EXPECT_EQ(whole_report.blocks, 1);
  EXPECT_EQ(block_report.blocks, 20);
  const Audio whole = read_audio((dir / "whole.wav").string());
  const Audio blocks = read_audio((dir / "blocks.wav").string());
  ASSERT_EQ(whole.channels.size(), 2u);
  ASSERT_EQ(whole.frames(), n);
  for (int c = 0; c < 2; ++c)
    EXPECT_LE(test::max_abs_diff(whole.channels[c], blocks.channels[c]), 1e-4);
  // Same format as the input.
  AudioReader r((dir / "whole.wav").string());
  EXPECT_EQ(r.info().format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  std::filesystem::remove_all(dir);
}
