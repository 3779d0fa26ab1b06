// make_mixtures: writes noisy/clean pairs mixed from clean speech and noise the way `train` mixes
// them (the same MixOptions: SNR, level, rooms, bandwidth), as a noisy/ + clean/ folder that
// `evaluate --data` and `train --data` read. Used to score a model on speakers and noises held out
// of its training (scripts/train_default.sh).
//
//   make_mixtures --clean held_out_speech/ --noise held_out_noise/ -o mixtures/ --count 40
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <random>

#include <sndfile.h>

#include "denoise/audio_io.h"
#include "denoise/dataset.h"
#include "denoise/error.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{
      "Write noisy/clean pairs (16-bit WAV, noisy/ + clean/) mixed from clean speech and noise "
      "as train mixes them."};
  denoise::DataOptions o;
  std::string out;
  int count = 40;
  double seconds = 4.0;
  o.val_fraction = 0;
  o.mix.identity_share = 0;
  // The noise is what --noise names (and generated noise), as recorded, unless asked otherwise.
  o.mix.babble_share = 0;
  o.mix.rumble_share = 0;
  app.add_option("--clean", o.clean_dirs, "Clean speech folders")->required()->check(CLI::ExistingDirectory);
  app.add_option("--noise", o.noise_dirs, "Noise folders (none: generated noise only)")
      ->check(CLI::ExistingDirectory);
  app.add_option("-o,--out", out, "Output folder (created; must not hold noisy/ or clean/ yet)")
      ->required();
  app.add_option("--count", count, "Pairs to write")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--seconds", seconds, "Length of each pair, s")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 600.0));
  app.add_option("--rate", o.sample_rate_hz, "Sample rate, Hz")
      ->capture_default_str()
      ->check(CLI::Range(8000, 96000));
  app.add_option("--snr-min", o.mix.snr_min_db, "Lowest SNR, dB")->capture_default_str();
  app.add_option("--snr-max", o.mix.snr_max_db, "Highest SNR, dB")->capture_default_str();
  app.add_option("--reverb-share", o.mix.reverb_share, "Share with a synthetic room")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--bandlimit-share", o.mix.bandlimit_share, "Share low-passed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--rumble-share", o.mix.rumble_share, "Share whose noise is low-passed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--babble-share", o.mix.babble_share,
                 "Share whose noise is babble from other --clean files")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "Random seed (same seed, same files)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.crop_seconds = seconds;
  try {
    for (const char* sub : {"noisy", "clean"})
      if (fs::exists(fs::path(out) / sub))
        throw denoise::Error(out + "/" + sub + ": exists; choose a new output folder");
    fs::create_directories(fs::path(out) / "noisy");
    fs::create_directories(fs::path(out) / "clean");
    const denoise::TrainingData data(o);
    std::printf("from %lld speech files and %lld noise files (+ generated noise)\n",
                static_cast<long long>(data.summary().train_clean),
                static_cast<long long>(data.summary().train_noise));
    std::mt19937_64 rng(o.seed);
    for (int i = 0; i < count; ++i) {
      const denoise::Example ex = data.sample(rng);
      char name[32];
      std::snprintf(name, sizeof name, "mix%04d.wav", i + 1);
      denoise::Audio a;
      a.sample_rate_hz = o.sample_rate_hz;
      a.channels = {ex.noisy};
      denoise::write_audio((fs::path(out) / "noisy" / name).string(), a, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
      a.channels = {ex.clean};
      denoise::write_audio((fs::path(out) / "clean" / name).string(), a, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_mixtures: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %d pairs of %.1f s to %s\n", count, seconds, out.c_str());
  return 0;
}
