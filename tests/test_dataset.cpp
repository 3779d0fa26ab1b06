// Training data: layouts, pairing, checks, split, mixing, resampling, batching, generated noise.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "denoise/audio_io.h"
#include "denoise/dataset.h"
#include "denoise/error.h"
#include "denoise/front_end.h"
#include "test_util.h"

using namespace denoise;
namespace fs = std::filesystem;

namespace {

// A fresh folder per use, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(testing::TempDir()) /
            ("denoise_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
             (info ? info->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_wav(const fs::path& path, const std::vector<float>& x, int rate = 16000,
               int format = SF_FORMAT_WAV | SF_FORMAT_FLOAT, int channels = 1) {
  fs::create_directories(path.parent_path());
  Audio a;
  a.sample_rate_hz = rate;
  a.channels.assign(channels, x);
  write_audio(path.string(), a, format);
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<float> sine(int64_t n, double freq, int rate, double amp = 0.3) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(amp * std::sin(2 * M_PI * freq * i / rate));
  return x;
}

double energy(const std::vector<float>& x) {
  double e = 0;
  for (float v : x) e += double(v) * v;
  return e;
}

double rms_dbfs(const std::vector<float>& x) { return 10 * std::log10(energy(x) / x.size()); }

// SNR of an example: clean against what was added to it.
double snr_db(const Example& ex) {
  double noise = 0;
  for (size_t i = 0; i < ex.clean.size(); ++i) {
    const double d = double(ex.noisy[i]) - ex.clean[i];
    noise += d * d;
  }
  return 10 * std::log10(energy(ex.clean) / noise);
}

double peak(const std::vector<float>& x) {
  double p = 0;
  for (float v : x) p = std::max(p, double(std::abs(v)));
  return p;
}

double goertzel_power(const float* x, int64_t n, double freq, int rate) {
  const double c = 2 * std::cos(2 * M_PI * freq / rate);
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double s = x[i] + c * s1 - s2;
    s2 = s1, s1 = s;
  }
  return s1 * s1 + s2 * s2 - c * s1 * s2;
}

// Mean periodogram power per bin between lo_hz and hi_hz (Hann-windowed 1024-sample segments),
// in dB: a Welch estimate of the power spectral density of that band.
double band_density_db(const std::vector<float>& x, int rate, double lo_hz, double hi_hz) {
  constexpr int kSeg = 1024;
  std::vector<float> seg(kSeg);
  double sum = 0;
  int count = 0;
  for (size_t start = 0; start + kSeg <= x.size(); start += kSeg) {
    for (int i = 0; i < kSeg; ++i)
      seg[i] = static_cast<float>(x[start + i] * (0.5 - 0.5 * std::cos(2 * M_PI * i / kSeg)));
    for (int k = static_cast<int>(std::ceil(lo_hz * kSeg / rate)); k * rate <= hi_hz * kSeg; ++k) {
      sum += goertzel_power(seg.data(), kSeg, double(k) * rate / kSeg, rate);
      ++count;
    }
  }
  return 10 * std::log10(sum / count);
}

// Index of the candidate frequency that holds most of the power of x.
int dominant(const std::vector<float>& x, const std::vector<double>& candidates, int rate) {
  int best = -1;
  double best_power = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double p = goertzel_power(x.data(), x.size(), candidates[i], rate);
    if (p > best_power) best_power = p, best = static_cast<int>(i);
  }
  return best;
}

bool any_line_contains(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

DataOptions small_options() {
  DataOptions o;
  o.crop_seconds = 0.5;
  o.val_crop_seconds = 0.5;
  o.max_val_examples = 16;
  return o;
}

std::string error_of(const DataOptions& o) {
  try {
    TrainingData data(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layouts

TEST(KaggleLayout, FoundFromAllThreeFolderFormsWithIdentityAndMissingRows) {
  TempDir tmp;
  const fs::path unzipped = tmp / "noisyandcleanaudios";
  write_tiny_kaggle_dataset(unzipped.string(), 6, 1.0, 16000, 3);
  std::vector<std::vector<Example>> validations;
  for (const fs::path& dir : {unzipped, unzipped / "speaker_audios_new", tmp.path()}) {
    DataOptions o = small_options();
    o.data_dirs = {dir.string()};
    o.val_fraction = 0.3;
    TrainingData data(o);
    const DataSummary& s = data.summary();
    SCOPED_TRACE(dir.string() + "\n" + joined(s.warnings));
    EXPECT_EQ(s.train_pairs + s.val_pairs, 7);  // 6 pairs + the identity row
    EXPECT_GE(s.train_pairs, 1);
    EXPECT_EQ(s.identity_pairs, 1);
    EXPECT_EQ(s.skipped_missing, 1);
    EXPECT_EQ(s.skipped_unreadable + s.skipped_too_short + s.trimmed_mismatched, 0);
    EXPECT_NEAR(s.train_seconds + s.val_seconds, 7.0, 1e-9);
    ASSERT_EQ(s.sources.size(), 1u);
    EXPECT_EQ(s.sources[0], "kaggle:" + (unzipped / "speaker_audios_new").string());
    EXPECT_TRUE(any_line_contains(s.warnings, "missing_file.wav"));
    validations.push_back(data.validation());
  }
  // The split hashes paths relative to the dataset, so the folder form does not change it.
  for (size_t k = 1; k < validations.size(); ++k) {
    ASSERT_EQ(validations[k].size(), validations[0].size());
    for (size_t i = 0; i < validations[0].size(); ++i)
      EXPECT_EQ(validations[k][i].noisy, validations[0][i].noisy);
  }
  // The CSV may also sit inside speaker_audios_new.
  fs::rename(unzipped / "audios_meta_data.csv",
             unzipped / "speaker_audios_new" / "audios_meta_data.csv");
  DataOptions o = small_options();
  o.data_dirs = {unzipped.string()};
  TrainingData inside(o);
  EXPECT_EQ(inside.summary().train_pairs + inside.summary().val_pairs, 7);
  EXPECT_EQ(inside.summary().identity_pairs, 1);
  EXPECT_EQ(inside.summary().skipped_missing, 1);
}

TEST(KaggleLayout, CsvWithQuotesCrlfExtraColumnsAndLooseNames) {
  TempDir tmp;
  write_tiny_kaggle_dataset(tmp.path().string(), 3, 0.5, 16000, 5, "", false);
  // Columns in another order with extra ones, quoted fields (one with a comma), CRLF line ends,
  // names without extension or with a sub-path, a duplicate row.
  write_text(tmp / "audios_meta_data.csv",
             "\xEF\xBB\xBFid,\"clean_audio\",speaker,noisy_audio\r\n"
             "1,\"p001_001.wav\",\"Smith, J.\",p001_001_noisy\r\n"
             "2,p001_002,x,\"noisy_audios/p001_002_noisy.wav\"\r\n"
             "3,speaker_audios_new/clean_audios/p001_003.wav,y,p001_003_noisy.wav\r\n"
             "3,speaker_audios_new/clean_audios/p001_003.wav,y,p001_003_noisy.wav\r\n"
             "4,p001_004.wav,z,p001_004.wav\r\n");
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  TrainingData data(o);
  const DataSummary& s = data.summary();
  SCOPED_TRACE(joined(s.warnings));
  EXPECT_EQ(s.train_pairs + s.val_pairs, 4);
  EXPECT_EQ(s.identity_pairs, 1);
  EXPECT_EQ(s.skipped_missing, 0);
  EXPECT_TRUE(any_line_contains(s.warnings, "duplicate") ||
              any_line_contains(s.warnings, "repeat"));
}

TEST(KaggleLayout, CsvWithoutTheColumnsIsAnErrorNamingIt) {
  TempDir tmp;
  write_tiny_kaggle_dataset(tmp.path().string(), 2, 0.5, 16000, 5);
  write_text(tmp / "audios_meta_data.csv", "noisy,clean\na.wav,b.wav\n");
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  const std::string message = error_of(o);
  EXPECT_NE(message.find("audios_meta_data.csv"), std::string::npos) << message;
  EXPECT_NE(message.find("noisy_audio"), std::string::npos) << message;
}

TEST(PairedFolders, TrimsMismatchSkipsUnreadableShortAndUnmatched) {
  TempDir tmp;
  const int rate = 16000;
  const fs::path noisy = tmp / "noisy", clean = tmp / "clean";
  auto pair = [&](const std::string& name, double noisy_s, double clean_s) {
    write_wav(noisy / name, test::white_noise(std::llround(noisy_s * rate), 0.1, 1), rate);
    write_wav(clean / name, test::voiced_bursts(std::llround(clean_s * rate), rate), rate);
  };
  pair("a.wav", 1.0, 1.0);
  pair("sub/b.wav", 1.0, 1.0);  // sub-folders are searched
  pair("c.wav", 1.2, 1.0);      // 200 ms apart: trimmed, reported
  pair("d.wav", 1.005, 1.0);    // 5 ms apart: within one hop, trimmed silently
  pair("s.wav", 0.1, 0.1);      // too short
  write_text(noisy / "x.wav", "not audio at all");
  write_text(clean / "x.wav", "not audio at all");
  write_wav(noisy / "only_noisy.wav", test::white_noise(rate, 0.1, 2), rate);
  write_text(noisy / "README.txt", "ignored: not an audio extension");

  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  o.val_fraction = 0.25;
  TrainingData data(o);
  const DataSummary& s = data.summary();
  SCOPED_TRACE(joined(s.warnings));
  EXPECT_EQ(s.train_pairs + s.val_pairs, 4);
  EXPECT_EQ(s.trimmed_mismatched, 1);
  EXPECT_EQ(s.skipped_unreadable, 1);
  EXPECT_EQ(s.skipped_too_short, 1);
  EXPECT_EQ(s.skipped_missing, 1);  // only_noisy.wav has no partner
  EXPECT_EQ(s.identity_pairs, 0);
  // Every pair counts at its shorter side: 4 x 1.0 s.
  EXPECT_NEAR(s.train_seconds + s.val_seconds, 4.0, 1e-9);
  ASSERT_EQ(s.sources.size(), 1u);
  EXPECT_EQ(s.sources[0], "pairs:" + tmp.path().string());
  EXPECT_TRUE(any_line_contains(s.warnings, "c.wav"));
  EXPECT_FALSE(any_line_contains(s.warnings, "d.wav"));
  EXPECT_TRUE(any_line_contains(s.warnings, "x.wav"));
  EXPECT_TRUE(any_line_contains(s.warnings, "s.wav"));
  EXPECT_TRUE(any_line_contains(s.warnings, "only_noisy.wav"));
  // One line per kind.
  EXPECT_EQ(s.warnings.size(), 4u);
  for (const Example& ex : data.validation()) {
    EXPECT_EQ(ex.noisy.size(), 8000u);
    EXPECT_EQ(ex.clean.size(), 8000u);
  }
}

TEST(PairedFolders, VoiceBankNamesFoundInTheFolderOrItsParent) {
  TempDir tmp;
  const fs::path vb = tmp / "voicebank";
  for (const std::string set : {"trainset_28spk", "testset"}) {
    for (int i = 0; i < 3; ++i) {
      const std::string name = "p2" + std::to_string(i) + "_00" + std::to_string(i) + ".wav";
      write_wav(vb / ("noisy_" + set + "_wav") / name, test::white_noise(8000, 0.1, i), 16000);
      write_wav(vb / ("clean_" + set + "_wav") / name, test::voiced_bursts(8000, 16000), 16000);
    }
  }
  for (const fs::path& dir : {vb, tmp.path()}) {
    DataOptions o = small_options();
    o.data_dirs = {dir.string()};
    TrainingData data(o);
    EXPECT_EQ(data.summary().train_pairs + data.summary().val_pairs, 6) << dir;
    EXPECT_EQ(data.summary().sources.size(), 2u) << dir;
    EXPECT_EQ(data.summary().skipped_missing, 0) << dir;
  }
}

TEST(PairedFolders, UnknownLayoutOrMissingFolderIsAnErrorNamingIt) {
  TempDir tmp;
  write_text(tmp / "notes.txt", "nothing here");
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  std::string message = error_of(o);
  EXPECT_NE(message.find(tmp.path().string()), std::string::npos) << message;
  EXPECT_NE(message.find("noisy/ + clean/"), std::string::npos) << message;
  EXPECT_NE(message.find("audios_meta_data.csv"), std::string::npos) << message;

  o.data_dirs = {(tmp / "does_not_exist").string()};
  message = error_of(o);
  EXPECT_NE(message.find("does_not_exist"), std::string::npos) << message;

  o.data_dirs = {};
  o.clean_dirs = {tmp.path().string()};  // exists but holds no audio
  message = error_of(o);
  EXPECT_NE(message.find("no audio files"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------------
// Split

namespace {

// 30 clean files, each a sine at its own frequency, so that any crop tells which file it is.
struct SineFiles {
  static constexpr int kCount = 30;
  std::vector<double> freqs;
  explicit SineFiles(const fs::path& dir) {
    for (int i = 0; i < kCount; ++i) {
      freqs.push_back(300.0 + 50.0 * i);
      write_wav(dir / ("spk" + std::to_string(i % 3)) / ("utt_" + std::to_string(i) + ".wav"),
                sine(16000, freqs.back(), 16000), 16000);
    }
  }
  std::set<int> ids(const std::vector<Example>& examples) const {
    std::set<int> out;
    for (const auto& ex : examples) out.insert(dominant(ex.clean, freqs, 16000));
    return out;
  }
};

DataOptions sine_options(const fs::path& dir, uint64_t seed) {
  DataOptions o = small_options();
  o.clean_dirs = {dir.string()};
  o.val_fraction = 0.3;
  o.max_val_examples = 64;
  o.seed = seed;
  o.mix.identity_share = 0;
  return o;
}

}  // namespace

TEST(DatasetSplit, DeterministicDisjointAndSeedDependent) {
  TempDir tmp;
  const SineFiles files(tmp / "a");
  TrainingData data(sine_options(tmp / "a", 1));
  const DataSummary& s = data.summary();
  EXPECT_EQ(s.train_clean + s.val_clean, SineFiles::kCount);
  EXPECT_GE(s.val_clean, 3);
  EXPECT_LE(s.val_clean, 18);
  EXPECT_EQ(s.train_noise + s.val_noise, 0);

  // Validation covers exactly the held-out files (30 s of audio: 1 s files, 0.5 s crops).
  const std::set<int> val = files.ids(data.validation());
  EXPECT_EQ(static_cast<int64_t>(val.size()), s.val_clean);
  std::mt19937_64 rng(9);
  std::vector<Example> drawn;
  for (int i = 0; i < 400; ++i) drawn.push_back(data.sample(rng));
  const std::set<int> train = files.ids(drawn);
  EXPECT_EQ(static_cast<int64_t>(train.size()), s.train_clean);
  for (int id : train) EXPECT_EQ(val.count(id), 0u) << "file " << id << " is in both sets";

  // Same seed: same split and the very same validation set, also for a copy of the files in
  // another place (the hash is of paths relative to the source folder).
  fs::copy(tmp / "a", tmp / "b", fs::copy_options::recursive);
  for (const fs::path& dir : {tmp / "a", tmp / "b"}) {
    TrainingData again(sine_options(dir, 1));
    EXPECT_EQ(again.summary().val_clean, s.val_clean);
    ASSERT_EQ(again.validation().size(), data.validation().size());
    for (size_t i = 0; i < data.validation().size(); ++i) {
      EXPECT_EQ(again.validation()[i].clean, data.validation()[i].clean);
      EXPECT_EQ(again.validation()[i].noisy, data.validation()[i].noisy);
    }
  }
  // Another seed: another split.
  TrainingData other(sine_options(tmp / "a", 2));
  EXPECT_NE(files.ids(other.validation()), val);
}

TEST(DatasetSplit, KeepsOneFileOnEachSideWhenTheFractionWouldNot) {
  TempDir tmp;
  const SineFiles files(tmp.path());
  DataOptions o = sine_options(tmp.path(), 1);
  o.val_fraction = 1e-6;  // would hold out nothing
  TrainingData few(o);
  EXPECT_EQ(few.summary().val_clean, 1);
  EXPECT_EQ(files.ids(few.validation()).size(), 1u);
  o.val_fraction = 0.999999;  // would hold out everything
  TrainingData most(o);
  EXPECT_EQ(most.summary().train_clean, 1);
}

TEST(DatasetSplit, NoValidationFilesUsesHeldOutTrainingCrops) {
  TempDir tmp;
  const SineFiles files(tmp.path());
  DataOptions o = sine_options(tmp.path(), 1);
  o.val_fraction = 0;
  TrainingData data(o);
  EXPECT_EQ(data.summary().val_clean, 0);
  EXPECT_EQ(data.summary().train_clean, SineFiles::kCount);
  ASSERT_FALSE(data.validation().empty());
  EXPECT_TRUE(any_line_contains(data.summary().warnings, "validation"));
  for (const auto& ex : data.validation()) EXPECT_EQ(ex.clean.size(), 8000u);
  TrainingData again(o);
  ASSERT_EQ(again.validation().size(), data.validation().size());
  EXPECT_EQ(again.validation()[0].noisy, data.validation()[0].noisy);
}

// ---------------------------------------------------------------------------------------------
// Examples

namespace {

DataOptions speech_options(const fs::path& dir) {
  for (int i = 0; i < 4; ++i) {
    std::vector<float> x = test::voiced_bursts(3 * 16000, 16000);
    for (auto& v : x) v *= 0.5f + 0.25f * i;
    write_wav(dir / ("s" + std::to_string(i) + ".wav"), x, 16000);
  }
  DataOptions o;
  o.clean_dirs = {dir.string()};
  o.crop_seconds = 1.0;
  o.val_crop_seconds = 1.0;
  o.max_val_examples = 4;
  o.mix.identity_share = 0;
  return o;
}

}  // namespace

TEST(DatasetSample, LengthsSnrAndLevelOfMixedExamples) {
  TempDir tmp;
  DataOptions o = speech_options(tmp.path());
  o.mix.snr_min_db = o.mix.snr_max_db = 7.5;
  TrainingData data(o);
  EXPECT_EQ(data.crop_samples(), 16000);
  std::mt19937_64 rng(4);
  for (int i = 0; i < 40; ++i) {
    const Example ex = data.sample(rng);
    ASSERT_EQ(ex.noisy.size(), 16000u);
    ASSERT_EQ(ex.clean.size(), 16000u);
    EXPECT_NEAR(snr_db(ex), 7.5, 0.1);
    EXPECT_LE(peak(ex.noisy), 0.99 + 1e-6);
    const double level = rms_dbfs(ex.noisy);
    EXPECT_LE(level, o.mix.level_max_dbfs + 0.05);
    // Below the range only where the clip guard turned it down.
    if (peak(ex.noisy) < 0.989 && peak(ex.clean) < 0.989) {
      EXPECT_GE(level, o.mix.level_min_dbfs - 0.05);
    }
  }

  // A range: every SNR inside it, and spread over it.
  o.mix.snr_min_db = 0;
  o.mix.snr_max_db = 10;
  TrainingData ranged(o);
  double lo = 1e9, hi = -1e9;
  for (int i = 0; i < 60; ++i) {
    const double snr = snr_db(ranged.sample(rng));
    EXPECT_GE(snr, -0.1);
    EXPECT_LE(snr, 10.1);
    lo = std::min(lo, snr), hi = std::max(hi, snr);
  }
  EXPECT_LT(lo, 3.0);
  EXPECT_GT(hi, 7.0);

  // identity_share 1: noisy is the clean signal itself.
  o.mix.identity_share = 1;
  TrainingData identity(o);
  for (int i = 0; i < 5; ++i) {
    const Example ex = identity.sample(rng);
    EXPECT_EQ(ex.noisy, ex.clean);
    EXPECT_GT(energy(ex.clean), 0);
  }
}

TEST(DatasetSample, NoiseFilesShorterThanTheCropAreLooped) {
  TempDir tmp;
  DataOptions o = speech_options(tmp / "speech");
  write_wav(tmp / "noise" / "hiss.wav", test::white_noise(4800, 0.2, 3), 16000);  // 0.3 s
  o.noise_dirs = {(tmp / "noise").string()};
  o.val_fraction = 0;
  o.mix.generated_noise_share = 0;
  o.mix.snr_min_db = o.mix.snr_max_db = -2;
  // Filters' start-up transients would break the exact period.
  o.mix.bandlimit_share = 0;
  o.mix.rumble_share = 0;
  o.mix.babble_share = 0;
  TrainingData data(o);
  EXPECT_EQ(data.summary().train_noise, 1);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10; ++i) {
    const Example ex = data.sample(rng);
    ASSERT_EQ(ex.noisy.size(), 16000u);
    EXPECT_NEAR(snr_db(ex), -2.0, 0.1);
    // The 0.3 s noise repeats: the added noise is periodic with a period of 4800 samples.
    double diff = 0, total = 0;
    for (int k = 0; k + 4800 < 16000; ++k) {
      const double a = ex.noisy[k] - ex.clean[k], b = ex.noisy[k + 4800] - ex.clean[k + 4800];
      diff += (a - b) * (a - b), total += a * a;
    }
    EXPECT_LT(diff / total, 1e-6);
  }
}

// Energy of `x` above `hz` relative to its total, in dB (one FFT frame over the whole signal).
double energy_above_db(const std::vector<float>& x, double hz, int rate) {
  FrontEndConfig c;
  c.sample_rate_hz = rate;
  c.n_fft = static_cast<int>(x.size()) & ~1;
  c.hop_length = c.n_fft / 2;  // one frame is analysed; the hop only has to be valid
  c.center = false;
  FrontEnd fe(c);
  std::vector<std::complex<float>> bins(c.n_bins());
  fe.analyze_frame(x.data(), bins.data());
  double above = 0, total = 0;
  for (int b = 0; b < c.n_bins(); ++b) {
    const double p = power(bins[b]);
    total += p;
    if (b * static_cast<double>(rate) / c.n_fft > hz) above += p;
  }
  return 10 * std::log10(above / total + 1e-30);
}

TEST(DatasetSample, BandLimitingFiltersSpeechAndNoiseAndKeepsTheSnr) {
  TempDir tmp;
  DataOptions o = speech_options(tmp / "speech");
  o.val_fraction = 0;
  o.mix.generated_noise_share = 1;  // white noise among them: energy at every frequency
  o.mix.snr_min_db = o.mix.snr_max_db = 5;
  o.mix.reverb_share = 0;
  o.mix.bandlimit_share = 1;
  o.mix.bandlimit_min_hz = o.mix.bandlimit_max_hz = 2000;
  TrainingData data(o);
  std::mt19937_64 rng(8);
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    EXPECT_NEAR(snr_db(ex), 5.0, 0.1);  // the SNR within the band
    // 4th order: 24 dB per octave; an octave and a half above the cut-off is > 30 dB down.
    EXPECT_LT(energy_above_db(ex.noisy, 5700, 16000), -30);
    EXPECT_LT(energy_above_db(ex.clean, 5700, 16000), -30);
  }
  o.mix.bandlimit_share = 0;
  TrainingData wide(o);
  std::mt19937_64 rng2(8);
  double most = -100;
  for (int i = 0; i < 8; ++i)
    most = std::max(most, energy_above_db(wide.sample(rng2).noisy, 5700, 16000));
  EXPECT_GT(most, -20);  // without it, the mixtures do reach up there
}

TEST(DatasetSample, RumbleLowPassesTheNoiseOnlyAndKeepsTheSnr) {
  TempDir tmp;
  DataOptions o = speech_options(tmp / "speech");
  write_wav(tmp / "noise" / "white.wav", test::white_noise(48000, 0.1, 5), 16000);
  o.noise_dirs = {(tmp / "noise").string()};
  o.val_fraction = 0;
  o.mix.generated_noise_share = 0;
  o.mix.snr_min_db = o.mix.snr_max_db = 0;
  o.mix.reverb_share = o.mix.bandlimit_share = 0;
  o.mix.rumble_share = 1;
  o.mix.rumble_min_hz = o.mix.rumble_max_hz = 300;
  TrainingData data(o);
  std::mt19937_64 rng(12);
  double speech_above = -100;
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    EXPECT_NEAR(snr_db(ex), 0.0, 0.1);
    std::vector<float> noise(ex.noisy.size());
    for (size_t k = 0; k < noise.size(); ++k) noise[k] = ex.noisy[k] - ex.clean[k];
    // 300 Hz, 4th order: above 1.5 kHz (2.3 octaves) the noise is > 50 dB down.
    EXPECT_LT(energy_above_db(noise, 1500, 16000), -50);
    speech_above = std::max(speech_above, energy_above_db(ex.clean, 1500, 16000));
  }
  EXPECT_GT(speech_above, -30);  // the speech keeps its highs
}

// Share of the energy of `x` in a sinusoid of `hz` (its projection on the sine and cosine).
double tone_share(const std::vector<float>& x, double hz, int rate) {
  double c = 0, s = 0, total = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double w = 2 * M_PI * hz * static_cast<double>(k) / rate;
    c += x[k] * std::cos(w), s += x[k] * std::sin(w), total += static_cast<double>(x[k]) * x[k];
  }
  return 2 * (c * c + s * s) / static_cast<double>(x.size()) / total;
}

TEST(DatasetSample, TonesSitOnTheNoiseAndKeepTheSnr) {
  TempDir tmp;
  DataOptions o = speech_options(tmp / "speech");
  write_wav(tmp / "noise" / "white.wav", test::white_noise(48000, 0.1, 5), 16000);
  o.noise_dirs = {(tmp / "noise").string()};
  o.val_fraction = 0;
  o.mix.generated_noise_share = 0;
  o.mix.snr_min_db = o.mix.snr_max_db = 3;
  o.mix.reverb_share = o.mix.bandlimit_share = o.mix.rumble_share = o.mix.babble_share = 0;
  o.mix.tone_min_hz = o.mix.tone_max_hz = 100;
  o.mix.tone_min_db = o.mix.tone_max_db = 0;
  // Power at the fundamental over the mean power of 20 bins between the lines (60-95 Hz), in
  // dB, of the added noise.
  auto line_db = [](const Example& ex) {
    std::vector<float> noise(ex.noisy.size());
    for (size_t k = 0; k < noise.size(); ++k) noise[k] = ex.noisy[k] - ex.clean[k];
    double between = 0;
    for (int hz = 60; hz < 100; hz += 2)
      between += goertzel_power(noise.data(), noise.size(), hz, 16000) / 20;
    return 10 * std::log10(goertzel_power(noise.data(), noise.size(), 100, 16000) / between);
  };
  std::mt19937_64 rng(21);
  {
    TrainingData off(o);  // tone_share 0, the default
    for (int i = 0; i < 4; ++i) EXPECT_LT(line_db(off.sample(rng)), 10);
  }
  o.mix.tone_share = 1;
  TrainingData data(o);
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    EXPECT_NEAR(snr_db(ex), 3.0, 0.1);
    // The tone holds half the noise's power and its fundamental at least 4 % of the tone's;
    // white noise puts 1/8000 of its power in each 1 Hz bin.
    EXPECT_GT(line_db(ex), 15);
  }
  o.mix.tone_max_hz = 8000;
  EXPECT_THROW(TrainingData{o}, Error);
  o.mix.tone_max_hz = 100;
  o.mix.tone_share = 1.5;
  EXPECT_THROW(TrainingData{o}, Error);
}

TEST(DatasetSample, BabbleIsOtherSpeechAtTheSnrAndFallsBackWithOneFile) {
  TempDir tmp;
  // The noise file is a 5 kHz tone: babble must be made of the speech files, never of it.
  DataOptions o = speech_options(tmp / "speech");
  std::vector<float> tone(48000);
  for (size_t k = 0; k < tone.size(); ++k)
    tone[k] =
        static_cast<float>(0.1 * std::sin(2 * M_PI * 5000.0 * static_cast<double>(k) / 16000));
  write_wav(tmp / "noise" / "tone.wav", tone, 16000);
  o.noise_dirs = {(tmp / "noise").string()};
  o.val_fraction = 0;
  o.mix.generated_noise_share = 0;
  o.mix.snr_min_db = o.mix.snr_max_db = 3;
  o.mix.reverb_share = o.mix.bandlimit_share = o.mix.rumble_share = 0;
  o.mix.babble_share = 1;
  o.mix.babble_min_talkers = 2;
  o.mix.babble_max_talkers = 4;
  auto noise_of = [](const Example& ex) {
    std::vector<float> n(ex.noisy.size());
    for (size_t k = 0; k < n.size(); ++k) n[k] = ex.noisy[k] - ex.clean[k];
    return n;
  };
  TrainingData data(o);
  std::mt19937_64 rng(21);
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    EXPECT_NEAR(snr_db(ex), 3.0, 0.1);
    const std::vector<float> noise = noise_of(ex);
    EXPECT_LT(tone_share(noise, 5000, 16000), 1e-3);
    // Other crops at other offsets, not the target itself.
    double cross = 0;
    for (size_t k = 0; k < noise.size(); ++k) cross += noise[k] * ex.clean[k];
    EXPECT_LT(std::abs(cross) / std::sqrt(energy(noise) * energy(ex.clean)), 0.9);
  }
  // babble_share 0: the noise is the tone.
  o.mix.babble_share = 0;
  TrainingData plain(o);
  for (int i = 0; i < 4; ++i) EXPECT_GT(tone_share(noise_of(plain.sample(rng)), 5000, 16000), 0.99);
  // One speech file: nobody else to talk, so the tone is used.
  TempDir one;
  write_wav(one / "speech" / "s.wav", test::voiced_bursts(3 * 16000, 16000), 16000);
  o.clean_dirs = {(one / "speech").string()};
  o.mix.babble_share = 1;
  TrainingData alone(o);
  for (int i = 0; i < 4; ++i) EXPECT_GT(tone_share(noise_of(alone.sample(rng)), 5000, 16000), 0.99);

  o.mix.babble_min_talkers = 5;
  o.mix.babble_max_talkers = 4;
  EXPECT_THROW(TrainingData{o}, Error);
}

TEST(DatasetSample, ReverberationAddsATailAndKeepsSnrAndLevel) {
  TempDir tmp;
  DataOptions o = speech_options(tmp / "speech");
  o.val_fraction = 0;
  o.mix.snr_min_db = o.mix.snr_max_db = 10;
  o.mix.bandlimit_share = 0;
  o.mix.reverb_share = 1;
  o.mix.rt60_min_s = o.mix.rt60_max_s = 0.5;
  TrainingData data(o);
  std::mt19937_64 rng(9);
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    EXPECT_NEAR(snr_db(ex), 10.0, 0.1);
    const double level = rms_dbfs(ex.noisy);
    EXPECT_LE(level, o.mix.level_max_dbfs + 0.05);
  }
  // voiced_bursts has silent gaps; reverberation fills them: the quietest 10 ms of the target
  // is far louder, relative to its RMS, than in the dry signal. (From 0.2 s on: a crop that
  // starts in a gap has nothing earlier to reverberate.)
  auto quietest_db = [](const std::vector<float>& x) {
    double lo = 1e9;
    for (size_t k = 3200; k + 160 <= x.size(); k += 160) {
      const std::vector<float> w(x.begin() + k, x.begin() + k + 160);
      lo = std::min(lo, 10 * std::log10(energy(w) / 160 + 1e-12));
    }
    return lo - rms_dbfs(x);
  };
  o.mix.reverb_share = 0;
  TrainingData dry(o);
  std::mt19937_64 r1(3), r2(3);
  double wet_floor = 0, dry_floor = 0;
  for (int i = 0; i < 8; ++i) {
    wet_floor += quietest_db(data.sample(r1).clean) / 8;
    dry_floor += quietest_db(dry.sample(r2).clean) / 8;
  }
  EXPECT_GT(wet_floor, dry_floor + 10) << "wet " << wet_floor << " dB, dry " << dry_floor << " dB";
}

TEST(DatasetSample, PairsKeepAlignmentAndShareTheGain) {
  TempDir tmp;
  for (int i = 0; i < 3; ++i) {
    const auto clean = test::voiced_bursts(24000 + 4000 * i, 16000);
    std::vector<float> noisy(clean);
    for (auto& v : noisy) v *= 2.0f;  // exactly twice the clean side
    write_wav(tmp / "noisy" / ("f" + std::to_string(i) + ".wav"), noisy);
    write_wav(tmp / "clean" / ("f" + std::to_string(i) + ".wav"), clean);
  }
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  o.val_fraction = 0;
  o.mix.identity_share = 0;
  TrainingData data(o);
  std::mt19937_64 rng(6);
  for (int i = 0; i < 20; ++i) {
    const Example ex = data.sample(rng);
    ASSERT_EQ(ex.noisy.size(), 8000u);
    double worst = 0;
    for (size_t k = 0; k < ex.noisy.size(); ++k)
      worst = std::max(worst, double(std::abs(ex.noisy[k] - 2 * ex.clean[k])));
    EXPECT_LT(worst, 1e-6);
    const double level = rms_dbfs(ex.noisy);
    EXPECT_LE(level, o.mix.level_max_dbfs + 0.05);
    EXPECT_GE(level, o.mix.level_min_dbfs - 0.05);
  }
}

TEST(DatasetResample, Input22050HzStereoComesOutAt16000Hz) {
  TempDir tmp;
  for (int i = 0; i < 2; ++i) {
    const auto x = test::white_noise(33075, 0.1, 10 + i);  // 1.5 s at 22050 Hz
    write_wav(tmp / "noisy" / ("r" + std::to_string(i) + ".wav"), x, 22050,
              SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2);
    write_wav(tmp / "clean" / ("r" + std::to_string(i) + ".wav"), x, 22050,
              SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2);
  }
  DataOptions o;
  o.data_dirs = {tmp.path().string()};
  o.sample_rate_hz = 16000;
  o.crop_seconds = 3.0;  // longer than the files: zero-padded
  o.val_crop_seconds = 1.0;
  o.val_fraction = 0;
  o.mix.identity_share = 0;
  TrainingData data(o);
  EXPECT_NEAR(data.summary().train_seconds, 3.0, 1e-9);
  ASSERT_FALSE(data.validation().empty());
  EXPECT_EQ(data.validation()[0].clean.size(), 16000u);
  std::mt19937_64 rng(7);
  std::set<size_t> starts;
  for (int i = 0; i < 8; ++i) {
    const Example ex = data.sample(rng);
    ASSERT_EQ(ex.clean.size(), 48000u);
    size_t first = 0, last = ex.clean.size();
    while (first < last && ex.clean[first] == 0.f) ++first;
    while (last > first && ex.clean[last - 1] == 0.f) --last;
    // 1.5 s at 16 kHz = 24000 samples of audio, placed at a random offset.
    EXPECT_NEAR(double(last - first), 24000.0, 2.0);
    starts.insert(first);
  }
  EXPECT_GT(starts.size(), 1u);
}

TEST(DatasetSample, FileThatFailsToDecodeLaterIsDroppedNotThrown) {
  TempDir tmp;
  for (int i = 0; i < 4; ++i) {
    write_wav(tmp / "noisy" / ("f" + std::to_string(i) + ".wav"), test::white_noise(16000, 0.1, i));
    write_wav(tmp / "clean" / ("f" + std::to_string(i) + ".wav"),
              test::voiced_bursts(16000, 16000));
  }
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  o.val_fraction = 0;
  o.cache_mib = 0;  // decode on every use, so the damage below is seen
  TrainingData data(o);
  EXPECT_EQ(data.summary().train_pairs, 4);
  write_text(tmp / "clean" / "f1.wav", "damaged after the scan");
  fs::remove(tmp / "noisy" / "f2.wav");
  std::mt19937_64 rng(8);
  for (int i = 0; i < 50; ++i) {
    Example ex;
    ASSERT_NO_THROW(ex = data.sample(rng));
    ASSERT_EQ(ex.clean.size(), 8000u);
    EXPECT_GT(energy(ex.clean), 0);
  }
}

TEST(DatasetSample, CacheSizeDoesNotChangeTheExamples) {
  TempDir tmp;
  DataOptions o = speech_options(tmp.path());
  TrainingData cached(o);
  o.cache_mib = 0;
  TrainingData uncached(o);
  std::mt19937_64 a(11), b(11);
  for (int i = 0; i < 5; ++i) {
    const Example x = cached.sample(a), y = uncached.sample(b);
    EXPECT_EQ(x.noisy, y.noisy);
    EXPECT_EQ(x.clean, y.clean);
  }
}

// ---------------------------------------------------------------------------------------------
// Batches

TEST(BatchLoader, SameBatchesForAnyWorkerCountAndStartIndex) {
  TempDir tmp;
  write_tiny_kaggle_dataset(tmp.path().string(), 5, 1.0, 16000, 2);
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  o.crop_seconds = 0.25;
  TrainingData data(o);

  auto take = [&](int workers, uint64_t seed, int64_t first, int count) {
    BatchLoader loader(data, 3, workers, seed, first, 2);
    std::vector<Batch> out;
    for (int i = 0; i < count; ++i) out.push_back(loader.next());
    return out;
  };
  const auto one = take(1, 7, 0, 6);
  const auto three = take(3, 7, 0, 6);
  ASSERT_EQ(one.size(), 6u);
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].batch_size, 3);
    EXPECT_EQ(one[i].length, 4000);
    ASSERT_EQ(one[i].noisy.size(), 12000u);
    ASSERT_EQ(one[i].clean.size(), 12000u);
    EXPECT_EQ(one[i].noisy, three[i].noisy) << "batch " << i;
    EXPECT_EQ(one[i].clean, three[i].clean) << "batch " << i;
  }
  EXPECT_NE(one[0].noisy, one[1].noisy);
  // Resuming at batch 4 gives batches 4 and 5 of the run from 0.
  const auto resumed = take(2, 7, 4, 2);
  EXPECT_EQ(resumed[0].noisy, one[4].noisy);
  EXPECT_EQ(resumed[1].clean, one[5].clean);
  // Another seed, other batches.
  EXPECT_NE(take(1, 8, 0, 1)[0].noisy, one[0].noisy);
}

TEST(BatchLoader, DestructorJoinsWithoutNextAndBadArgumentsThrow) {
  TempDir tmp;
  write_tiny_kaggle_dataset(tmp.path().string(), 3, 0.5, 16000, 2);
  DataOptions o = small_options();
  o.data_dirs = {tmp.path().string()};
  o.crop_seconds = 0.25;
  TrainingData data(o);
  { BatchLoader idle(data, 4, 3, 1); }  // workers may be mid-batch or waiting for space
  {
    BatchLoader once(data, 2, 2, 1, 0, 1);
    EXPECT_EQ(once.next().batch_size, 2);
  }
  EXPECT_THROW(BatchLoader(data, 0, 1, 1), Error);
  EXPECT_THROW(BatchLoader(data, 1, 0, 1), Error);
}

// ---------------------------------------------------------------------------------------------
// Generated noise

TEST(GeneratedNoise, EveryKindFiniteUnitRmsAndDeterministic) {
  const auto kinds = generated_noise_kinds();
  EXPECT_EQ(kinds.size(), 5u);
  for (const auto& kind : kinds) {
    for (int rate : {8000, 16000, 48000}) {
      std::mt19937_64 rng(3), again(3);
      const auto x = generate_noise(kind, rate, rate, rng);
      ASSERT_EQ(x.size(), static_cast<size_t>(rate));
      for (float v : x) ASSERT_TRUE(std::isfinite(v)) << kind;
      EXPECT_NEAR(std::sqrt(energy(x) / x.size()), 1.0, 1e-3) << kind << " at " << rate;
      EXPECT_EQ(generate_noise(kind, rate, rate, again), x) << kind;
    }
    std::mt19937_64 rng(1);
    EXPECT_TRUE(generate_noise(kind, 0, 16000, rng).empty());
    EXPECT_EQ(generate_noise(kind, 7, 16000, rng).size(), 7u);
  }
  std::mt19937_64 rng(1);
  EXPECT_THROW(generate_noise("purple", 100, 16000, rng), Error);
}

TEST(GeneratedNoise, SpectraHaveTheirShapes) {
  const int rate = 16000;
  auto tilt_db = [&](const std::string& kind) {  // low band minus high band, dB per bin
    std::mt19937_64 rng(5);
    const auto x = generate_noise(kind, 8 * rate, rate, rng);
    return band_density_db(x, rate, 100, 300) - band_density_db(x, rate, 3000, 6000);
  };
  const double white = tilt_db("white"), pink = tilt_db("pink"), brown = tilt_db("brown");
  // 1/f gives 10*log10(4500/200) = 13.5 dB between the band centres, 1/f^2 twice that.
  EXPECT_LT(std::abs(white), 1.5);
  EXPECT_NEAR(pink, 13.5, 3.0);
  EXPECT_GT(brown, 22.0);
  EXPECT_GT(brown, pink + 8.0);

  // Hum: power at the mains frequency, not between the lines.
  std::mt19937_64 rng(2);
  const auto hum = generate_noise("hum", 2 * rate, rate, rng);
  const double p50 = goertzel_power(hum.data(), hum.size(), 50, rate);
  const double p60 = goertzel_power(hum.data(), hum.size(), 60, rate);
  const double between = goertzel_power(hum.data(), hum.size(), 77, rate);
  EXPECT_GT(10 * std::log10(std::max(p50, p60) / between), 30.0);

  // Band: most of the power within two octaves of its peak band.
  const auto band = generate_noise("band", 4 * rate, rate, rng);
  double best = -1e9, best_hz = 0;
  for (double hz = 150; hz < 7000; hz *= 1.25) {
    const double d = band_density_db(band, rate, hz, hz * 1.25);
    if (d > best) best = d, best_hz = hz;
  }
  EXPECT_GT(best - band_density_db(band, rate, std::min(best_hz * 4, 7000.0), 8000), 10.0);
  EXPECT_GT(best - band_density_db(band, rate, 20, std::max(best_hz / 4, 40.0)), 10.0);
}

TEST(GeneratedNoise, TonesAreUnitRmsLinesOnTheirFundamental) {
  const int rate = 16000;
  int bare = 0;
  for (int draw = 0; draw < 12; ++draw) {
    const double f0 = 40.0 * std::pow(10.0, draw / 12.0);  // 40-330 Hz
    std::mt19937_64 rng(draw), again(draw);
    const auto x = generate_tone(rate, rate, f0, rng);
    ASSERT_EQ(x.size(), static_cast<size_t>(rate));
    EXPECT_NEAR(std::sqrt(energy(x) / x.size()), 1.0, 0.02) << f0;
    EXPECT_EQ(generate_tone(rate, rate, f0, again), x);
    std::vector<float> w(x.size());  // Hann-windowed: no leakage between the lines
    for (size_t i = 0; i < x.size(); ++i)
      w[i] = static_cast<float>(x[i] * (0.5 - 0.5 * std::cos(2 * M_PI * i / x.size())));
    const double line = goertzel_power(w.data(), w.size(), f0, rate);
    const double between = goertzel_power(w.data(), w.size(), 1.5 * f0, rate);
    EXPECT_GT(10 * std::log10(line / between), 30.0) << f0;
    // Nothing from 2 kHz up; a bare sine has nothing at its second harmonic either (a series'
    // second harmonic holds at least (0.4 x 0.3)^2 of the fundamental's power).
    EXPECT_LT(energy_above_db(x, 2050, rate), -40) << f0;
    if (goertzel_power(w.data(), w.size(), 2 * f0, rate) < 1e-4 * line) ++bare;
  }
  EXPECT_GT(bare, 0);
  EXPECT_LT(bare, 12);
  std::mt19937_64 rng(1);
  EXPECT_TRUE(generate_tone(0, rate, 100, rng).empty());
  EXPECT_THROW(generate_tone(100, rate, 0, rng), Error);
  EXPECT_THROW(generate_tone(100, rate, 7300, rng), Error);
}

// ---------------------------------------------------------------------------------------------
// Tiny dataset writer, JSON

TEST(TinyKaggleDataset, DeterministicSixteenBitPairsAtSnr0To10) {
  TempDir tmp;
  write_tiny_kaggle_dataset((tmp / "a").string(), 4, 1.5, 22050, 9);
  write_tiny_kaggle_dataset((tmp / "b").string(), 4, 1.5, 22050, 9);
  write_tiny_kaggle_dataset((tmp / "c").string(), 4, 1.5, 22050, 10, "", false);
  std::ifstream csv(tmp / "a" / "audios_meta_data.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 7u);  // header, 4 pairs, identity, missing
  EXPECT_EQ(lines[0], "noisy_audio,clean_audio");
  EXPECT_EQ(lines[5], "p001_005.wav,p001_005.wav");
  EXPECT_EQ(lines[6].rfind("missing_file.wav,", 0), 0u);
  int pairs = 0;
  for (size_t i = 1; i <= 4; ++i) {
    const auto comma = lines[i].find(',');
    const std::string noisy_name = lines[i].substr(0, comma),
                      clean_name = lines[i].substr(comma + 1);
    const fs::path root = tmp / "a" / "speaker_audios_new";
    AudioReader reader((root / "noisy_audios" / noisy_name).string());
    EXPECT_EQ(reader.info().format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    EXPECT_EQ(reader.info().sample_rate_hz, 22050);
    EXPECT_EQ(reader.info().frames, 33075);
    const Audio noisy = read_audio((root / "noisy_audios" / noisy_name).string());
    const Audio clean = read_audio((root / "clean_audios" / clean_name).string());
    const Audio same =
        read_audio((tmp / "b" / "speaker_audios_new" / "noisy_audios" / noisy_name).string());
    const Audio other =
        read_audio((tmp / "c" / "speaker_audios_new" / "noisy_audios" / noisy_name).string());
    EXPECT_EQ(noisy.channels[0], same.channels[0]);
    EXPECT_NE(noisy.channels[0], other.channels[0]);
    const double snr = snr_db(Example{noisy.channels[0], clean.channels[0]});
    EXPECT_GE(snr, -0.2);
    EXPECT_LE(snr, 10.2);
    // Speech-like: pauses (quiet 20 ms frames) between louder syllables.
    const auto& c = clean.channels[0];
    int quiet = 0, loud = 0;
    for (size_t f = 0; f + 441 <= c.size(); f += 441) {
      const double e = energy(std::vector<float>(c.begin() + f, c.begin() + f + 441)) / 441;
      quiet += e<1e-7, loud += e> 1e-4;
    }
    EXPECT_GT(quiet, 3);
    EXPECT_GT(loud, 20);
    ++pairs;
  }
  EXPECT_EQ(pairs, 4);
  std::ifstream csv_c(tmp / "c" / "audios_meta_data.csv");
  int rows = 0;
  for (std::string line; std::getline(csv_c, line);) ++rows;
  EXPECT_EQ(rows, 6);  // no missing row
}

TEST(DatasetJson, MixOptionsRoundTripAndStrictReading) {
  MixOptions m;
  m.snr_min_db = -3;
  m.identity_share = 0.2;
  nlohmann::json j = m;
  const MixOptions back = j.get<MixOptions>();
  EXPECT_EQ(back.snr_min_db, -3);
  EXPECT_EQ(back.identity_share, 0.2);
  EXPECT_EQ(back.level_max_dbfs, m.level_max_dbfs);

  nlohmann::json missing = j;
  missing.erase("snr_max_db");
  EXPECT_THROW(missing.get<MixOptions>(), Error);
  nlohmann::json unknown = j;
  unknown["snr_mean_db"] = 3;
  EXPECT_THROW(unknown.get<MixOptions>(), Error);
  nlohmann::json wrong = j;
  wrong["identity_share"] = "a lot";
  EXPECT_THROW(wrong.get<MixOptions>(), Error);
  nlohmann::json fraction = j;
  fraction["babble_max_talkers"] = 4.5;
  EXPECT_THROW(fraction.get<MixOptions>(), Error);
  m.babble_max_talkers = 11;
  EXPECT_EQ(nlohmann::json(m).get<MixOptions>().babble_max_talkers, 11);
  m.tone_share = 0.25;
  m.tone_max_hz = 300;
  EXPECT_EQ(nlohmann::json(m).get<MixOptions>().tone_share, 0.25);
  EXPECT_EQ(nlohmann::json(m).get<MixOptions>().tone_max_hz, 300);

  DataSummary s;
  s.train_pairs = 5;
  s.warnings = {"w"};
  const nlohmann::json js = s;
  EXPECT_EQ(js.at("train_pairs"), 5);
  EXPECT_EQ(js.at("warnings")[0], "w");
  EXPECT_EQ(js.size(), 15u);
}

// ---------------------------------------------------------------------------------------------
// Real data from ../shared

TEST(SharedData, ValentiniPairsAndRealSpeechWithRealNoise) {
  const fs::path data = fs::path(test::shared_dir()) / "data";
  if (!test::have_shared() || !fs::is_directory(data / "pairs" / "valentini_train_sample"))
    GTEST_SKIP() << "../shared/data is absent: real-data checks skipped";
  DataOptions o;
  o.data_dirs = {(data / "pairs" / "valentini_train_sample").string()};
  o.crop_seconds = 1.0;
  o.val_crop_seconds = 2.0;
  TrainingData pairs(o);
  const DataSummary& s = pairs.summary();
  EXPECT_EQ(s.train_pairs + s.val_pairs, 6);
  EXPECT_GE(s.val_pairs, 1);
  EXPECT_EQ(s.skipped_missing + s.skipped_unreadable + s.skipped_too_short, 0);
  EXPECT_NEAR(s.train_seconds + s.val_seconds, 29.0, 2.0);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 5; ++i) {
    const Example ex = pairs.sample(rng);
    ASSERT_EQ(ex.noisy.size(), 16000u);
    EXPECT_GT(energy(ex.clean), 0);
  }

  DataOptions m;
  m.clean_dirs = {(data / "speech" / "arctic").string()};
  m.noise_dirs = {(data / "noise" / "speech_commands").string()};
  m.crop_seconds = 1.0;
  m.val_crop_seconds = 1.0;
  m.mix.identity_share = 0;
  TrainingData mixed(m);
  EXPECT_EQ(mixed.summary().train_clean + mixed.summary().val_clean, 7);
  EXPECT_EQ(mixed.summary().train_noise + mixed.summary().val_noise, 6);
  for (int i = 0; i < 10; ++i) {
    const Example ex = mixed.sample(rng);
    ASSERT_EQ(ex.noisy.size(), 16000u);
    for (float v : ex.noisy) ASSERT_TRUE(std::isfinite(v));
    const double snr = snr_db(ex);
    EXPECT_GE(snr, m.mix.snr_min_db - 0.1);
    // Measured over the whole crop, the SNR can only be lower than the drawn one where the crop
    // holds zero padding; these files are longer than the crop.
    EXPECT_LE(snr, m.mix.snr_max_db + 0.1);
  }
}
