#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/resample.h"
#include "test_util.h"

using namespace denoise;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("denoise_io_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<float> sine(int64_t n, double freq, int rate, double amp = 0.5) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(amp * std::sin(2 * M_PI * freq * i / rate));
  return x;
}

}  // namespace

TEST(AudioIo, RoundTripKeepsSamplesRateAndChannels) {
  TempDir tmp;
  Audio a;
  a.sample_rate_hz = 44100;
  a.channels = {sine(5000, 440, 44100), sine(5000, 880, 44100, 0.25)};
  struct Case {
    std::string name;
    int format;
    double tolerance;
  };
  for (const auto& c : {Case{"f.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.0},
                        Case{"p16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 32768},
                        Case{"p24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 1.0 / 8388608},
                        Case{"p16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 1.0 / 32768}}) {
    write_audio(tmp / c.name, a, c.format);
    AudioReader r(tmp / c.name);
    EXPECT_EQ(r.info().format, c.format) << c.name;
    const Audio b = read_audio(tmp / c.name);
    EXPECT_EQ(b.sample_rate_hz, 44100);
    ASSERT_EQ(b.channels.size(), 2u);
    ASSERT_EQ(b.frames(), 5000);
    for (int ch = 0; ch < 2; ++ch)
      EXPECT_LE(test::max_abs_diff(a.channels[ch], b.channels[ch]), c.tolerance) << c.name;
  }
}

TEST(AudioIo, UncommittedWriterLeavesNothing) {
  TempDir tmp;
  AudioInfo info;
  info.sample_rate_hz = 16000;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  {
    AudioWriter w(tmp / "out.wav", info);
    const auto x = sine(1000, 100, 16000);
    w.write(x.data(), 1000);
  }  // destroyed without commit, as when an error is thrown mid-file
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(AudioIo, BadFilesAreClearErrors) {
  TempDir tmp;
  auto message = [](const std::string& path) {
    try {
      AudioReader r(path);
      std::vector<float> buf(1 << 16);
      while (r.read(buf.data(), static_cast<int64_t>(buf.size()) / r.info().channels) > 0) {
      }
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(tmp / "missing.wav").find("no such file"), std::string::npos);
  {
    std::FILE* f = std::fopen((tmp / "empty.wav").c_str(), "wb");
    std::fclose(f);
  }
  EXPECT_NE(message(tmp / "empty.wav").find("empty"), std::string::npos);
  {
    std::FILE* f = std::fopen((tmp / "junk.wav").c_str(), "wb");
    for (int i = 0; i < 4000; ++i) std::fputc((i * 7919) & 0xff, f);
    std::fclose(f);
  }
  const auto junk = message(tmp / "junk.wav");
  EXPECT_NE(junk.find("junk.wav"), std::string::npos);
  EXPECT_NE(junk.find("cannot read as audio"), std::string::npos);

  // NaN samples in a float WAV.
  Audio a;
  a.sample_rate_hz = 16000;
  a.channels = {sine(2000, 300, 16000)};
  a.channels[0][1234] = std::nanf("");
  write_audio(tmp / "nan.wav", a, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  const auto nan = message(tmp / "nan.wav");
  EXPECT_NE(nan.find("NaN"), std::string::npos) << nan;
  EXPECT_NE(nan.find("1234"), std::string::npos) << nan;
}

TEST(Resampler, SineSurvivesRoundTripAndLengthIsExact) {
  const int64_t n = 48000;
  const auto x = sine(n, 1000, 48000);
  const auto down = resample(x, 48000, 16000);
  ASSERT_EQ(down.size(), 16000u);
  const auto up = resample(down, 16000, 48000);
  ASSERT_EQ(up.size(), static_cast<size_t>(n));
  // Compare away from the ends (filter edges).
  std::vector<float> a(x.begin() + 2000, x.end() - 2000), b(up.begin() + 2000, up.end() - 2000);
  EXPECT_GE(test::si_sdr(a, b), 60.0);
  // And the 16 kHz signal is a 1 kHz sine at 16 kHz.
  const auto ref16 = sine(16000, 1000, 16000);
  std::vector<float> c(ref16.begin() + 500, ref16.end() - 500),
      d(down.begin() + 500, down.end() - 500);
  EXPECT_GE(test::si_sdr(c, d), 60.0);
}

TEST(Resampler, StreamingEqualsOneShot) {
  const auto x = test::white_noise(30000, 0.2, 4);
  const auto once = resample(x, 44100, 16000);
  Resampler r(1, 44100, 16000);
  std::vector<float> streamed;
  for (size_t i = 0; i < x.size(); i += 7000) {
    const size_t count = std::min<size_t>(7000, x.size() - i);
    r.process(x.data() + i, static_cast<int64_t>(count), i + count == x.size(), streamed);
  }
  streamed.resize(once.size(), 0.f);
  EXPECT_LE(test::max_abs_diff(once, streamed), 1e-5);
}
