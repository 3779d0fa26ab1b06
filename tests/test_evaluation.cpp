// Evaluation: delay estimation and compensation, pair checks, scores, pairing for evaluate.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "denoise/audio_io.h"
#include "denoise/dataset.h"
#include "denoise/atomic_file.h"
#include "denoise/error.h"
#include "denoise/evaluation.h"
#include "test_util.h"

using namespace denoise;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(testing::TempDir()) /
            ("denoise_eval_" + std::to_string(::getpid()) + "_" + (info ? info->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_mono(const std::string& path, const std::vector<float>& x, int rate = 16000) {
  fs::create_directories(fs::path(path).parent_path());
  Audio a;
  a.sample_rate_hz = rate;
  a.channels = {x};
  write_audio(path, a);
}

// x delayed by `delay` samples (positive: later), zero-filled, same length.
std::vector<float> delayed(const std::vector<float>& x, int64_t delay) {
  std::vector<float> y(x.size(), 0.f);
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i)
    if (i - delay >= 0 && i - delay < static_cast<int64_t>(x.size())) y[i] = x[i - delay];
  return y;
}

std::vector<float> plus(std::vector<float> a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

}  // namespace

// A known delay is found at 16 and 48 kHz (where the coarse search works on 12-sample blocks and
// 37 is not a multiple of them), with noise on the delayed side, either sign.
TEST(Delay, KnownDelayFoundAndCompensated) {
  for (int rate : {16000, 48000}) {
    const auto clean = test::voiced_bursts(3 * rate, rate);
    const int64_t max_lag = rate / 20;  // 50 ms
    for (int64_t d : {37, -37, 0, 5}) {
      const auto est = plus(delayed(clean, d), test::white_noise(clean.size(), 0.03, 7));
      EXPECT_EQ(estimate_delay(clean, est, max_lag), d) << "rate " << rate << ", delay " << d;
    }
    // Compensation undoes the shift exactly where samples exist.
    const auto aligned = compensate_delay(delayed(clean, 37), 37);
    ASSERT_EQ(aligned.size(), clean.size());
    for (size_t i = 0; i + 37 < clean.size(); ++i) ASSERT_EQ(aligned[i], clean[i]) << i;
    for (size_t i = clean.size() - 37; i < clean.size(); ++i) ASSERT_EQ(aligned[i], 0.f);
    const auto back = compensate_delay(delayed(clean, -37), -37);
    for (size_t i = 37; i < clean.size(); ++i) ASSERT_EQ(back[i], clean[i]) << i;
  }
}

TEST(Delay, OutOfRangeAndSilentGiveBoundedOrZero) {
  const auto clean = test::voiced_bursts(32000, 16000);
  EXPECT_EQ(estimate_delay(clean, std::vector<float>(clean.size(), 0.f), 800), 0);
  EXPECT_EQ(estimate_delay({}, clean, 800), 0);
  // A delay beyond the range is not reported as a larger one.
  const int64_t d = estimate_delay(clean, delayed(clean, 2000), 800);
  EXPECT_LE(std::abs(d), 800);
}

// End to end on files: gating improves SI-SDR on stationary noise, classical methods have no
// delay, and a delayed noisy file shows its delay on every method.
TEST(Evaluator, ScoresPairsAndReportsDelay) {
  TempDir dir;
  const int rate = 16000;
  const auto clean = test::voiced_bursts(3 * rate, rate);
  const auto noisy = plus(clean, test::white_noise(clean.size(), 0.15, 3));
  write_mono(dir / "clean.wav", clean);
  write_mono(dir / "noisy.wav", noisy);
  write_mono(dir / "late.wav", delayed(noisy, 37));
  EvaluationOptions opt;
  opt.methods = {"noisy", "gate", "subtract"};
  Evaluator ev(opt);
  const FileScores f = ev.evaluate_pair(dir / "noisy.wav", dir / "clean.wav");
  ASSERT_EQ(f.methods.size(), 3u);
  EXPECT_GT(f.methods[1].si_sdr_db, f.methods[0].si_sdr_db + 3);
  for (const auto& s : f.methods) {
    EXPECT_EQ(s.delay_samples, 0);
    EXPECT_GT(s.stoi, 0.3);
    EXPECT_LE(s.stoi, 1.0);
  }
  EXPECT_EQ(f.methods[0].rtf, 0);
  EXPECT_GT(f.methods[1].rtf, 0);
  const FileScores late = ev.evaluate_pair(dir / "late.wav", dir / "clean.wav");
  for (size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(late.methods[m].delay_samples, 37) << opt.methods[m];
    // Compensated: the scores are those of the undelayed file, bar the 37 zero-filled samples.
    EXPECT_NEAR(late.methods[m].si_sdr_db, f.methods[m].si_sdr_db, 0.5) << opt.methods[m];
  }
  ev.add(f);
  ev.add(late);
  ev.skip("x.wav", "", "no partner");
  const auto j = ev.report();
  EXPECT_EQ(j["files_scored"], 2);
  EXPECT_EQ(j["files_skipped"], 1);
  EXPECT_EQ(j["mean"]["gate"]["delay_samples"]["max"], 37);
  EXPECT_EQ(j["mean"]["gate"]["delay_samples"]["files_delayed"], 1);
  EXPECT_EQ(j["files"][1]["methods"]["noisy"]["delay_samples"], 37);
  const std::string csv = ev.csv();
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 3);
}

TEST(Evaluator, OracleIsTheIdealRatioMaskCeilingAtAnyRate) {
  TempDir dir;
  for (const int rate : {16000, 44100}) {
    const auto clean = test::voiced_bursts(3 * rate, rate);
    const auto noisy = plus(clean, test::white_noise(clean.size(), 0.15, 3));
    const std::string tag = std::to_string(rate);
    write_mono(dir / ("clean" + tag + ".wav"), clean, rate);
    write_mono(dir / ("noisy" + tag + ".wav"), noisy, rate);
    EvaluationOptions opt;
    opt.methods = {"noisy", "gate", "oracle"};
    Evaluator ev(opt);
    const FileScores f =
        ev.evaluate_pair(dir / ("noisy" + tag + ".wav"), dir / ("clean" + tag + ".wav"));
    EXPECT_GT(f.methods[2].si_sdr_db, f.methods[1].si_sdr_db + 3) << rate;  // above the gate
    EXPECT_GT(f.methods[2].si_sdr_db, f.methods[0].si_sdr_db + 10) << rate;
    EXPECT_GT(f.methods[2].stoi, f.methods[0].stoi) << rate;
    EXPECT_EQ(f.methods[2].delay_samples, 0);
    EXPECT_EQ(f.methods[2].rtf, 0);
    // Nothing to remove: the mask is 1 wherever there is signal and the output is the input.
    const FileScores same =
        ev.evaluate_pair(dir / ("clean" + tag + ".wav"), dir / ("clean" + tag + ".wav"));
    EXPECT_GT(same.methods[2].si_sdr_db, 60) << rate;
  }
}

TEST(Evaluator, BadPairsThrowWithReasons) {
  TempDir dir;
  const auto clean = test::voiced_bursts(32000, 16000);
  write_mono(dir / "clean.wav", clean);
  auto longer = clean;
  longer.resize(clean.size() + 320, 0.f);  // 20 ms
  write_mono(dir / "long.wav", longer);
  auto slightly = clean;
  slightly.resize(clean.size() + 80, 0.f);  // 5 ms: trimmed
  write_mono(dir / "slightly.wav", slightly);
  write_mono(dir / "rate.wav", clean, 22050);
  write_mono(dir / "silent.wav", std::vector<float>(clean.size(), 0.f));
  write_mono(dir / "short.wav", std::vector<float>(clean.begin(), clean.begin() + 4800));
  { std::ofstream(dir / "text.wav") << "not audio\n"; }

  EvaluationOptions opt;
  opt.methods = {"noisy", "gate"};
  Evaluator ev(opt);
  auto reason = [&](const std::string& noisy, const std::string& clean_path) -> std::string {
    try {
      ev.evaluate_pair(noisy, clean_path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(reason(dir / "long.wav", dir / "clean.wav").find("differs"), std::string::npos);
  EXPECT_NE(reason(dir / "rate.wav", dir / "clean.wav").find("22050 Hz"), std::string::npos);
  EXPECT_NE(reason(dir / "clean.wav", dir / "silent.wav").find("silent"), std::string::npos);
  EXPECT_NE(reason(dir / "short.wav", dir / "short.wav").find("too short"), std::string::npos);
  EXPECT_NE(reason(dir / "text.wav", dir / "clean.wav").find("text.wav"), std::string::npos);
  const FileScores trimmed = ev.evaluate_pair(dir / "slightly.wav", dir / "clean.wav");
  EXPECT_EQ(trimmed.trimmed_samples, 80);
  EXPECT_EQ(trimmed.samples, static_cast<int64_t>(clean.size()));
  EvaluationOptions unknown;
  unknown.methods = {"noisy", "nope"};
  EXPECT_THROW(Evaluator{unknown}, Error);
}

// find_pairs uses the trainer's pairing and lists every unpaired file with its reason.
TEST(FindPairs, NoisyCleanFoldersWithUnpairedFiles) {
  TempDir dir;
  const auto x = test::voiced_bursts(8000, 16000);
  for (const char* name : {"a.wav", "b.wav", "only_noisy.wav"})
    write_mono(dir / ("noisy/" + std::string(name)), x);
  for (const char* name : {"a.wav", "b.wav", "only_clean.wav"})
    write_mono(dir / ("clean/" + std::string(name)), x);
  const PairListing l = find_pairs(dir.path().string());
  ASSERT_EQ(l.pairs.size(), 2u);
  EXPECT_EQ(fs::path(l.pairs[0].noisy).filename(), "a.wav");
  EXPECT_EQ(fs::path(l.pairs[0].clean).parent_path().filename(), "clean");
  ASSERT_EQ(l.unpaired.size(), 2u);
  EXPECT_NE(l.unpaired[0].path.find("only_noisy.wav"), std::string::npos);
  EXPECT_NE(l.unpaired[1].path.find("only_clean.wav"), std::string::npos);
  EXPECT_FALSE(l.unpaired[0].reason.empty());
  EXPECT_THROW(find_pairs((dir / "noisy")), Error);  // no layout inside
}

TEST(WriteFileAtomically, ReplacesAndLeavesNoTemporary) {
  TempDir dir;
  write_file_atomically(dir / "out.json", "one\n");
  write_file_atomically(dir / "out.json", "two\n");
  std::ifstream in(dir / "out.json");
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_THROW(write_file_atomically(dir / "missing/out.json", "x"), Error);
}
