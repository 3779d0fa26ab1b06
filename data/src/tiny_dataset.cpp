// write_tiny_kaggle_dataset: a small dataset in the Kaggle layout for tests and first runs.
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "denoise/audio_io.h"
#include "denoise/dataset.h"
#include "denoise/error.h"
#include "denoise/resample.h"
#include "random_util.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Formant-like spectral envelope: three resonance peaks (F1-F3 of a vowel) over a -6 dB/octave
// tilt, the shape of a voiced speech spectrum.
struct Vowel {
  double f[3], bandwidth[3], gain[3];
  double at(double hz) const {
    double a = 0.02;
    for (int k = 0; k < 3; ++k) {
      const double d = (hz - f[k]) / bandwidth[k];
      a += gain[k] / (1.0 + d * d);
    }
    return a * 200.0 / std::max(hz, 200.0);
  }
};

// Speech-like signal: voiced syllables of 150-300 ms whose pitch glides within 100-250 Hz,
// 10-20 harmonics shaped by a random vowel envelope, separated by short pauses and now and then
// a longer one. Not speech, but it has what a denoiser keys on: harmonic structure, moving
// formants, onsets and gaps.
std::vector<float> synthetic_speech(int64_t n, int rate_hz, std::mt19937_64& rng) {
  std::vector<float> out(n, 0.f);
  int64_t t = static_cast<int64_t>(detail::uniform(rng, 0.05, 0.2) * rate_hz);
  double phase = 0;
  while (t < n) {
    const auto length = static_cast<int64_t>(detail::uniform(rng, 0.15, 0.30) * rate_hz);
    const double f0_start = detail::uniform(rng, 100, 250);
    const double f0_end = std::clamp(f0_start * detail::uniform(rng, 0.75, 1.3), 100.0, 250.0);
    const int harmonics = 10 + static_cast<int>(detail::uniform_index(rng, 11));
    const Vowel vowel{{detail::uniform(rng, 300, 850), detail::uniform(rng, 900, 2300),
                       detail::uniform(rng, 2400, 3200)},
                      {80, 120, 180},
                      {1.0, detail::uniform(rng, 0.4, 0.9), detail::uniform(rng, 0.1, 0.4)}};
    const double amplitude = detail::uniform(rng, 0.5, 1.0);
    for (int64_t i = 0; i < length && t + i < n; ++i) {
      const double x = static_cast<double>(i) / length;
      const double f0 = f0_start + (f0_end - f0_start) * (0.5 - 0.5 * std::cos(kPi * x));
      phase += 2 * kPi * f0 / rate_hz;
      double v = 0;
      for (int h = 1; h <= harmonics && h * f0 < 0.45 * rate_hz; ++h)
        v += vowel.at(h * f0) * std::sin(h * phase);
      out[t + i] = static_cast<float>(amplitude * std::sin(kPi * x) * v);
    }
    const double pause = detail::uniform01(rng) < 0.25 ? detail::uniform(rng, 0.2, 0.4)
                                                       : detail::uniform(rng, 0.03, 0.12);
    t += length + static_cast<int64_t>(pause * rate_hz);
  }
  return out;
}

void scale_to_rms(std::vector<float>& x, double target) {
  const double r = detail::rms(x);
  if (r <= 0) return;
  const auto g = static_cast<float>(target / r);
  for (auto& v : x) v *= g;
}

std::vector<float> speech_from_file(const fs::path& path, int64_t n, int rate_hz) {
  const Audio a = read_audio(path.string());
  std::vector<float> x = resample(mix_to_mono(a.channels), a.sample_rate_hz, rate_hz);
  x.resize(n, 0.f);  // cut to length, or pad a short file with silence
  return x;
}

std::vector<fs::path> speech_files(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("speech folder " + dir + ": no such folder");
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && it->path().filename().string().rfind('.', 0) != 0 &&
        is_audio_extension(it->path().extension().string()))
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error("speech folder " + dir + ": no audio files in it");
  return files;
}

std::string utterance_name(int i) {
  char name[32];
  std::snprintf(name, sizeof(name), "p%03d_%03d", i / 5 + 1, i % 5 + 1);
  return name;
}

void write_wav16(const fs::path& path, const std::vector<float>& x, int rate_hz) {
  Audio a;
  a.sample_rate_hz = rate_hz;
  a.channels = {x};
  write_audio(path.string(), a, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
}

}  // namespace

void write_tiny_kaggle_dataset(const std::string& dir, int pairs, double seconds, int rate_hz,
                               uint64_t seed, const std::string& speech_dir, bool missing_row) {
  if (pairs < 1)
    throw Error("tiny dataset: pairs must be >= 1 (got " + std::to_string(pairs) + ")");
  if (!(seconds >= 0.25 && seconds <= 600))
    throw Error("tiny dataset: seconds must be within 0.25-600 (got " + std::to_string(seconds) +
                ")");
  if (rate_hz < kMinSampleRateHz || rate_hz > kMaxSampleRateHz)
    throw Error("tiny dataset: rate must be within 8000-96000 Hz (got " + std::to_string(rate_hz) +
                ")");
  const fs::path root(dir);
  const fs::path noisy_dir = root / "speaker_audios_new" / "noisy_audios";
  const fs::path clean_dir = root / "speaker_audios_new" / "clean_audios";
  std::error_code ec;
  fs::create_directories(noisy_dir, ec);
  if (!ec) fs::create_directories(clean_dir, ec);
  if (ec)
    throw Error("tiny dataset: cannot create folders under " + dir + " (" + ec.message() + ")");

  const std::vector<fs::path> real =
      speech_dir.empty() ? std::vector<fs::path>{} : speech_files(speech_dir);
  std::mt19937_64 rng(seed);
  const auto n = static_cast<int64_t>(std::llround(seconds * rate_hz));
  const auto kinds = generated_noise_kinds();
  std::string csv = "noisy_audio,clean_audio\n";
  // pairs noisy/clean pairs, then one clean file used only by the identity row.
  for (int i = 0; i <= pairs; ++i) {
    std::vector<float> clean = real.empty() ? synthetic_speech(n, rate_hz, rng)
                                            : speech_from_file(real[i % real.size()], n, rate_hz);
    scale_to_rms(clean, 0.05);  // about -26 dBFS, room for the noise below full scale
    const std::string name = utterance_name(i);
    if (i == pairs) {
      write_wav16(clean_dir / (name + ".wav"), clean, rate_hz);
      csv += name + ".wav," + name + ".wav\n";
      break;
    }
    // Noise: two generated kinds in random proportion, at 0-10 dB SNR.
    const std::string& kind_a = kinds[detail::uniform_index(rng, kinds.size())];
    const std::string& kind_b = kinds[detail::uniform_index(rng, kinds.size())];
    std::vector<float> noise = generate_noise(kind_a, n, rate_hz, rng);
    const std::vector<float> other = generate_noise(kind_b, n, rate_hz, rng);
    const double mix = detail::uniform(rng, 0.2, 0.8);
    for (int64_t k = 0; k < n; ++k)
      noise[k] = static_cast<float>(mix * noise[k] + (1 - mix) * other[k]);
    const double snr_db = detail::uniform(rng, 0, 10);
    scale_to_rms(noise, detail::rms(clean) / std::pow(10.0, snr_db / 20));
    std::vector<float> noisy(n);
    for (int64_t k = 0; k < n; ++k) noisy[k] = clean[k] + noise[k];
    double peak = 0;
    for (int64_t k = 0; k < n; ++k)
      peak = std::max({peak, std::abs(1.0 * noisy[k]), std::abs(1.0 * clean[k])});
    if (peak > 0.99) {
      const auto g = static_cast<float>(0.99 / peak);
      for (int64_t k = 0; k < n; ++k) noisy[k] *= g, clean[k] *= g;
    }
    // Noisy files carry a suffix: a CSV row with two equal names means an identity pair.
    write_wav16(noisy_dir / (name + "_noisy.wav"), noisy, rate_hz);
    write_wav16(clean_dir / (name + ".wav"), clean, rate_hz);
    csv += name + "_noisy.wav," + name + ".wav\n";
  }
  if (missing_row) csv += "missing_file.wav," + utterance_name(0) + ".wav\n";

  // The CSV goes in last and by rename, so a reader never sees rows for files not yet written.
  const fs::path csv_path = root / "audios_meta_data.csv";
  const fs::path temp = root / ".audios_meta_data.csv.tmp";
  {
    std::ofstream out(temp, std::ios::binary);
    out << csv;
    out.close();
    if (!out) throw Error(temp.string() + ": cannot write the CSV file");
  }
  fs::rename(temp, csv_path, ec);
  if (ec) throw Error(csv_path.string() + ": cannot write the CSV file (" + ec.message() + ")");
}

}  // namespace denoise
