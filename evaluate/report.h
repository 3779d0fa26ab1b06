// evaluate --report DIR: an HTML page a person can read and listen to.
//
//   DIR/index.html            mean and per-file tables, the figures, audio players
//   DIR/metrics.png           one bar chart per metric, a bar per method
//   DIR/pair<K>.png           spectrograms of clean, noisy and each method's output (pair K)
//   DIR/audio/pair<K>_<method>.wav   what was scored (mono, delay-compensated), and the clean
//
// Every file is written to a temporary name and renamed into place.
#pragma once

#include <string>
#include <vector>

#include "denoise/evaluation.h"

namespace denoise {

class Report {
 public:
  // Creates `dir` (and its parents) if missing; throws denoise::Error when it cannot, or when it
  // names a file. Keeps the signals of up to `examples` pairs.
  Report(const std::string& dir, int examples);

  bool wants_more_examples() const { return static_cast<int>(examples_.size()) < max_examples_; }
  // Writes the pair's audio and spectrogram figure now, so that memory holds one pair at a time.
  void add_example(const FileScores& scores, const PairSignals& signals,
                   const std::vector<std::string>& methods);
  // Writes metrics.png and index.html.
  void finish(const Evaluator& evaluator);

 private:
  struct Example {
    std::string noisy, clean, figure;
    std::vector<std::string> audio;  // clean, then one per method
  };
  std::string dir_;
  int max_examples_;
  std::vector<Example> examples_;
};

}  // namespace denoise
