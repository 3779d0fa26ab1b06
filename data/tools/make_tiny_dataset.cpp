// make_tiny_dataset: writes a small noisy/clean dataset in the Kaggle "noisyandcleanaudios"
// layout (speaker_audios_new/{noisy_audios,clean_audios}/ + audios_meta_data.csv), for tests and
// for a first try of `train` without downloading anything.
//
//   make_tiny_dataset /tmp/tiny                     8 pairs of 2 s, generated speech
//   make_tiny_dataset /tmp/tiny --speech voices/    real speech cut to length, generated noise
#include <CLI/CLI.hpp>
#include <iostream>

#include "denoise/dataset.h"
#include "denoise/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Write a tiny noisy/clean dataset in the Kaggle layout (16-bit WAV)."};
  std::string dir, speech;
  int pairs = 8, rate = 16000;
  double seconds = 2.0;
  uint64_t seed = 1;
  bool no_missing_row = false;
  app.add_option("DIR", dir, "Output folder (created if needed)")->required();
  app.add_option("--pairs", pairs, "Number of noisy/clean pairs")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--seconds", seconds, "Length of each file in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.25, 600.0));
  app.add_option("--rate", rate, "Sample rate in Hz")
      ->capture_default_str()
      ->check(CLI::Range(8000, 96000));
  app.add_option("--seed", seed, "Random seed (same seed, same files)")->capture_default_str();
  app.add_option("--speech", speech, "Folder of clean speech to use instead of generated speech")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--no-missing-row", no_missing_row,
               "Leave out the CSV row that names a missing file (missing_file.wav)");
  CLI11_PARSE(app, argc, argv);
  try {
    denoise::write_tiny_kaggle_dataset(dir, pairs, seconds, rate, seed, speech, !no_missing_row);
  } catch (const std::exception& e) {
    std::cerr << "make_tiny_dataset: " << e.what() << "\n";
    return 1;
  }
  std::cout << "wrote " << pairs << " pairs of " << seconds << " s at " << rate
            << " Hz, 1 identity row" << (no_missing_row ? "" : " and 1 row naming a missing file")
            << " to " << dir << "\n";
  return 0;
}
