// The project's figures, built from plot.h panels: spectrograms for people to look at (infer
// --plot, evaluate --report), the gain a method applied, the stationary gate's noise threshold,
// and training curves.
//
// Display spectrograms use their own STFT (Hann windows of about 32 ms, 75 % overlap) whatever the
// method analysed with, so that pictures of different methods and rates compare directly.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "denoise/plot.h"

namespace denoise::figures {

struct DisplaySpectrogram {
  std::vector<float> magnitude;  // frames x bins, frame-major, linear |X|
  long frames = 0;
  int bins = 0;
  double seconds_per_frame = 0, hz_per_bin = 0;
  float peak() const;  // largest magnitude (0 for silence)
};
// `mono` at `rate_hz`; at most `max_seconds` from the start are analysed.
DisplaySpectrogram display_spectrogram(const std::vector<float>& mono, int rate_hz,
                                       double max_seconds = 120);

// Magnitude in dB relative to `reference` (e.g. the noisy input's peak, so that every panel of a
// figure shares one scale), shown over `range_db` below it.
plot::HeatmapPanel db_panel(const DisplaySpectrogram& s, float reference, const std::string& title,
                            double range_db = 80);
// The gain a method applied, |output| / |input| per bin, in [0, 1]; bins where the input is more
// than 80 dB below its peak show 1 (nothing there to remove). Both spectrograms must come from
// signals at one rate; the shorter length is used.
plot::HeatmapPanel gain_panel(const DisplaySpectrogram& input, const DisplaySpectrogram& output,
                              const std::string& title);
// A per-frequency curve in dB (the stationary gate's threshold).
plot::LinePanel threshold_panel(const std::vector<double>& threshold_db, double hz_per_bin,
                                const std::string& title);

// Training and validation curves from the lines of a training log (train's <stem>.log.jsonl):
// loss per step (training and validation) and the validation SI-SDR improvement.
plot::Figure training_curves(const std::vector<nlohmann::json>& log, const std::string& title);
// Reads `log_path` (JSON lines; unreadable lines are skipped) and writes training_curves() to
// `png_path`.
void write_training_curves(const std::string& log_path, const std::string& png_path,
                           const std::string& title);

}  // namespace denoise::figures
