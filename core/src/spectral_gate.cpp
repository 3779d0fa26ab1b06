#include "denoise/spectral_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "denoise/error.h"
#include "denoise/stream.h"
#include "vector_math.h"

namespace denoise {
namespace {

// numpy's float64 eps, added to magnitudes before dB as noisereduce's _amp_to_db does.
constexpr double kEps = std::numeric_limits<double>::epsilon();
// noisereduce floors each frequency's dB at its maximum minus this (top_db).
constexpr double kTopDb = 80.0;

FrontEndConfig gate_front_end(int n_fft, int hop, int sample_rate_hz) {
  FrontEndConfig c;
  c.sample_rate_hz = sample_rate_hz;
  c.n_fft = n_fft;
  c.hop_length = hop;
  c.window = WindowType::kHann;
  c.center = true;
  c.validate();
  return c;
}

// Half-widths of noisereduce's smoothing kernel (its n_grad_freq / n_grad_time); a value of 1 in
// both turns smoothing off there, as in noisereduce.
void smoothing_widths(const GateOptions& o, int sample_rate_hz, int& bins, int& frames) {
  const double bin_hz = sample_rate_hz / (o.n_fft / 2.0);
  const double hop_ms = 1000.0 * o.hop_length / sample_rate_hz;
  bins = o.freq_mask_smooth_hz > 0 ? static_cast<int>(o.freq_mask_smooth_hz / bin_hz) : 1;
  frames = o.time_mask_smooth_ms > 0 ? static_cast<int>(o.time_mask_smooth_ms / hop_ms) : 1;
  if (bins < 1)
    throw Error("gate: --freq-smooth-hz must be at least " +
                std::to_string(static_cast<int>(bin_hz)) + " Hz at this rate and FFT size");
  if (frames < 1)
    throw Error("gate: --time-smooth-ms must be at least " +
                std::to_string(static_cast<int>(hop_ms)) + " ms at this rate and hop");
  if (bins == 1 && frames == 1) bins = frames = 0;
}

void check_common(const GateOptions& o) {
  // Written so that NaN fails too (every comparison with NaN is false).
  auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };
  if (!in(o.prop_decrease, 0, 1)) throw Error("gate: --prop-decrease must be in [0, 1]");
  if (o.padding_samples < 0 || o.padding_samples > (1 << 22))
    throw Error("gate: --padding must be in [0, 4194304] samples");
  if (!in(o.n_std_thresh_stationary, 0, 100)) throw Error("gate: --n-std must be in [0, 100]");
  if (!in(o.freq_mask_smooth_hz, 0, 48000))
    throw Error("gate: --freq-smooth-hz must be in [0, 48000]");
  if (!in(o.time_mask_smooth_ms, 0, 10000))
    throw Error("gate: --time-smooth-ms must be in [0, 10000]");
  if (!in(o.time_constant_s, 0.01, 10))
    throw Error("gate-nonstationary: --time-constant-s must be in [0.01, 10]");
  if (!in(o.thresh_n_mult_nonstationary, 0, 1000))
    throw Error("gate-nonstationary: --thresh-n-mult must be in [0, 1000]");
  if (!in(o.sigmoid_slope_nonstationary, 0, 1000))
    throw Error("gate-nonstationary: --sigmoid-slope must be in [0, 1000]");
}

}  // namespace

namespace {

// Frequency smoothing of kRows frames at once: triangle = box(nb+1) * box(nb+1), done with
// prefix sums; zeros outside [0, bins). Each row's sums are the same double-precision sums in the
// same order as one row alone would have; the rows are interleaved (bin-major, kRows values per
// bin) only so that their independent running sums overlap in the CPU instead of each waiting on
// its own previous addition. prefix: (bins + 1) * kRows values, box: (bins + nb) * kRows,
// prefix2: (bins + nb + 1) * kRows (scratch).
template <int kRows>
void smooth_rows_triangular(float* const* rows, int bins, int nb, double* prefix, double* box,
                            double* prefix2) {
  const double norm = 1.0 / ((nb + 1.0) * (nb + 1.0));
  for (int r = 0; r < kRows; ++r) prefix[r] = 0;
  for (int f = 0; f < bins; ++f)
    for (int r = 0; r < kRows; ++r)
      prefix[(f + 1) * kRows + r] = prefix[f * kRows + r] + rows[r][f];
  // box[i] = sum_{j=0..nb} x[i-j] for i in [0, bins + nb)
  for (int i = 0; i < bins + nb; ++i) {
    const double* hi = prefix + std::min(i + 1, bins) * kRows;
    const double* lo = prefix + std::max(0, i - nb) * kRows;
    for (int r = 0; r < kRows; ++r) box[i * kRows + r] = hi[r] - lo[r];
  }
  for (int r = 0; r < kRows; ++r) prefix2[r] = 0;
  for (int i = 0; i < bins + nb; ++i)
    for (int r = 0; r < kRows; ++r)
      prefix2[(i + 1) * kRows + r] = prefix2[i * kRows + r] + box[i * kRows + r];
  // out[f] = sum_{j=0..nb} box[f+j]
  for (int f = 0; f < bins; ++f)
    for (int r = 0; r < kRows; ++r)
      rows[r][f] =
          static_cast<float>((prefix2[(f + nb + 1) * kRows + r] - prefix2[f * kRows + r]) * norm);
}

// One frame's frequency smoothing (the live path, a frame at a time).
void smooth_row_triangular(float* row, int bins, int nb, double* prefix, double* box,
                           double* prefix2) {
  smooth_rows_triangular<1>(&row, bins, nb, prefix, box, prefix2);
}

}  // namespace

void smooth_mask_triangular(std::vector<float>& mask, int64_t frames, int bins, int half_bins,
                            int half_frames, bool causal, std::vector<float>& scratch) {
  if (half_bins <= 0 && half_frames <= 0) return;
  // Frequency: the triangle on each frame.
  if (half_bins > 0) {
    constexpr int kRows = 4;
    std::vector<double> prefix((bins + 1) * kRows), box((bins + half_bins + 1) * kRows),
        prefix2((bins + half_bins + 2) * kRows);
    int64_t t = 0;
    for (; t + kRows <= frames; t += kRows) {
      float* rows[kRows];
      for (int r = 0; r < kRows; ++r) rows[r] = mask.data() + (t + r) * bins;
      smooth_rows_triangular<kRows>(rows, bins, half_bins, prefix.data(), box.data(),
                                    prefix2.data());
    }
    for (; t < frames; ++t)
      smooth_row_triangular(mask.data() + t * bins, bins, half_bins, prefix.data(), box.data(),
                            prefix2.data());
  }
  // Time: direct weights (few taps), vectorised across bins.
  if (half_frames > 0) {
    const int nt = half_frames;
    std::vector<float> weights;  // for offsets k = -nt..nt (or -nt..0 when causal)
    double wsum = 0;
    const int k_hi = causal ? 0 : nt;
    for (int k = -nt; k <= k_hi; ++k) {
      weights.push_back(static_cast<float>(nt + 1 - std::abs(k)));
      wsum += nt + 1 - std::abs(k);
    }
    for (auto& w : weights) w = static_cast<float>(w / wsum);
    scratch.resize(static_cast<size_t>(frames) * bins);
    std::copy(mask.begin(), mask.begin() + frames * bins, scratch.begin());
    const std::vector<float>& src = scratch;
    for (int64_t t = 0; t < frames; ++t) {
      float* out = mask.data() + t * bins;
      std::fill(out, out + bins, 0.f);
      for (int k = -nt; k <= k_hi; ++k) {
        const int64_t s = t + k;
        if (s < 0 || s >= frames) continue;
        const float w = weights[k + nt];
        const float* in = src.data() + s * bins;
        for (int f = 0; f < bins; ++f) out[f] += w * in[f];
      }
    }
  }
}

StationaryGate::StationaryGate(const GateOptions& options, int sample_rate_hz)
    : options_(options),
      config_(gate_front_end(options.n_fft, options.hop_length, sample_rate_hz)) {
  check_common(options_);
  if (options_.n_std_thresh_stationary < 0) throw Error("gate: --n-std must be >= 0");
  smoothing_widths(options_, sample_rate_hz, smooth_bins_, smooth_frames_);
}

int StationaryGate::context_frames() const { return smooth_frames_; }

void StationaryGate::set_noise(const std::vector<float>& noise) {
  FrontEnd fe(config_);
  // Frames as scipy.signal.stft(padded=True) makes them: centred, the last partial hop padded
  // with zeros to a frame of its own. Analysed one at a time into small buffers.
  int64_t n = static_cast<int64_t>(noise.size());
  if (options_.noise_clip_samples > 0) n = std::min<int64_t>(n, options_.noise_clip_samples);
  if (n < 1) throw Error("gate: the noise sample is empty");
  const int64_t hop = fe.hop(), n_fft = fe.n_fft(), half = n_fft / 2;
  const int64_t frames = fe.num_frames(((n + hop - 1) / hop) * hop);
  const int bins = fe.n_bins();
  std::vector<float> samples(n_fft), pw(bins), db(static_cast<size_t>(frames) * bins);
  std::vector<std::complex<float>> spectrum(bins);
  for (int64_t k = 0; k < frames; ++k) {
    // Samples [start, start + n_fft) of the noise, zeros outside [0, n).
    const int64_t start = k * hop - half;
    const int64_t lo = std::max<int64_t>(start, 0), hi = std::min<int64_t>(start + n_fft, n);
    std::fill(samples.begin(), samples.end(), 0.f);
    if (hi > lo) std::copy(noise.begin() + lo, noise.begin() + hi, samples.begin() + (lo - start));
    fe.analyze_frame(samples.data(), spectrum.data());
    for (int f = 0; f < bins; ++f) pw[f] = power(spectrum[f]);
    // 20 log10(|X| + eps) as 10 log10(max(|X|^2, eps^2)): equal wherever |X| >> eps, and exactly
    // 20 log10(eps) for silent bins.
    vec::power_to_db(pw.data(), db.data() + k * bins, bins, static_cast<float>(kEps * kEps));
  }
  set_threshold_from_db(db, frames);
}

void StationaryGate::set_threshold_from_db(const std::vector<float>& db, int64_t frames) {
  const int bins = config_.n_bins();
  if (frames < 1) throw Error("gate: the noise sample is empty");
  std::vector<double> row_max(bins, -std::numeric_limits<double>::infinity());
  for (int64_t t = 0; t < frames; ++t)
    for (int f = 0; f < bins; ++f) row_max[f] = std::max(row_max[f], double(db[t * bins + f]));
  // Mean and standard deviation (numpy's, ddof = 0) of each frequency's floored dB.
  std::vector<double> sum(bins, 0.0), sum_sq(bins, 0.0);
  for (int64_t t = 0; t < frames; ++t)
    for (int f = 0; f < bins; ++f) {
      const double v = std::max(double(db[t * bins + f]), row_max[f] - kTopDb);
      sum[f] += v;
      sum_sq[f] += v * v;
    }
  threshold_db_.assign(bins, 0.0);
  threshold_power_.assign(bins, 0.f);
  for (int f = 0; f < bins; ++f) {
    const double mean = sum[f] / frames;
    const double var = std::max(0.0, sum_sq[f] / frames - mean * mean);
    threshold_db_[f] = mean + std::sqrt(var) * options_.n_std_thresh_stationary;
    // Signal dB > threshold  <=>  |X| > 10^(thr/20) - eps, compared in power to skip the log.
    const double amp = std::pow(10.0, threshold_db_[f] / 20.0) - kEps;
    threshold_power_[f] = amp > 0 ? static_cast<float>(amp * amp) : -1.f;
  }
  pass_power_ = threshold_power_;
}

void StationaryGate::begin_signal() { row_max_power_.assign(threshold_power_.size(), 0.f); }

void StationaryGate::accumulate_signal_statistics(const Spectrogram& noisy) {
  if (row_max_power_.size() != static_cast<size_t>(noisy.n_bins))
    row_max_power_.assign(noisy.n_bins, 0.f);
  for (int64_t t = 0; t < noisy.n_frames; ++t) {
    const auto* x = noisy.frame(t);
    for (int f = 0; f < noisy.n_bins; ++f)
      row_max_power_[f] = std::max(row_max_power_[f], power(x[f]));
  }
}

bool StationaryGate::end_signal() {
  // noisereduce floors each frequency's dB at its maximum - 80 dB, which lets the whole frequency
  // pass when that floor is above the threshold. Gains are first computed assuming it never does
  // (the usual case); if the measured maxima say otherwise the pass is redone with them.
  bool changed = false;
  for (size_t f = 0; f < pass_power_.size() && f < row_max_power_.size(); ++f) {
    const double floor_db = 20.0 * std::log10(std::sqrt(double(row_max_power_[f])) + kEps) - kTopDb;
    const float want = floor_db > threshold_db_[f] ? -1.f : threshold_power_[f];
    if (want != pass_power_[f]) {
      pass_power_[f] = want;
      changed = true;
    }
  }
  return changed;
}

void StationaryGate::gains(const Spectrogram& noisy, std::vector<float>& gain) {
  if (threshold_power_.empty()) throw Error("gate: no noise profile was set");
  const int bins = noisy.n_bins;
  if (bins != static_cast<int>(threshold_power_.size()))
    throw Error("gate: spectrogram size mismatch");
  const std::vector<float>& pass_power = pass_power_;
  const float on = 1.f, off = static_cast<float>(1.0 - options_.prop_decrease);
  gain.resize(noisy.bins.size());
  for (int64_t t = 0; t < noisy.n_frames; ++t) {
    const auto* x = noisy.frame(t);
    float* g = gain.data() + t * bins;
    for (int f = 0; f < bins; ++f) g[f] = power(x[f]) > pass_power[f] ? on : off;
  }
  smooth_mask_triangular(gain, noisy.n_frames, bins, smooth_bins_, smooth_frames_, options_.causal,
                         scratch_);
}

NonStationaryGate::NonStationaryGate(const GateOptions& options, int sample_rate_hz)
    : options_(options),
      config_(gate_front_end(options.n_fft, options.hop_length, sample_rate_hz)) {
  check_common(options_);
  if (options_.time_constant_s <= 0)
    throw Error("gate-nonstationary: --time-constant-s must be > 0");
  smoothing_widths(options_, sample_rate_hz, smooth_bins_, smooth_frames_);
  // noisereduce's get_time_smoothed_representation: b solves b^2 + (1-b)/t - 2 = 0 ... its closed
  // form, t the time constant in frames.
  const double t_frames = options_.time_constant_s * sample_rate_hz / options_.hop_length;
  iir_b_ = (std::sqrt(1.0 + 4.0 * t_frames * t_frames) - 1.0) / (2.0 * t_frames * t_frames);
  // The smoothed floor forgets a frame by (1-b) per frame: after this many the influence of the
  // context's edge is below 1e-7 of the signal level.
  const double decay = std::log(1e-7) / std::log(1.0 - iir_b_);
  context_frames_ = static_cast<int>(std::ceil(decay)) + smooth_frames_ + 1;
}

void NonStationaryGate::gains(const Spectrogram& noisy, std::vector<float>& gain) {
  const int bins = noisy.n_bins;
  const int64_t frames = noisy.n_frames;
  gain.resize(noisy.bins.size());
  if (frames == 0) return;
  std::vector<float>& mag = magnitude_;
  mag.resize(noisy.bins.size());
  vec::magnitude(noisy.bins.data(), mag.data(), static_cast<int64_t>(mag.size()));
  // Noise floor: scipy.signal.filtfilt([b], [1, b-1], padtype=None): forward pass started in
  // steady state at the first value, backward pass started at the forward pass's last value.
  const float b = static_cast<float>(iir_b_), a = static_cast<float>(1.0 - iir_b_);
  floor_.resize(mag.size());
  std::copy(mag.begin(), mag.begin() + bins, floor_.begin());
  for (int64_t t = 1; t < frames; ++t) {
    const float* x = mag.data() + t * bins;
    const float* prev = floor_.data() + (t - 1) * bins;
    float* y = floor_.data() + t * bins;
    for (int f = 0; f < bins; ++f) y[f] = b * x[f] + a * prev[f];
  }
  if (!options_.causal) {
    for (int64_t t = frames - 2; t >= 0; --t) {
      const float* next = floor_.data() + (t + 1) * bins;
      float* y = floor_.data() + t * bins;
      for (int f = 0; f < bins; ++f) y[f] = b * y[f] + a * next[f];
    }
  }
  const float n_mult = static_cast<float>(options_.thresh_n_mult_nonstationary);
  const float slope = static_cast<float>(options_.sigmoid_slope_nonstationary);
  vec::soft_gate(mag.data(), floor_.data(), gain.data(), static_cast<int64_t>(mag.size()), n_mult,
                 slope);
  smooth_mask_triangular(gain, frames, bins, smooth_bins_, smooth_frames_, options_.causal,
                         scratch_);
  const float p = static_cast<float>(options_.prop_decrease), q = 1.f - p;
  for (auto& g : gain) g = g * p + q;
}


// ---------------------------------------------------------------------------------------------
// Live: the causal gates frame by frame (stream.h).

namespace {

// smooth_mask_triangular(causal = true) one frame at a time: the frequency triangle on the new
// row, then the past-only time triangle over the last rows (zeros before the stream). Buffers are
// allocated once.
class FrameSmoother {
 public:
  FrameSmoother(int bins, int half_bins, int half_frames)
      : bins_(bins), nb_(std::max(0, half_bins)), nt_(std::max(0, half_frames)),
        prefix_(bins + 1), box_(bins + nb_ + 1), prefix2_(bins + nb_ + 2),
        history_(static_cast<size_t>(nt_ + 1) * bins, 0.f) {
    double sum = 0;
    for (int k = 0; k <= nt_; ++k) sum += nt_ + 1 - k;
    for (int k = 0; k <= nt_; ++k) weights_.push_back(static_cast<float>((nt_ + 1 - k) / sum));
  }
  void reset() {
    std::fill(history_.begin(), history_.end(), 0.f);
    frames_ = 0;
  }
  void apply(float* row) {
    if (nb_ == 0 && nt_ == 0) return;
    if (nb_ > 0) smooth_row_triangular(row, bins_, nb_, prefix_.data(), box_.data(), prefix2_.data());
    if (nt_ > 0) {
      const int64_t slots = nt_ + 1;
      std::copy(row, row + bins_, history_.begin() + (frames_ % slots) * bins_);
      std::fill(row, row + bins_, 0.f);
      for (int k = 0; k <= nt_ && k <= frames_; ++k) {
        const float* in = history_.data() + ((frames_ - k) % slots) * bins_;
        const float w = weights_[k];
        for (int f = 0; f < bins_; ++f) row[f] += w * in[f];
      }
    }
    ++frames_;
  }

 private:
  int bins_, nb_, nt_;
  std::vector<double> prefix_, box_, prefix2_;
  std::vector<float> history_;  // the last nt + 1 frequency-smoothed rows, a ring
  std::vector<float> weights_;  // for offsets 0..nt into the past
  int64_t frames_ = 0;
};

}  // namespace

class NonStationaryFrameGains : public FrameGains {
 public:
  explicit NonStationaryFrameGains(const NonStationaryGate& gate)
      : options_(gate.options_), config_(gate.config_), b_(static_cast<float>(gate.iir_b_)),
        smoother_(gate.config_.n_bins(), gate.smooth_bins_, gate.smooth_frames_),
        magnitude_(gate.config_.n_bins()), floor_(gate.config_.n_bins()) {}
  const FrontEndConfig& front_end() const override { return config_; }
  void reset() override {
    started_ = false;
    smoother_.reset();
  }
  void process(const std::complex<float>* frame, float* gain) override {
    const int bins = config_.n_bins();
    vec::magnitude(frame, magnitude_.data(), bins);
    // The forward pass of the offline filter: started in steady state at the first frame.
    if (!started_) {
      std::copy(magnitude_.begin(), magnitude_.end(), floor_.begin());
      started_ = true;
    } else {
      const float a = 1.f - b_;
      for (int f = 0; f < bins; ++f) floor_[f] = b_ * magnitude_[f] + a * floor_[f];
    }
    vec::soft_gate(magnitude_.data(), floor_.data(), gain, bins,
                   static_cast<float>(options_.thresh_n_mult_nonstationary),
                   static_cast<float>(options_.sigmoid_slope_nonstationary));
    smoother_.apply(gain);
    const float p = static_cast<float>(options_.prop_decrease), q = 1.f - p;
    for (int f = 0; f < bins; ++f) gain[f] = gain[f] * p + q;
  }

 private:
  GateOptions options_;
  FrontEndConfig config_;
  float b_;
  FrameSmoother smoother_;
  std::vector<float> magnitude_, floor_;
  bool started_ = false;
};

std::unique_ptr<FrameGains> NonStationaryGate::make_frame_gains() const {
  if (!options_.causal) return nullptr;
  return std::make_unique<NonStationaryFrameGains>(*this);
}

class StationaryFrameGains : public FrameGains {
 public:
  explicit StationaryFrameGains(const StationaryGate& gate)
      : gate_(gate),
        learn_frames_(std::max<int64_t>(
            1, static_cast<int64_t>(gate.config_.sample_rate_hz / gate.config_.hop_length))),
        smoother_(gate.config_.n_bins(), gate.smooth_bins_, gate.smooth_frames_),
        db_(static_cast<size_t>(learn_frames_) * gate.config_.n_bins()),
        power_(gate.config_.n_bins()) {}
  const FrontEndConfig& front_end() const override { return gate_.config_; }
  void reset() override {
    frames_ = 0;
    smoother_.reset();
  }
  void process(const std::complex<float>* frame, float* gain) override {
    const int bins = gate_.config_.n_bins();
    if (frames_ < learn_frames_) {
      // Learning the noise: its dB spectrum is kept, the input passes unchanged.
      for (int f = 0; f < bins; ++f) power_[f] = power(frame[f]);
      vec::power_to_db(power_.data(), db_.data() + frames_ * bins, bins,
                       static_cast<float>(kEps * kEps));
      if (++frames_ == learn_frames_) gate_.set_threshold_from_db(db_, learn_frames_);
      std::fill(gain, gain + bins, 1.f);
      return;
    }
    const float off = static_cast<float>(1.0 - gate_.options_.prop_decrease);
    for (int f = 0; f < bins; ++f) gain[f] = power(frame[f]) > gate_.pass_power_[f] ? 1.f : off;
    smoother_.apply(gain);
  }

 private:
  StationaryGate gate_;  // its own copy: the threshold is this stream's
  int64_t learn_frames_;
  FrameSmoother smoother_;
  std::vector<float> db_, power_;
  int64_t frames_ = 0;
};

std::unique_ptr<FrameGains> StationaryGate::make_frame_gains() const {
  if (!options_.causal) return nullptr;
  return std::make_unique<StationaryFrameGains>(*this);
}

}  // namespace denoise
