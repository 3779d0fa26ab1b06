// PESQ (ITU-T P.862 / P.862.1 / P.862.2): parity with the ITU reference implementation on the 56
// cases of ../shared/reference/pesq and the six VoiceBank+DEMAND pairs of
// ../shared/reference/metrics, and properties (identity, delay and level invariance, errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/pesq.h"
#include "test_util.h"

using namespace denoise;

namespace {

std::vector<float> read_mono(const std::string& path) {
  return mix_to_mono(read_audio(path).channels);
}

PesqMode mode_from(const std::string& name) {
  if (name == "wb") return PesqMode::wide_band;
  if (name == "nb") return PesqMode::narrow_band;
  throw Error("unknown PESQ mode '" + name + "'");
}

}  // namespace

// Every case within 0.02 MOS-LQO of the ITU reference, and the mean error well below that.
TEST(PesqReference, MatchesItuReferenceOnEveryCase) {
  if (!test::have_shared())
    GTEST_SKIP() << "../shared/reference is absent: PESQ not checked against the ITU reference";
  const std::string folder = test::shared_dir() + "/reference/pesq";
  std::ifstream in(folder + "/cases.json");
  ASSERT_TRUE(in) << folder << "/cases.json";
  const auto cases = nlohmann::json::parse(in).at("cases");
  ASSERT_EQ(cases.size(), 56u);
  double worst = 0.0, sum = 0.0;
  std::string worst_name;
  for (const auto& c : cases) {
    const std::string name = c.at("name").get<std::string>();
    const Audio ref = read_audio(folder + "/" + c.at("reference").get<std::string>());
    const Audio deg = read_audio(folder + "/" + c.at("degraded").get<std::string>());
    const int rate = c.at("sample_rate").get<int>();
    ASSERT_EQ(ref.sample_rate_hz, rate) << name;
    const std::vector<float> r = mix_to_mono(ref.channels), d = mix_to_mono(deg.channels);
    const PesqResult got = pesq(r.data(), r.size(), d.data(), d.size(), rate,
                                mode_from(c.at("mode").get<std::string>()));
    const double expected = c.at("pesq").get<double>();
    const double error = std::fabs(got.mos_lqo - expected);
    std::printf("%-34s expected %.4f got %.4f error %+.4f (raw %.4f, %zu utterances)\n",
                name.c_str(), expected, got.mos_lqo, got.mos_lqo - expected, got.raw_mos,
                got.utterance_delays_samples.size());
    EXPECT_LE(error, 0.05) << name;
    EXPECT_LE(error, 0.02) << name;
    sum += error;
    if (error > worst) worst = error, worst_name = name;
  }
  const double mean = sum / static_cast<double>(cases.size());
  std::printf("PESQ vs ITU reference: worst |error| %.4f (%s), mean |error| %.4f over %zu cases\n",
              worst, worst_name.c_str(), mean, cases.size());
  EXPECT_LE(mean, 0.01);
}

// Wide-band PESQ of the six development pairs against metrics.json.
TEST(PesqReference, MatchesWideBandOnDevelopmentPairs) {
  if (!test::have_shared())
    GTEST_SKIP() << "../shared/reference is absent: PESQ not checked on the development pairs";
  std::ifstream in(test::shared_dir() + "/reference/metrics/metrics.json");
  ASSERT_TRUE(in);
  const auto pairs = nlohmann::json::parse(in).at("pairs");
  ASSERT_EQ(pairs.size(), 6u);
  double worst = 0.0;
  for (const auto& pair : pairs) {
    const std::string clean = pair.at("clean").get<std::string>();
    const std::vector<float> r = read_mono(test::shared_dir() + "/" + clean);
    const std::vector<float> d =
        read_mono(test::shared_dir() + "/" + pair.at("degraded").get<std::string>());
    const double got =
        pesq(r.data(), r.size(), d.data(), d.size(), 16000, PesqMode::wide_band).mos_lqo;
    const double expected = pair.at("pesq_wb").get<double>();
    std::printf("%-60s expected %.4f got %.4f error %+.4f\n", clean.c_str(), expected, got,
                got - expected);
    EXPECT_NEAR(got, expected, 0.02) << clean;
    worst = std::max(worst, std::fabs(got - expected));
  }
  std::printf("PESQ-WB on the development pairs: worst |error| %.4f\n", worst);
}

namespace {

// A clean utterance from the shared speech (16 kHz), or an empty vector without ../shared.
std::vector<float> speech_16k() {
  if (!test::have_shared()) return {};
  return read_mono(test::shared_dir() + "/reference/pesq/s1_16k_wb_identical.ref.flac");
}

std::vector<float> speech_8k() {
  if (!test::have_shared()) return {};
  return read_mono(test::shared_dir() + "/reference/pesq/s1_8k_nb_identical.ref.flac");
}

std::vector<float> with_noise(const std::vector<float>& x, double snr_db, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  double power = 0.0;
  for (float v : x) power += static_cast<double>(v) * v;
  power /= static_cast<double>(x.size());
  const float sigma = static_cast<float>(std::sqrt(power / std::pow(10.0, snr_db / 10.0)));
  std::vector<float> y(x);
  for (float& v : y) v += sigma * gauss(rng);
  return y;
}

double score(const std::vector<float>& ref, const std::vector<float>& deg, int rate,
             PesqMode mode) {
  return pesq(ref.data(), ref.size(), deg.data(), deg.size(), rate, mode).mos_lqo;
}

}  // namespace

TEST(Pesq, IdenticalSignalsScoreTheTop) {
  const std::vector<float> wb = speech_16k(), nb = speech_8k();
  if (wb.empty()) GTEST_SKIP() << "../shared is absent: no speech to score";
  const PesqResult r = pesq(wb.data(), wb.size(), wb.data(), wb.size(), 16000, PesqMode::wide_band);
  EXPECT_NEAR(r.raw_mos, 4.5, 1e-9);
  EXPECT_NEAR(r.mos_lqo, 4.6439, 1e-3);                                   // P.862.2 mapping of 4.5
  EXPECT_NEAR(score(nb, nb, 8000, PesqMode::narrow_band), 4.5486, 1e-3);  // P.862.1 of 4.5
  EXPECT_NEAR(pesq_mos_lqo(wb, wb, 16000, PesqMode::wide_band), r.mos_lqo, 1e-12);
}

TEST(Pesq, FallsWithNoiseAndStaysInRange) {
  const std::vector<float> x = speech_16k();
  if (x.empty()) GTEST_SKIP() << "../shared is absent: no speech to score";
  double previous = 5.0;
  for (double snr_db : {30.0, 20.0, 10.0, 0.0}) {
    const double s = score(x, with_noise(x, snr_db, 7), 16000, PesqMode::wide_band);
    std::printf("white noise at %4.0f dB SNR: PESQ-WB %.3f\n", snr_db, s);
    EXPECT_LT(s, previous) << snr_db << " dB";
    EXPECT_GE(s, 0.999);  // the mapping's floor
    previous = s;
  }
}

TEST(Pesq, IgnoresLevelAndConstantDelayOfTheDegradedSignal) {
  const std::vector<float> x = speech_16k();
  if (x.empty()) GTEST_SKIP() << "../shared is absent: no speech to score";
  const std::vector<float> noisy = with_noise(x, 15.0, 3);
  const double base = score(x, noisy, 16000, PesqMode::wide_band);
  std::vector<float> quiet(noisy);
  for (float& v : quiet) v *= 0.05f;  // -26 dB
  EXPECT_NEAR(score(x, quiet, 16000, PesqMode::wide_band), base, 0.005);
  // 80 ms later (the degraded signal is longer): found by the time alignment.
  std::vector<float> late(1280, 0.0f);
  late.insert(late.end(), noisy.begin(), noisy.end());
  const PesqResult r =
      pesq(x.data(), x.size(), late.data(), late.size(), 16000, PesqMode::wide_band);
  EXPECT_NEAR(r.mos_lqo, base, 0.05);
  ASSERT_FALSE(r.utterance_delays_samples.empty());
  for (long d : r.utterance_delays_samples) EXPECT_EQ(d, 1280);
}

TEST(Pesq, RejectsWhatItCannotScore) {
  std::vector<float> silent(16000, 0.0f), tone(16000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.1f * std::sin(0.2f * static_cast<float>(i));
  EXPECT_THROW(score(silent, tone, 16000, PesqMode::wide_band), Error);  // silent reference
  EXPECT_THROW(score(tone, silent, 16000, PesqMode::wide_band), Error);  // silent degraded
  EXPECT_THROW(score(tone, tone, 44100, PesqMode::wide_band), Error);    // rate
  EXPECT_THROW(score(tone, tone, 8000, PesqMode::wide_band), Error);     // wide-band needs 16 kHz
  const std::vector<float> short_signal(3999, 0.1f);                     // under 1/4 s at 16 kHz
  EXPECT_THROW(score(short_signal, short_signal, 16000, PesqMode::wide_band), Error);
  std::vector<float> bad(tone);
  bad[100] = std::nanf("");
  EXPECT_THROW(score(tone, bad, 16000, PesqMode::wide_band), Error);
  EXPECT_THROW(pesq_mos_lqo(tone, std::vector<float>(8000, 0.1f), 16000, PesqMode::wide_band),
               Error);
  try {
    score(silent, tone, 16000, PesqMode::wide_band);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reference"), std::string::npos) << e.what();
  }
}
