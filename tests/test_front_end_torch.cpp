// The tensor form of the front end against the frame form and against torch::stft/istft.
#include <gtest/gtest.h>

#include "denoise/front_end.h"
#include "denoise/front_end_torch.h"
#include "test_util.h"

using namespace denoise;

namespace {

FrontEndConfig config(int n_fft, int hop, WindowType w) {
  FrontEndConfig c;
  c.n_fft = n_fft;
  c.hop_length = hop;
  c.window = w;
  return c;
}

}  // namespace

TEST(TensorFrontEnd, AgreesWithFrameFormAndTorchStft) {
  for (const auto& cfg :
       {config(512, 128, WindowType::kHann), config(320, 160, WindowType::kSqrtHann)}) {
    const int64_t n = 9001;
    const auto x = test::white_noise(n, 0.3, 5);
    FrontEnd fe(cfg);
    Spectrogram frames;
    fe.analyze(x.data(), n, frames);

    TensorFrontEnd tfe(cfg);
    const auto xt = torch::tensor(x);
    const auto spec = tfe.analyze(xt);  // [1, F, T]
    ASSERT_EQ(spec.size(1), fe.n_bins());
    ASSERT_EQ(spec.size(2), frames.n_frames);
    // The frame form, laid out as torch's [F, T].
    auto ours =
        torch::from_blob(frames.bins.data(), {frames.n_frames, frames.n_bins}, torch::kComplexFloat)
            .t();
    const double scale = spec.abs().max().item<double>();
    EXPECT_LE((spec[0] - ours).abs().max().item<double>() / scale, 1e-5);

    // Reference call spelled out: torch::stft with the periodic Hann of torch itself.
    if (cfg.window == WindowType::kHann) {
      const auto ref =
          torch::stft(xt, cfg.n_fft, cfg.hop_length, cfg.n_fft, torch::hann_window(cfg.n_fft), true,
                      "constant", false, true, true);
      EXPECT_LE((ref - ours).abs().max().item<double>() / scale, 1e-5);
    }

    // Synthesis: torch::istft vs the frame form, and perfect reconstruction.
    const auto y_torch = tfe.synthesize(spec, n)[0];
    const auto y_frames = fe.synthesize(frames, n);
    const auto y_ours = torch::tensor(y_frames);
    EXPECT_LE((y_torch - y_ours).abs().max().item<double>(), 1e-5);
    EXPECT_LE((y_torch - xt).abs().max().item<double>(), 1e-5);
  }
}

TEST(TensorFrontEnd, BatchedEqualsOneByOne) {
  const auto cfg = config(512, 128, WindowType::kHann);
  TensorFrontEnd tfe(cfg);
  const auto batch = torch::randn({3, 4000}) * 0.2;
  const auto spec = tfe.analyze(batch);
  for (int b = 0; b < 3; ++b) {
    const auto one = tfe.analyze(batch[b]);
    EXPECT_TRUE(
        torch::allclose(torch::view_as_real(spec[b]), torch::view_as_real(one[0]), 1e-5, 1e-5));
  }
}

TEST(TensorFrontEnd, PowerFeaturesHaveFiniteGradientsAtSilence) {
  auto cfg = config(512, 128, WindowType::kHann);
  cfg.compression = Compression::kPower;
  TensorFrontEnd tfe(cfg);
  auto x = torch::zeros({1, 2048}, torch::requires_grad());
  auto f = tfe.features(tfe.analyze(x));
  f.sum().backward();
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  // Compressed magnitude of a unit-amplitude bin: (1 + eps)^(0.3/2) ~ 1.
  auto one = torch::ones({1, 1, 1}, torch::kComplexFloat);
  EXPECT_NEAR(tfe.features(one).item<float>(), 1.0, 1e-6);
}
