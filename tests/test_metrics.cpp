// Speech-quality metrics: parity with pystoi 0.4.1 and the SI-SDR reference on the VoiceBank+DEMAND
// pairs in ../shared/reference/metrics, and properties (identity, monotone in noise, scale
// invariance, rate independence, closed forms, errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/metrics.h"
#include "denoise/resample.h"
#include "test_util.h"

using namespace denoise;

namespace {

std::vector<float> add(const std::vector<float>& a, const std::vector<float>& b, float gain_b) {
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + gain_b * b[i];
  return out;
}

std::vector<float> scaled(std::vector<float> x, float gain) {
  for (auto& v : x) v *= gain;
  return x;
}

constexpr int kRate = 16000;

}  // namespace

TEST(MetricsReference, MatchesPystoiAndSiSdrOnEveryPair) {
  if (!test::have_shared())
    GTEST_SKIP() << "../shared/reference is absent: metrics not checked against pystoi";
  const std::string path = test::shared_dir() + "/reference/metrics/metrics.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  const auto ref = nlohmann::json::parse(in);
  double max_stoi = 0, max_estoi = 0, max_si_sdr = 0;
  int checked = 0;
  for (const auto& pair : ref.at("pairs")) {
    const std::string clean_path = pair.at("clean").get<std::string>();
    const Audio clean = read_audio(test::shared_dir() + "/" + clean_path);
    const Audio degraded =
        read_audio(test::shared_dir() + "/" + pair.at("degraded").get<std::string>());
    const int rate = pair.at("sample_rate").get<int>();
    ASSERT_EQ(clean.sample_rate_hz, rate) << clean_path;
    ASSERT_EQ(degraded.sample_rate_hz, rate) << clean_path;
    const auto& x = clean.channels.at(0);
    const auto& y = degraded.channels.at(0);

    const double d_stoi = stoi(x, y, rate) - pair.at("stoi").get<double>();
    const double d_estoi = estoi(x, y, rate) - pair.at("estoi").get<double>();
    const double d_sdr = si_sdr_db(x, y) - pair.at("si_sdr_db").get<double>();
    EXPECT_NEAR(d_stoi, 0.0, 0.005) << clean_path;
    EXPECT_NEAR(d_estoi, 0.0, 0.005) << clean_path;
    EXPECT_NEAR(d_sdr, 0.0, 0.01) << clean_path;
    max_stoi = std::max(max_stoi, std::abs(d_stoi));
    max_estoi = std::max(max_estoi, std::abs(d_estoi));
    max_si_sdr = std::max(max_si_sdr, std::abs(d_sdr));
    ++checked;
  }
  EXPECT_GE(checked, 1);
  std::printf("  %d pairs; max |deviation|: STOI %.2e, ESTOI %.2e, SI-SDR %.2e dB\n", checked,
              max_stoi, max_estoi, max_si_sdr);
}

TEST(Metrics, IdenticalSignalsScorePerfectly) {
  const auto clean =
      add(test::voiced_bursts(3 * kRate, kRate), test::white_noise(3 * kRate, 1e-3, 1), 1.f);
  EXPECT_GT(stoi(clean, clean, kRate), 0.999);
  EXPECT_GT(estoi(clean, clean, kRate), 0.999);
  EXPECT_GT(si_sdr_db(clean, clean), 100.0);
  EXPECT_GT(snr_db(clean, clean), 100.0);
  EXPECT_DOUBLE_EQ(segmental_snr_db(clean, clean, kRate), 35.0);  // every frame at the upper clamp
}

TEST(Metrics, MoreNoiseScoresLower) {
  const auto clean = test::voiced_bursts(4 * kRate, kRate);
  const auto noise = test::white_noise(4 * kRate, 1.0, 7);
  const float levels[] = {0.005f, 0.03f, 0.15f};
  double prev[5];
  for (int l = 0; l < 3; ++l) {
    const auto noisy = add(clean, noise, levels[l]);
    const double now[5] = {stoi(clean, noisy, kRate), estoi(clean, noisy, kRate),
                           si_sdr_db(clean, noisy), snr_db(clean, noisy),
                           segmental_snr_db(clean, noisy, kRate)};
    std::printf("  noise rms %.3f: STOI %.3f ESTOI %.3f SI-SDR %.1f SNR %.1f segSNR %.1f\n",
                levels[l], now[0], now[1], now[2], now[3], now[4]);
    if (l > 0) {
      for (int m = 0; m < 5; ++m) EXPECT_LT(now[m], prev[m]) << "metric " << m << " level " << l;
    }
    std::copy(now, now + 5, prev);
  }
}

TEST(Metrics, SiSdrIsScaleInvariantSnrIsNot) {
  const auto clean = test::voiced_bursts(2 * kRate, kRate);
  const auto noisy = add(clean, test::white_noise(2 * kRate, 1.0, 3), 0.01f);
  const auto quieter = scaled(noisy, 0.5f);
  EXPECT_NEAR(si_sdr_db(clean, quieter), si_sdr_db(clean, noisy), 1e-6);
  // Halving the estimate leaves an error of half the clean signal: SNR drops to about 6 dB.
  EXPECT_GT(snr_db(clean, noisy), 15.0);
  EXPECT_NEAR(snr_db(clean, quieter), 6.0, 1.0);
  // STOI and ESTOI normalise levels too.
  EXPECT_NEAR(stoi(clean, quieter, kRate), stoi(clean, noisy, kRate), 1e-6);
  EXPECT_NEAR(estoi(clean, quieter, kRate), estoi(clean, noisy, kRate), 1e-6);
}

TEST(Metrics, ClosedFormsForAGainError) {
  // estimate = 0.9 reference: the error is 0.1 reference in every sample and every frame, so SNR
  // and each frame's SNR are exactly 20 dB; SI-SDR sees no distortion at all.
  const auto reference = test::white_noise(kRate, 0.1, 11);
  const auto estimate = scaled(reference, 0.9f);
  EXPECT_NEAR(snr_db(reference, estimate), 20.0, 1e-4);
  EXPECT_NEAR(segmental_snr_db(reference, estimate, kRate), 20.0, 1e-4);
  EXPECT_GT(si_sdr_db(reference, estimate), 100.0);
  // Orthogonal-in-expectation noise at equal power: SI-SDR about 0 dB.
  const auto other = test::white_noise(kRate, 0.1, 12);
  EXPECT_NEAR(si_sdr_db(reference, add(reference, other, 1.f)), 0.0, 0.2);
}

TEST(Metrics, StoiDoesNotDependOnSampleRate) {
  const auto clean = test::voiced_bursts(3 * kRate, kRate);
  const auto noisy = add(clean, test::white_noise(3 * kRate, 1.0, 5), 0.04f);
  const int high = 44100;
  const auto clean_hi = resample(clean, kRate, high);
  const auto noisy_hi = resample(noisy, kRate, high);
  EXPECT_NEAR(stoi(clean_hi, noisy_hi, high), stoi(clean, noisy, kRate), 0.01);
  EXPECT_NEAR(estoi(clean_hi, noisy_hi, high), estoi(clean, noisy, kRate), 0.01);
}

TEST(Metrics, LengthMismatchThrowsNamingBothLengths) {
  const auto a = test::voiced_bursts(kRate, kRate);
  const auto b = test::voiced_bursts(kRate + 5, kRate);
  auto expect_lengths_named = [&](auto&& call) {
    try {
      call();
      ADD_FAILURE() << "no error for signals of 16000 and 16005 samples";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("16000"), std::string::npos) << msg;
      EXPECT_NE(msg.find("16005"), std::string::npos) << msg;
    }
  };
  expect_lengths_named([&] { si_sdr_db(a, b); });
  expect_lengths_named([&] { snr_db(a, b); });
  expect_lengths_named([&] { segmental_snr_db(a, b, kRate); });
  expect_lengths_named([&] { stoi(a, b, kRate); });
  expect_lengths_named([&] { estoi(b, a, kRate); });
}

TEST(Metrics, DegenerateInputsThrow) {
  // 0.3 s of speech: fewer than 30 STFT frames at 10 kHz after silence removal.
  const auto short_speech = test::voiced_bursts(kRate * 3 / 10, kRate);
  EXPECT_THROW(stoi(short_speech, short_speech, kRate), Error);
  EXPECT_THROW(estoi(short_speech, short_speech, kRate), Error);
  // A long file whose speech is short: 3 s of silence around 0.2 s of sound.
  std::vector<float> mostly_silent(3 * kRate, 0.f);
  const auto burst = test::voiced_bursts(kRate / 5, kRate);
  std::copy(burst.begin(), burst.end(), mostly_silent.begin() + kRate);
  try {
    stoi(mostly_silent, mostly_silent, kRate);
    ADD_FAILURE() << "no error for 0.2 s of speech";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("silence removal"), std::string::npos) << e.what();
  }
  const std::vector<float> silence(kRate, 0.f), empty;
  EXPECT_THROW(si_sdr_db(silence, test::white_noise(kRate, 0.1, 1)), Error);
  EXPECT_THROW(snr_db(silence, silence), Error);
  EXPECT_THROW(si_sdr_db(empty, empty), Error);
  EXPECT_THROW(segmental_snr_db(short_speech, short_speech, 8), Error);  // 30 ms < 4 samples
  const auto tiny = test::white_noise(400, 0.1, 2);  // 25 ms: no whole 30 ms frame
  EXPECT_THROW(segmental_snr_db(tiny, tiny, kRate), Error);
  auto with_nan = short_speech;
  with_nan[10] = std::nanf("");
  EXPECT_THROW(snr_db(short_speech, with_nan), Error);
}
