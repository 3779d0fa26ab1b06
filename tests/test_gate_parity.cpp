// Parity with noisereduce 3.0.3 on the reference cases in ../shared/reference/noisereduce:
// the project's output with the same parameters has SI-SDR >= 30 dB against noisereduce's.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "denoise/audio_io.h"
#include "denoise/file_pipeline.h"
#include "test_util.h"

using namespace denoise;

TEST(NoisereduceParity, EveryReferenceCase) {
  if (!test::have_shared())
    GTEST_SKIP() << "../shared/reference is absent: parity with noisereduce not checked";
  const std::string dir = test::shared_dir() + "/reference/noisereduce/";
  std::ifstream in(dir + "cases.json");
  ASSERT_TRUE(in) << "cannot open " << dir << "cases.json";
  const auto cases = nlohmann::json::parse(in);
  const auto& defaults = cases.at("defaults");
  int checked = 0;
  for (const auto& c : cases.at("cases")) {
    auto p = defaults;
    for (const auto& item : c.at("params").items()) p[item.key()] = item.value();
    PipelineOptions opt;
    opt.method = p.at("stationary").get<bool>() ? "gate" : "gate-nonstationary";
    auto& g = opt.method_options.gate;
    g.prop_decrease = p.at("prop_decrease");
    g.time_constant_s = p.at("time_constant_s");
    g.freq_mask_smooth_hz = p.at("freq_mask_smooth_hz");
    g.time_mask_smooth_ms = p.at("time_mask_smooth_ms");
    g.thresh_n_mult_nonstationary = p.at("thresh_n_mult_nonstationary");
    g.sigmoid_slope_nonstationary = p.at("sigmoid_slope_nonstationary");
    g.n_std_thresh_stationary = p.at("n_std_thresh_stationary");
    g.n_fft = p.at("n_fft");
    g.hop_length = p.at("hop_length");
    ASSERT_EQ(p.at("win_length").get<int>(), g.n_fft);
    ASSERT_TRUE(p.at("clip_noise_stationary").get<bool>());

    const Audio input = read_audio(dir + c.at("input").get<std::string>());
    const Audio expected = read_audio(dir + c.at("output").get<std::string>());
    ASSERT_EQ(input.sample_rate_hz, c.at("sample_rate").get<int>());
    std::vector<float> noise;
    if (p.contains("y_noise"))
      noise = read_audio(dir + p.at("y_noise").get<std::string>()).channels[0];
    const auto out = denoise_channels(input.channels, input.sample_rate_hz, opt,
                                      noise.empty() ? nullptr : &noise);
    ASSERT_EQ(out[0].size(), expected.channels[0].size());
    const double sdr = test::si_sdr(expected.channels[0], out[0]);
    EXPECT_GE(sdr, 30.0) << c.at("output").get<std::string>();
    std::printf("  %-40s SI-SDR vs noisereduce %.1f dB\n",
                c.at("output").get<std::string>().c_str(), sdr);
    ++checked;
  }
  EXPECT_GE(checked, 1);
}
