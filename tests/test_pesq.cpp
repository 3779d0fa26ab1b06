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
