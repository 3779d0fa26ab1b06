#include <gtest/gtest.h>

#include "denoise/error.h"
#include "denoise/front_end.h"
#include "test_util.h"

using namespace denoise;

namespace {

FrontEndConfig make_config(int n_fft, int hop, WindowType w = WindowType::kHann) {
  FrontEndConfig c;
  c.n_fft = n_fft;
  c.hop_length = hop;
  c.window = w;
  return c;
}

class FrontEndConfigs : public ::testing::TestWithParam<FrontEndConfig> {};

}  // namespace

TEST_P(FrontEndConfigs, RoundTripIsPerfectReconstruction) {
  FrontEnd fe(GetParam());
  for (int64_t n : {int64_t{12345}, int64_t{GetParam().n_fft}, int64_t{16000}}) {
    const auto x = test::white_noise(n, 0.3, 7);
    Spectrogram spec;
    fe.analyze(x.data(), n, spec);
    EXPECT_EQ(spec.n_frames, 1 + n / GetParam().hop_length);
    const auto y = fe.synthesize(spec, n);
    ASSERT_EQ(y.size(), x.size());
    EXPECT_LE(test::max_abs_diff(x, y), 1e-5) << "n=" << n;
  }
}

TEST_P(FrontEndConfigs, StreamingFormEqualsWholeSignalForm) {
  const FrontEndConfig cfg = GetParam();
  FrontEnd fe(cfg);
  const int hop = cfg.hop_length;
  const int64_t n = 40 * hop;
  const auto x = test::white_noise(n, 0.3, 11);
  Spectrogram whole;
  fe.analyze(x.data(), n, whole);

  StreamingAnalyzer analyzer(fe);
  StreamingSynthesizer synth(fe);
  std::vector<std::complex<float>> frame(fe.n_bins());
  std::vector<float> out, hop_out(hop);
  int64_t k = 0;
  // Feed the signal then n_fft/2 zeros so the last frames of `whole` are produced too.
  std::vector<float> input = x;
  input.resize(n + cfg.n_fft, 0.f);
  for (int64_t i = 0; i + hop <= static_cast<int64_t>(input.size()); i += hop) {
    if (!analyzer.push(input.data() + i, frame.data())) continue;
    if (k < whole.n_frames) {
      for (int f = 0; f < fe.n_bins(); ++f) ASSERT_EQ(frame[f], whole.frame(k)[f]) << "frame " << k;
    }
    // Synthesis of the whole form's frames, frame by frame.
    if (k < whole.n_frames) {
      synth.push(whole.frame(k), hop_out.data());
      out.insert(out.end(), hop_out.begin(), hop_out.end());
    }
    ++k;
  }
  EXPECT_GE(k, whole.n_frames);
  const auto y = fe.synthesize(whole, n);
  const int offset = synth.stream_offset();
  // The stream ends before the last n_fft - hop samples, which later frames would complete.
  const int64_t comparable = static_cast<int64_t>(out.size()) - offset - (cfg.n_fft - hop);
  ASSERT_GT(comparable, n / 2);
  double max_diff = 0;
  for (int64_t i = 0; i < comparable; ++i)
    max_diff = std::max(max_diff, double(std::abs(out[i + offset] - y[i])));
  EXPECT_LE(max_diff, 1e-6);
  EXPECT_EQ(synth.latency_samples(), cfg.n_fft);
}

INSTANTIATE_TEST_SUITE_P(Configs, FrontEndConfigs,
                         ::testing::Values(make_config(512, 128), make_config(1024, 256),
                                           make_config(400, 100),
                                           make_config(320, 160, WindowType::kSqrtHann),
                                           make_config(512, 256, WindowType::kSqrtHann)),
                         [](const auto& param_info) {
                           const auto& c = param_info.param;
                           return std::string(c.window == WindowType::kHann ? "hann" : "sqrthann") +
                                  "_" + std::to_string(c.n_fft) + "_" +
                                  std::to_string(c.hop_length);
                         });

TEST(FrontEnd, BlockRangesEqualWholeSignal) {
  FrontEnd fe(make_config(512, 128));
  const int64_t n = 10000;
  const auto x = test::white_noise(n, 0.3, 3);
  Spectrogram whole;
  fe.analyze(x.data(), n, whole);
  const int64_t half = 256, total = whole.n_frames;
  std::vector<float> y(n);
  // Output samples in blocks of 1000, each synthesised from the frames overlapping it only.
  for (int64_t s = 0; s < n; s += 1000) {
    const int64_t qa = s + half, qb = std::min(n, s + 1000) + half;
    const int64_t k0 = std::max<int64_t>(0, (qa - 512) / 128 + 1),
                  k1 = std::min(total, (qb - 1) / 128 + 1);
    Spectrogram part;
    part.resize(k1 - k0, whole.n_bins);
    std::copy(whole.frame(k0), whole.frame(k0) + (k1 - k0) * whole.n_bins, part.bins.begin());
    fe.synthesize_range(part, k0, total, qa, qb, y.data() + s);
  }
  EXPECT_LE(test::max_abs_diff(x, y), 1e-5);
}

TEST(FrontEnd, WindowSquareSumMatchesBruteForce) {
  FrontEnd fe(make_config(512, 128));
  const int64_t frames = 10;
  for (int64_t p = 0; p < 9 * 128 + 512; p += 7) {
    double s = 0;
    for (int64_t k = 0; k < frames; ++k)
      if (p >= k * 128 && p < k * 128 + 512)
        s += double(fe.window()[p - k * 128]) * fe.window()[p - k * 128];
    EXPECT_NEAR(fe.window_square_sum(p, frames), s, 1e-12) << p;
  }
}

TEST(FrontEndConfig, JsonRoundTripAndStrictReading) {
  FrontEndConfig c = make_config(320, 160, WindowType::kSqrtHann);
  c.compression = Compression::kLog;
  nlohmann::json j = c;
  EXPECT_EQ(j.get<FrontEndConfig>(), c);
  EXPECT_EQ(j["window"], "sqrt_hann");

  auto missing = j;
  missing.erase("hop_length");
  EXPECT_THROW(missing.get<FrontEndConfig>(), Error);
  auto unknown = j;
  unknown["hop_ms"] = 10;
  EXPECT_THROW(unknown.get<FrontEndConfig>(), Error);
  auto bad_enum = j;
  bad_enum["window"] = "hamming";
  EXPECT_THROW(bad_enum.get<FrontEndConfig>(), Error);
  auto bad_type = j;
  bad_type["n_fft"] = "512";
  EXPECT_THROW(bad_type.get<FrontEndConfig>(), Error);
  auto bad_value = j;
  bad_value["hop_length"] = 1000;
  EXPECT_THROW(bad_value.get<FrontEndConfig>(), Error);
}
