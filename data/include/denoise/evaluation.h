// Objective evaluation of denoising methods on noisy/clean pairs (the `evaluate` program).
//
//   denoise::EvaluationOptions opt;              // methods "noisy", "subtract", "gate", ...
//   denoise::Evaluator ev(opt);
//   for (const auto& p : denoise::find_pairs("pairs/").pairs) {
//     try { ev.add(ev.evaluate_pair(p.noisy, p.clean)); }
//     catch (const denoise::Error& e) { ev.skip(p.noisy, p.clean, e.what()); }
//   }
//   nlohmann::json j = ev.report();               // per file, means, delays, skipped files
//
// Per pair: both files are read whole and mixed to mono; they must have one sample rate and
// lengths within 10 ms (the longer is then trimmed). Each method denoises the noisy signal at the
// file's own rate through denoise_channels() (the same path as `infer`), timed; its output's
// constant delay against the clean reference is estimated by cross-correlation within
// +-max_delay_ms, compensated (shift and zero-fill) and reported, then SI-SDR, SNR, segmental
// SNR, STOI and ESTOI are computed (denoise/metrics.h). "noisy" is the unprocessed input.
// "oracle" is not a denoiser but a ceiling: the noisy spectrum times the ideal ratio mask
// sqrt(S^2 / (S^2 + N^2)), computed from the clean reference on the model's kind of STFT (20 ms
// sqrt-Hann, 10 ms hops) -- about the best any method that scales the noisy STFT's bins can do.
// A pair that cannot be scored for every method is skipped as a whole, so that every method's
// mean is over the same files.
// PESQ (denoise/pesq.h), unless turned off: wide-band (P.862.2) for files at 16 kHz and above,
// resampled to 16 kHz, narrow-band (P.862 + P.862.1) below, resampled to 8 kHz; or the mode asked
// for. A file PESQ cannot score (too short, too little speech, a silent output, wide-band asked of
// 8 kHz material) keeps its other metrics; its PESQ is left out for every method, with the
// reason, so that PESQ means are over the same files too.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "denoise/denoiser.h"

namespace denoise {

// Which PESQ to compute: by the file's rate, one mode for every file, or none.
enum class PesqChoice { automatic, narrow_band, wide_band, off };
// "auto", "nb", "wb", "off" (both ways; parse throws denoise::Error for another word).
const char* pesq_choice_name(PesqChoice choice);
PesqChoice parse_pesq_choice(const std::string& word);

struct EvaluationOptions {
  // "noisy" (the input, unprocessed), "oracle" (the ideal ratio mask, a ceiling) and any name
  // make_denoiser knows.
  std::vector<std::string> methods = {"noisy", "subtract", "gate", "gate-nonstationary"};
  MethodOptions method_options;  // model_path for "unet"
  double max_delay_ms = 50;      // delay search range, either side
  double max_length_mismatch_ms = 10;
  PesqChoice pesq = PesqChoice::automatic;
};

// Scores of one method on one file. rtf: processing seconds per second of audio (0 for noisy).
// delay_samples > 0: the output lagged the clean reference by that many samples (at the file's
// rate) and was shifted earlier before scoring.
// pesq: MOS-LQO in the file's PESQ mode (FileScores::pesq_mode); 0 where PESQ was not scored.
struct MethodScores {
  double si_sdr_db = 0, snr_db = 0, seg_snr_db = 0, stoi = 0, estoi = 0, rtf = 0;
  int64_t delay_samples = 0;
  double pesq = 0;  // not in the JSON macro: reported as pesq_wb / pesq_nb by Evaluator
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MethodScores, si_sdr_db, snr_db, seg_snr_db, stoi, estoi, rtf,
                                   delay_samples)

struct FileScores {
  std::string noisy, clean;
  bool identity = false;  // a clean -> clean pair
  int sample_rate_hz = 0;
  int64_t samples = 0;                // scored length (after trimming)
  int64_t trimmed_samples = 0;        // removed from the longer side (<= 10 ms)
  std::vector<MethodScores> methods;  // in EvaluationOptions::methods order
  std::string pesq_mode;              // "wb", "nb", or empty when PESQ was not scored
  std::string pesq_skipped_reason;    // why not, when PESQ was asked for but could not be scored
};

struct SkippedFile {
  std::string noisy, clean, reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SkippedFile, noisy, clean, reason)

// Mean over scored files of one method, with the range of its delays.
struct MethodSummary {
  std::string method;
  MethodScores mean;  // mean.delay_samples is unused (0); see the delay fields
  int64_t files = 0;
  int64_t min_delay_samples = 0, max_delay_samples = 0;
  int64_t files_delayed = 0;  // files whose delay was non-zero
  // PESQ means over the files scored in each mode.
  double pesq_wb = 0, pesq_nb = 0;
  int64_t pesq_wb_files = 0, pesq_nb_files = 0;
};

// Estimated delay of `estimate` against `reference` in samples (positive: `estimate` lags), the
// lag in [-max_lag, max_lag] maximising their cross-correlation. Cost is bounded at about
// 2 (n / d) (max_lag / d) + n (4 d) multiply-adds: a coarse search on d-sample block means
// (d = max(1, max_lag / 200)) then a full-rate search within +-2d of its best lag; lag 0 wins
// ties. Empty or silent signals give 0.
int64_t estimate_delay(const std::vector<float>& reference, const std::vector<float>& estimate,
                       int64_t max_lag);
// `signal` shifted `delay` samples earlier (later when negative), zero-filled, same length.
std::vector<float> compensate_delay(const std::vector<float>& signal, int64_t delay);

// The signals behind one pair's scores (for reports): the clean reference and each method's output
// as scored (mono, trimmed, delay-compensated), in EvaluationOptions::methods order.
struct PairSignals {
  int sample_rate_hz = 0;
  std::vector<float> clean;
  std::vector<std::vector<float>> outputs;
};

class Evaluator {
 public:
  // Checks the method names (throws denoise::Error for an unknown one); "unet" must have been
  // registered (load_model_methods()) by the caller.
  explicit Evaluator(EvaluationOptions options);

  const EvaluationOptions& options() const { return options_; }

  // Scores one pair; throws denoise::Error with a one-line reason (naming the file) when the pair
  // cannot be scored: unreadable, rate or length mismatch, silent reference, too short for STOI,
  // a method failing. Thread-compatible (no shared state is changed).
  // With `signals`, also keeps what was scored.
  FileScores evaluate_pair(const std::string& noisy, const std::string& clean,
                           PairSignals* signals = nullptr) const;

  void add(FileScores scores) { files_.push_back(std::move(scores)); }
  void skip(const std::string& noisy, const std::string& clean, const std::string& reason) {
    skipped_.push_back({noisy, clean, reason});
  }

  const std::vector<FileScores>& files() const { return files_; }
  const std::vector<SkippedFile>& skipped() const { return skipped_; }
  double scored_seconds() const;
  std::vector<MethodSummary> summary() const;  // one per method, in options().methods order

  // {"methods": [...], "files_scored", "files_skipped", "seconds_scored",
  //  "mean": {method: {metric: value, ..., "files", "delay_samples": {min, max, files_delayed}}},
  //  "files": [{noisy, clean, identity, sample_rate_hz, samples, trimmed_samples,
  //             "methods": {method: {metric: value, ..., "delay_samples"}}}],
  //  "skipped": [{noisy, clean, reason}]}
  // plus "pesq": the choice ("auto", ...), "pesq_skipped": [{noisy, clean, reason}], per file
  // "pesq_mode" ("wb", "nb" or null) and per method "pesq_wb" or "pesq_nb" (null when not
  // scored), and in each mean "pesq_wb" / "pesq_nb" with "pesq_wb_files" / "pesq_nb_files" for
  // the modes that scored files.
  // CSV: two more columns, pesq_mode and pesq (empty when not scored).
  nlohmann::json report() const;
  // One row per (file, method) after a header line; RFC 4180 quoting of paths.
  std::string csv() const;

 private:
  EvaluationOptions options_;
  std::vector<FileScores> files_;
  std::vector<SkippedFile> skipped_;
};

}  // namespace denoise
