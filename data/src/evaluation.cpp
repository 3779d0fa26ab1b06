#include "denoise/evaluation.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/file_pipeline.h"
#include "denoise/front_end.h"
#include "denoise/metrics.h"
#include "denoise/pesq.h"
#include "denoise/resample.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

// A clean reference below this RMS is treated as silent: every metric is relative to its
// energy, so scores against dither or digital silence would be meaningless numbers.
constexpr double kSilentRmsDbfs = -80;
// STOI needs 30 frames of 256 samples every 128 at 10 kHz (metrics.h): 256 + 29 * 128 samples.
constexpr double kMinStoiSeconds = (256.0 + 29 * 128) / 10000;
// STOI and ESTOI resample both signals to 10 kHz (metrics.h), with denoise::resample, which is
// the identity at 10 kHz. Resampling here once per signal, instead of twice per method in each
// call, gives the same scores and saves most of their cost (libsamplerate's best sinc).
constexpr int kStoiRateHz = 10000;

std::string format_number(double v, const char* format = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// The "oracle" method: the noisy spectrum times the ideal ratio mask sqrt(S^2 / (S^2 + N^2)),
// S and N the clean and noise (noisy - clean) magnitudes of the same bin, on a 20 ms sqrt-Hann
// STFT with 10 ms hops at the file's rate -- the model's front end, at any rate.
std::vector<float> ideal_ratio_masked(const std::vector<float>& noisy,
                                      const std::vector<float>& clean, int rate) {
  FrontEndConfig config;
  config.sample_rate_hz = rate;
  config.hop_length = static_cast<int>(std::lround(0.01 * rate));
  config.n_fft = 2 * config.hop_length;
  config.window = WindowType::kSqrtHann;
  FrontEnd front_end(config);
  const auto n = static_cast<int64_t>(noisy.size());
  Spectrogram x, s;
  front_end.analyze(noisy.data(), n, x);
  front_end.analyze(clean.data(), n, s);
  // The STFT is linear: the noise's spectrum is the noisy one minus the clean one.
  for (size_t k = 0; k < x.bins.size(); ++k) {
    const double speech = power(s.bins[k]), total = speech + power(x.bins[k] - s.bins[k]);
    x.bins[k] *= total > 0 ? static_cast<float>(std::sqrt(speech / total)) : 0.f;
  }
  return front_end.synthesize(x, n);
}

// Sum of a[i] * b[i + lag] over the indices where both exist.
double correlation_at(const std::vector<float>& a, const std::vector<float>& b, int64_t lag) {
  const int64_t n = static_cast<int64_t>(a.size()), m = static_cast<int64_t>(b.size());
  const int64_t lo = std::max<int64_t>(0, -lag), hi = std::min<int64_t>(n, m - lag);
  // Four partial sums: independent additions pipeline (a single double accumulator is
  // latency-bound), and keep the result independent of vectorisation.
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = lo;
  for (; i + 4 <= hi; i += 4) {
    s0 += static_cast<double>(a[i]) * b[i + lag];
    s1 += static_cast<double>(a[i + 1]) * b[i + 1 + lag];
    s2 += static_cast<double>(a[i + 2]) * b[i + 2 + lag];
    s3 += static_cast<double>(a[i + 3]) * b[i + 3 + lag];
  }
  for (; i < hi; ++i) s0 += static_cast<double>(a[i]) * b[i + lag];
  return (s0 + s1) + (s2 + s3);
}

// Means of consecutive `d`-sample blocks (a crude low-pass and decimation; enough to locate the
// correlation peak within a few blocks for speech, whose energy lies well below rate / (2 d)).
std::vector<float> block_means(const std::vector<float>& x, int64_t d) {
  std::vector<float> out(x.size() / d);
  for (size_t k = 0; k < out.size(); ++k) {
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += x[k * d + i];
    out[k] = static_cast<float>(s / d);
  }
  return out;
}

// The lag in [lo, hi] with the largest correlation; `best` / `best_value` hold the incumbent
// (a candidate must beat it strictly, so an earlier one, lag 0 first, wins ties).
void search_lags(const std::vector<float>& a, const std::vector<float>& b, int64_t lo, int64_t hi,
                 int64_t& best, double& best_value) {
  for (int64_t lag = lo; lag <= hi; ++lag) {
    const double v = correlation_at(a, b, lag);
    if (v > best_value) {
      best_value = v;
      best = lag;
    }
  }
}

double rms_dbfs(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  const double rms = x.empty() ? 0 : std::sqrt(s / x.size());
  return rms > 0 ? 20 * std::log10(rms) : -1000;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

nlohmann::json scores_json(const MethodScores& s) { return s; }

// The PESQ mode and rate for a file at `rate_hz`; false (with the reason) when none applies.
bool pesq_plan(PesqChoice choice, int rate_hz, PesqMode& mode, int& pesq_rate_hz,
               std::string& reason) {
  switch (choice) {
    case PesqChoice::off:
      return false;
    case PesqChoice::wide_band:
      if (rate_hz < 16000) {
        reason = "wide-band PESQ needs 16 kHz or more, the file is " + std::to_string(rate_hz) +
                 " Hz (use --pesq nb or auto)";
        return false;
      }
      break;
    case PesqChoice::narrow_band:
      mode = PesqMode::narrow_band;
      pesq_rate_hz = 8000;
      return true;
    case PesqChoice::automatic:
      break;
  }
  mode = rate_hz >= 16000 ? PesqMode::wide_band : PesqMode::narrow_band;
  pesq_rate_hz = rate_hz >= 16000 ? 16000 : 8000;
  return true;
}

}  // namespace

const char* pesq_choice_name(PesqChoice choice) {
  switch (choice) {
    case PesqChoice::narrow_band:
      return "nb";
    case PesqChoice::wide_band:
      return "wb";
    case PesqChoice::off:
      return "off";
    case PesqChoice::automatic:
      break;
  }
  return "auto";
}

PesqChoice parse_pesq_choice(const std::string& word) {
  for (PesqChoice c :
       {PesqChoice::automatic, PesqChoice::narrow_band, PesqChoice::wide_band, PesqChoice::off})
    if (word == pesq_choice_name(c)) return c;
  throw Error("PESQ mode '" + word + "' is not one of auto, nb, wb, off");
}

int64_t estimate_delay(const std::vector<float>& reference, const std::vector<float>& estimate,
                       int64_t max_lag) {
  if (reference.empty() || estimate.empty() || max_lag <= 0) return 0;
  const int64_t d = std::max<int64_t>(1, max_lag / 200);
  int64_t coarse = 0;
  if (d > 1) {
    const auto ref_c = block_means(reference, d), est_c = block_means(estimate, d);
    const int64_t m = (max_lag + d - 1) / d;
    double value = correlation_at(ref_c, est_c, 0);
    search_lags(ref_c, est_c, -m, m, coarse, value);
    coarse *= d;
  }
  int64_t best = 0;
  double best_value = correlation_at(reference, estimate, 0);
  const int64_t span = d > 1 ? 2 * d : max_lag;
  search_lags(reference, estimate, std::max(-max_lag, coarse - span),
              std::min(max_lag, coarse + span), best, best_value);
  return best_value > 0 ? best : 0;
}

std::vector<float> compensate_delay(const std::vector<float>& signal, int64_t delay) {
  const int64_t n = static_cast<int64_t>(signal.size());
  std::vector<float> out(signal.size(), 0.f);
  for (int64_t i = std::max<int64_t>(0, -delay); i < n && i + delay < n; ++i)
    out[i] = signal[i + delay];
  return out;
}

Evaluator::Evaluator(EvaluationOptions options) : options_(std::move(options)) {
  if (options_.methods.empty()) throw Error("evaluation: no methods to evaluate");
  const auto known = method_names();
  for (const auto& m : options_.methods) {
    if (m != "noisy" && m != "oracle" && std::find(known.begin(), known.end(), m) == known.end())
      throw Error("evaluation: unknown method '" + m + "'");
  }
}

FileScores Evaluator::evaluate_pair(const std::string& noisy_path,
                                    const std::string& clean_path, PairSignals* signals) const {
  const Audio noisy = read_audio(noisy_path);  // Error names the file and the reason
  const Audio clean = clean_path == noisy_path ? noisy : read_audio(clean_path);
  const int rate = noisy.sample_rate_hz;
  if (clean.sample_rate_hz != rate)
    throw Error(noisy_path + ": sample rate " + std::to_string(rate) + " Hz, but the clean file " +
                clean_path + " has " + std::to_string(clean.sample_rate_hz) + " Hz");
  const int64_t diff = std::llabs(noisy.frames() - clean.frames());
  const double diff_ms = 1000.0 * static_cast<double>(diff) / rate;
  if (diff_ms > options_.max_length_mismatch_ms)
    throw Error(noisy_path + ": length " + format_number(noisy.frames() / double(rate), "%.3f") +
                " s differs from the clean file's " +
                format_number(clean.frames() / double(rate), "%.3f") + " s by " +
                format_number(diff_ms, "%.1f") + " ms (more than " +
                format_number(options_.max_length_mismatch_ms) + " ms)");
  const int64_t n = std::min(noisy.frames(), clean.frames());
  const double seconds = static_cast<double>(n) / rate;
  if (seconds < kMinStoiSeconds)
    throw Error(noisy_path + ": too short for STOI (" + format_number(seconds, "%.3f") +
                " s; at least " + format_number(kMinStoiSeconds, "%.2f") + " s is needed)");

  std::vector<float> reference = mix_to_mono(clean.channels);
  std::vector<float> input = mix_to_mono(noisy.channels);
  reference.resize(n);
  input.resize(n);
  if (rms_dbfs(reference) < kSilentRmsDbfs)
    throw Error(clean_path + ": the clean reference is silent (RMS below " +
                format_number(kSilentRmsDbfs) + " dBFS); no metric is defined against it");

  if (signals) *signals = PairSignals{};
  FileScores out;
  out.noisy = noisy_path;
  out.clean = clean_path;
  out.identity = clean_path == noisy_path;
  out.sample_rate_hz = rate;
  out.samples = n;
  out.trimmed_samples = diff;
  const int64_t max_lag = std::llround(options_.max_delay_ms * 1e-3 * rate);
  const std::vector<float> reference_stoi = resample(reference, rate, kStoiRateHz);
  PesqMode pesq_mode = PesqMode::wide_band;
  int pesq_rate = 0;
  const bool with_pesq =
      pesq_plan(options_.pesq, rate, pesq_mode, pesq_rate, out.pesq_skipped_reason);
  if (!out.pesq_skipped_reason.empty())
    out.pesq_skipped_reason = noisy_path + ": no PESQ: " + out.pesq_skipped_reason;
  const std::vector<float> reference_pesq =
      with_pesq ? resample(reference, rate, pesq_rate) : std::vector<float>();
  for (const auto& method : options_.methods) {
    MethodScores s;
    std::vector<float> output;
    if (method == "noisy") {
      output = input;
    } else if (method == "oracle") {
      output = ideal_ratio_masked(input, reference, rate);
    } else {
      PipelineOptions po;
      po.method = method;
      po.method_options = options_.method_options;
      const auto start = std::chrono::steady_clock::now();
      try {
        output = denoise_channels({input}, rate, po)[0];
      } catch (const std::exception& e) {
        throw Error(noisy_path + ": " + method + " failed: " + e.what());
      }
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      s.rtf = elapsed / seconds;
      output.resize(n, 0.f);
    }
    if (!std::all_of(output.begin(), output.end(), [](float v) { return std::isfinite(v); }))
      throw Error(noisy_path + ": " + method + " produced non-finite samples");
    s.delay_samples = estimate_delay(reference, output, max_lag);
    if (s.delay_samples != 0) output = compensate_delay(output, s.delay_samples);
    try {
      s.si_sdr_db = si_sdr_db(reference, output);
      s.snr_db = snr_db(reference, output);
      s.seg_snr_db = segmental_snr_db(reference, output, rate);
      const std::vector<float> output_stoi = resample(output, rate, kStoiRateHz);
      s.stoi = stoi(reference_stoi, output_stoi, kStoiRateHz);
      s.estoi = estoi(reference_stoi, output_stoi, kStoiRateHz);
    } catch (const Error& e) {
      // Typically STOI after silence removal: fewer than 30 frames of speech.
      throw Error(noisy_path + ": cannot score " + method + ": " + e.what());
    }
    if (with_pesq && out.pesq_skipped_reason.empty()) {
      try {
        const std::vector<float> output_pesq = resample(output, rate, pesq_rate);
        s.pesq = pesq(reference_pesq.data(), reference_pesq.size(), output_pesq.data(),
                      output_pesq.size(), pesq_rate, pesq_mode)
                     .mos_lqo;
      } catch (const Error& e) {
        out.pesq_skipped_reason = noisy_path + ": no PESQ-" +
                                  (pesq_mode == PesqMode::wide_band ? "WB" : "NB") + " for " +
                                  method + ": " + e.what();
      }
    }
    out.methods.push_back(s);
    if (signals) signals->outputs.push_back(std::move(output));
  }
  if (with_pesq && out.pesq_skipped_reason.empty()) {
    out.pesq_mode = pesq_mode_name(pesq_mode);
  } else {
    for (MethodScores& s : out.methods) s.pesq = 0;
  }
  if (signals) {
    signals->sample_rate_hz = rate;
    signals->clean = std::move(reference);
  }
  return out;
}

double Evaluator::scored_seconds() const {
  double s = 0;
  for (const auto& f : files_) s += static_cast<double>(f.samples) / f.sample_rate_hz;
  return s;
}

std::vector<MethodSummary> Evaluator::summary() const {
  std::vector<MethodSummary> out;
  for (size_t m = 0; m < options_.methods.size(); ++m) {
    MethodSummary ms;
    ms.method = options_.methods[m];
    ms.files = static_cast<int64_t>(files_.size());
    for (size_t f = 0; f < files_.size(); ++f) {
      const MethodScores& s = files_[f].methods[m];
      ms.mean.si_sdr_db += s.si_sdr_db;
      ms.mean.snr_db += s.snr_db;
      ms.mean.seg_snr_db += s.seg_snr_db;
      ms.mean.stoi += s.stoi;
      ms.mean.estoi += s.estoi;
      ms.mean.rtf += s.rtf;
      ms.min_delay_samples =
          f == 0 ? s.delay_samples : std::min(ms.min_delay_samples, s.delay_samples);
      ms.max_delay_samples =
          f == 0 ? s.delay_samples : std::max(ms.max_delay_samples, s.delay_samples);
      if (s.delay_samples != 0) ++ms.files_delayed;
      if (files_[f].pesq_mode == "wb") {
        ms.pesq_wb += s.pesq;
        ++ms.pesq_wb_files;
      } else if (files_[f].pesq_mode == "nb") {
        ms.pesq_nb += s.pesq;
        ++ms.pesq_nb_files;
      }
    }
    if (ms.pesq_wb_files > 0) ms.pesq_wb /= static_cast<double>(ms.pesq_wb_files);
    if (ms.pesq_nb_files > 0) ms.pesq_nb /= static_cast<double>(ms.pesq_nb_files);
    if (ms.files > 0) {
      const double k = 1.0 / static_cast<double>(ms.files);
      ms.mean.si_sdr_db *= k;
      ms.mean.snr_db *= k;
      ms.mean.seg_snr_db *= k;
      ms.mean.stoi *= k;
      ms.mean.estoi *= k;
      ms.mean.rtf *= k;
    }
    out.push_back(ms);
  }
  return out;
}

nlohmann::json Evaluator::report() const {
  nlohmann::json j;
  j["methods"] = options_.methods;
  j["files_scored"] = files_.size();
  j["files_skipped"] = skipped_.size();
  j["seconds_scored"] = scored_seconds();
  j["max_delay_ms"] = options_.max_delay_ms;
  nlohmann::json mean = nlohmann::json::object();
  for (const auto& ms : summary()) {
    nlohmann::json m = scores_json(ms.mean);
    m.erase("delay_samples");
    m["files"] = ms.files;
    m["delay_samples"] = {{"min", ms.min_delay_samples},
                          {"max", ms.max_delay_samples},
                          {"files_delayed", ms.files_delayed}};
    if (ms.pesq_wb_files > 0) {
      m["pesq_wb"] = ms.pesq_wb;
      m["pesq_wb_files"] = ms.pesq_wb_files;
    }
    if (ms.pesq_nb_files > 0) {
      m["pesq_nb"] = ms.pesq_nb;
      m["pesq_nb_files"] = ms.pesq_nb_files;
    }
    mean[ms.method] = m;
  }
  j["mean"] = mean;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : files_) {
    nlohmann::json methods = nlohmann::json::object();
    for (size_t m = 0; m < options_.methods.size(); ++m) {
      nlohmann::json scores = scores_json(f.methods[m]);
      if (options_.pesq != PesqChoice::off) {
        const std::string key = f.pesq_mode.empty() ? std::string("pesq") : "pesq_" + f.pesq_mode;
        scores[key] = f.pesq_mode.empty() ? nlohmann::json() : nlohmann::json(f.methods[m].pesq);
      }
      methods[options_.methods[m]] = scores;
    }
    files.push_back(
        {{"noisy", f.noisy},
         {"clean", f.clean},
         {"identity", f.identity},
         {"sample_rate_hz", f.sample_rate_hz},
         {"samples", f.samples},
         {"trimmed_samples", f.trimmed_samples},
         {"pesq_mode", f.pesq_mode.empty() ? nlohmann::json() : nlohmann::json(f.pesq_mode)},
         {"methods", methods}});
  }
  j["files"] = files;
  j["skipped"] = skipped_;
  j["pesq"] = pesq_choice_name(options_.pesq);
  nlohmann::json pesq_skipped = nlohmann::json::array();
  for (const auto& f : files_)
    if (!f.pesq_skipped_reason.empty())
      pesq_skipped.push_back(
          {{"noisy", f.noisy}, {"clean", f.clean}, {"reason", f.pesq_skipped_reason}});
  j["pesq_skipped"] = pesq_skipped;
  return j;
}

std::string Evaluator::csv() const {
  std::ostringstream out;
  out << "noisy,clean,method,sample_rate_hz,samples,si_sdr_db,snr_db,seg_snr_db,stoi,estoi,rtf,"
         "delay_samples,pesq_mode,pesq\n";
  for (const auto& f : files_) {
    for (size_t m = 0; m < options_.methods.size(); ++m) {
      const MethodScores& s = f.methods[m];
      out << csv_field(f.noisy) << ',' << csv_field(f.clean) << ',' << options_.methods[m] << ','
          << f.sample_rate_hz << ',' << f.samples << ',' << format_number(s.si_sdr_db, "%.6g")
          << ',' << format_number(s.snr_db, "%.6g") << ',' << format_number(s.seg_snr_db, "%.6g")
          << ',' << format_number(s.stoi, "%.6g") << ',' << format_number(s.estoi, "%.6g") << ','
          << format_number(s.rtf, "%.6g") << ',' << s.delay_samples << ',' << f.pesq_mode << ','
          << (f.pesq_mode.empty() ? std::string() : format_number(s.pesq, "%.6g")) << '\n';
    }
  }
  return out.str();
}

}  // namespace denoise
