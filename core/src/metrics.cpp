#include "denoise/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "denoise/error.h"
#include "denoise/resample.h"

namespace denoise {
namespace {

// Error energy floor relative to the signal energy: caps SNR-type ratios at 200 dB.
constexpr double kErrorFloor = 1e-20;

void check_pair(const char* function, const std::vector<float>& reference,
                const std::vector<float>& estimate) {
  if (reference.size() != estimate.size())
    throw Error(std::string(function) + ": signals differ in length (reference " +
                std::to_string(reference.size()) + " samples, estimate " +
                std::to_string(estimate.size()) + " samples); align them first");
  if (reference.empty()) throw Error(std::string(function) + ": signals are empty");
  for (size_t i = 0; i < reference.size(); ++i)
    if (!std::isfinite(reference[i]) || !std::isfinite(estimate[i]))
      throw Error(std::string(function) + ": non-finite sample at index " + std::to_string(i));
}

double ratio_db(double signal_energy, double error_energy) {
  return 10.0 * std::log10(signal_energy / std::max(error_energy, kErrorFloor * signal_energy));
}

// ---- STOI / ESTOI, after pystoi 0.4.1 (Taal et al. 2011; Jensen & Taal 2016) ----

constexpr int kStoiRateHz = 10000;
constexpr int kFrame = 256;  // samples per frame (25.6 ms)
constexpr int kHop = kFrame / 2;
constexpr int kNfft = 512;
constexpr int kBands = 15;
constexpr double kMinBandHz = 150.0;
constexpr int kSegment = 30;          // N: frames per intermediate intelligibility segment
constexpr double kBetaDb = -15.0;     // lower signal-to-distortion bound of the clipping
constexpr double kDynRangeDb = 40.0;  // frames this far below the loudest are silence
const double kEps = std::numeric_limits<double>::epsilon();

// MATLAB's hanning(256), as pystoi uses: a symmetric Hann of 258 points without its zero ends.
const std::vector<double>& stoi_window() {
  static const std::vector<double> w = [] {
    std::vector<double> v(kFrame);
    for (int i = 0; i < kFrame; ++i)
      v[i] = 0.5 * (1.0 - std::cos(2.0 * M_PI * (i + 1) / (kFrame + 1)));
    return v;
  }();
  return w;
}

// One-third-octave band k spans FFT bins [lo, hi): the bins nearest (first on ties) to the band
// edges 150 * 2^((2k -+ 1) / 6) Hz, as pystoi's thirdoct().
struct BandEdges {
  int lo[kBands];
  int hi[kBands];
  int first_bin, end_bin;  // bins any band uses
};

const BandEdges& band_edges() {
  static const BandEdges edges = [] {
    BandEdges e{};
    const int n_bins = kNfft / 2 + 1;
    auto nearest_bin = [&](double hz) {
      int best = 0;
      double best_d = std::numeric_limits<double>::infinity();
      for (int b = 0; b < n_bins; ++b) {
        const double d = std::abs(static_cast<double>(b) * kStoiRateHz / kNfft - hz);
        if (d < best_d) best_d = d, best = b;
      }
      return best;
    };
    e.first_bin = n_bins;
    e.end_bin = 0;
    for (int k = 0; k < kBands; ++k) {
      e.lo[k] = nearest_bin(kMinBandHz * std::pow(2.0, (2.0 * k - 1.0) / 6.0));
      e.hi[k] = nearest_bin(kMinBandHz * std::pow(2.0, (2.0 * k + 1.0) / 6.0));
      e.first_bin = std::min(e.first_bin, e.lo[k]);
      e.end_bin = std::max(e.end_bin, e.hi[k]);
    }
    return e;
  }();
  return edges;
}

// DFT of a 256-sample frame zero-padded to 512, for the bins the bands use only, in double (as
// pystoi's numpy rfft). A direct transform keeps the metric exact, free of FFTW planner state and
// thread-safe; the table is [sample][bin] so the inner loop runs over bins and vectorises.
struct DftTable {
  int n_bins = 0;
  std::vector<double> cos_t, sin_t;
};

const DftTable& dft_table() {
  static const DftTable table = [] {
    const BandEdges& e = band_edges();
    DftTable t;
    t.n_bins = e.end_bin - e.first_bin;
    t.cos_t.resize(static_cast<size_t>(kFrame) * t.n_bins);
    t.sin_t.resize(t.cos_t.size());
    for (int n = 0; n < kFrame; ++n)
      for (int b = 0; b < t.n_bins; ++b) {
        const int k = e.first_bin + b;
        const double phase = 2.0 * M_PI * static_cast<double>((k * n) % kNfft) / kNfft;
        t.cos_t[static_cast<size_t>(n) * t.n_bins + b] = std::cos(phase);
        t.sin_t[static_cast<size_t>(n) * t.n_bins + b] = -std::sin(phase);
      }
    return t;
  }();
  return table;
}

// pystoi's remove_silent_frames: frames start at 0, 128, ... while before n - 256; those within
// 40 dB of the loudest clean frame are kept, windowed, and overlap-added back to back.
void remove_silent_frames(const std::vector<double>& x, const std::vector<double>& y,
                          std::vector<double>& x_out, std::vector<double>& y_out) {
  const std::vector<double>& w = stoi_window();
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t frames = n > kFrame ? (n - kFrame + kHop - 1) / kHop : 0;
  std::vector<double> energy_db(static_cast<size_t>(frames));
  double loudest = -std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < frames; ++t) {
    double e = 0;
    for (int i = 0; i < kFrame; ++i) {
      const double v = w[i] * x[t * kHop + i];
      e += v * v;
    }
    energy_db[t] = 20.0 * std::log10(std::sqrt(e) + kEps);
    loudest = std::max(loudest, energy_db[t]);
  }
  std::vector<int64_t> kept;
  for (int64_t t = 0; t < frames; ++t)
    if (loudest - kDynRangeDb - energy_db[t] < 0) kept.push_back(t);
  const size_t out_n = kept.empty() ? 0 : (kept.size() - 1) * kHop + kFrame;
  x_out.assign(out_n, 0.0);
  y_out.assign(out_n, 0.0);
  for (size_t j = 0; j < kept.size(); ++j) {
    const int64_t src = kept[j] * kHop;
    const size_t dst = j * kHop;
    for (int i = 0; i < kFrame; ++i) {
      x_out[dst + i] += w[i] * x[src + i];
      y_out[dst + i] += w[i] * y[src + i];
    }
  }
}

// One-third-octave band envelopes sqrt(sum over the band's bins of |X|^2), band-major:
// env[k * frames + t]. Frames start at 0, 128, ... while before n - 256, as pystoi's stft().
std::vector<double> band_envelopes(const std::vector<double>& x, int64_t frames) {
  const std::vector<double>& w = stoi_window();
  const BandEdges& e = band_edges();
  const DftTable& dft = dft_table();
  std::vector<double> env(static_cast<size_t>(kBands) * frames);
  std::vector<double> re(dft.n_bins), im(dft.n_bins), frame(kFrame);
  for (int64_t t = 0; t < frames; ++t) {
    for (int i = 0; i < kFrame; ++i) frame[i] = w[i] * x[t * kHop + i];
    std::fill(re.begin(), re.end(), 0.0);
    std::fill(im.begin(), im.end(), 0.0);
    for (int i = 0; i < kFrame; ++i) {
      const double v = frame[i];
      const double* c = dft.cos_t.data() + static_cast<size_t>(i) * dft.n_bins;
      const double* s = dft.sin_t.data() + static_cast<size_t>(i) * dft.n_bins;
      for (int b = 0; b < dft.n_bins; ++b) re[b] += v * c[b], im[b] += v * s[b];
    }
    for (int k = 0; k < kBands; ++k) {
      double p = 0;
      for (int bin = e.lo[k]; bin < e.hi[k]; ++bin) {
        const int b = bin - e.first_bin;
        p += re[b] * re[b] + im[b] * im[b];
      }
      env[static_cast<size_t>(k) * frames + t] = std::sqrt(p);
    }
  }
  return env;
}

// Subtracts the mean of v[0], v[stride], ... (count values) and divides by their norm (+ eps;
// pystoi perturbs by eps-sized noise instead, which only matters for an exactly constant row).
void normalise(double* v, int count, int64_t stride) {
  double mean = 0;
  for (int i = 0; i < count; ++i) mean += v[i * stride];
  mean /= count;
  double norm = 0;
  for (int i = 0; i < count; ++i) {
    v[i * stride] -= mean;
    norm += v[i * stride] * v[i * stride];
  }
  norm = std::sqrt(norm) + kEps;
  for (int i = 0; i < count; ++i) v[i * stride] /= norm;
}

double stoi_impl(const char* function, const std::vector<float>& clean,
                 const std::vector<float>& processed, int sample_rate_hz, bool extended) {
  check_pair(function, clean, processed);
  if (sample_rate_hz <= 0)
    throw Error(std::string(function) + ": invalid sample rate " + std::to_string(sample_rate_hz) +
                " Hz");
  std::vector<double> x, y;
  {
    // pystoi works at 10 kHz: the bands reach 4.3 kHz.
    const std::vector<float> xr = resample(clean, sample_rate_hz, kStoiRateHz);
    const std::vector<float> yr = resample(processed, sample_rate_hz, kStoiRateHz);
    std::vector<double> xd(xr.begin(), xr.end()), yd(yr.begin(), yr.end());
    remove_silent_frames(xd, yd, x, y);
  }
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t frames = n > kFrame ? (n - kFrame + kHop - 1) / kHop : 0;
  if (frames < kSegment)
    throw Error(std::string(function) + ": too short after silence removal: " +
                std::to_string(frames) + " STFT frames of speech, at least " +
                std::to_string(kSegment) + " needed (about 0.4 s of non-silent speech)");
  const std::vector<double> x_env = band_envelopes(x, frames);
  const std::vector<double> y_env = band_envelopes(y, frames);

  const int64_t segments = frames - kSegment + 1;
  double total = 0;
  if (!extended) {
    // Taal et al. 2011, Eqs. (3)-(5): per band and segment, scale the processed envelope to the
    // clean energy, clip it at 10^(-beta/20) above the clean envelope, and correlate.
    const double clip = std::pow(10.0, -kBetaDb / 20.0);
    double xs[kSegment], ys[kSegment];
    for (int64_t m = 0; m < segments; ++m)
      for (int k = 0; k < kBands; ++k) {
        const double* xe = x_env.data() + static_cast<size_t>(k) * frames + m;
        const double* ye = y_env.data() + static_cast<size_t>(k) * frames + m;
        double xx = 0, yy = 0;
        for (int i = 0; i < kSegment; ++i) xx += xe[i] * xe[i], yy += ye[i] * ye[i];
        const double alpha = std::sqrt(xx) / (std::sqrt(yy) + kEps);
        for (int i = 0; i < kSegment; ++i) {
          xs[i] = xe[i];
          ys[i] = std::min(alpha * ye[i], xe[i] * (1.0 + clip));
        }
        normalise(xs, kSegment, 1);
        normalise(ys, kSegment, 1);
        for (int i = 0; i < kSegment; ++i) total += xs[i] * ys[i];
      }
    return total / (static_cast<double>(segments) * kBands);
  }
  // Jensen & Taal 2016, Eqs. (4)-(7): normalise each segment's band-by-frame matrix over time per
  // band (rows), then over bands per frame (columns); average the column inner products.
  double xs[kBands * kSegment], ys[kBands * kSegment];
  for (int64_t m = 0; m < segments; ++m) {
    for (int k = 0; k < kBands; ++k)
      for (int i = 0; i < kSegment; ++i) {
        xs[k * kSegment + i] = x_env[static_cast<size_t>(k) * frames + m + i];
        ys[k * kSegment + i] = y_env[static_cast<size_t>(k) * frames + m + i];
      }
    for (int k = 0; k < kBands; ++k) {
      normalise(xs + k * kSegment, kSegment, 1);
      normalise(ys + k * kSegment, kSegment, 1);
    }
    for (int i = 0; i < kSegment; ++i) {
      normalise(xs + i, kBands, kSegment);
      normalise(ys + i, kBands, kSegment);
    }
    for (int j = 0; j < kBands * kSegment; ++j) total += xs[j] * ys[j];
  }
  return total / (static_cast<double>(segments) * kSegment);
}

}  // namespace

double si_sdr_db(const std::vector<float>& reference, const std::vector<float>& estimate) {
  check_pair("si_sdr_db", reference, estimate);
  const size_t n = reference.size();
  double mr = 0, me = 0;
  for (size_t i = 0; i < n; ++i) mr += reference[i], me += estimate[i];
  mr /= static_cast<double>(n);
  me /= static_cast<double>(n);
  double dot = 0, rr = 0;
  for (size_t i = 0; i < n; ++i) {
    const double r = reference[i] - mr;
    dot += (estimate[i] - me) * r;
    rr += r * r;
  }
  if (rr == 0.0)
    throw Error("si_sdr_db: reference is silent (zero energy after removing its mean)");
  const double a = dot / rr;
  double target = 0, error = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t = a * (reference[i] - mr);
    const double e = (estimate[i] - me) - t;
    target += t * t;
    error += e * e;
  }
  // An estimate orthogonal to the reference has no target component: the lowest value.
  if (target == 0.0) return -10.0 * std::log10(1.0 / kErrorFloor);
  return ratio_db(target, error);
}

double snr_db(const std::vector<float>& reference, const std::vector<float>& estimate) {
  check_pair("snr_db", reference, estimate);
  double signal = 0, error = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i];
    const double e = r - static_cast<double>(estimate[i]);
    signal += r * r;
    error += e * e;
  }
  if (signal == 0.0) throw Error("snr_db: reference is silent (all samples zero)");
  return ratio_db(signal, error);
}

double segmental_snr_db(const std::vector<float>& reference, const std::vector<float>& estimate,
                        int sample_rate_hz) {
  check_pair("segmental_snr_db", reference, estimate);
  // Hansen & Pellom 1998 as in Loizou's comp_snr.m: 30 ms Hann frames, 75% overlap, per-frame
  // SNR clamped to [-10, 35] dB (limits that keep silent or perfect frames from dominating).
  constexpr double kMinDb = -10.0, kMaxDb = 35.0;
  const int64_t win = std::llround(0.030 * sample_rate_hz);
  const int64_t hop = win / 4;
  if (hop < 1)
    throw Error("segmental_snr_db: sample rate " + std::to_string(sample_rate_hz) +
                " Hz is too low for 30 ms frames");
  const int64_t n = static_cast<int64_t>(reference.size());
  const int64_t frames = n >= win ? (n - win) / hop : 0;
  if (frames < 1)
    throw Error("segmental_snr_db: signals of " + std::to_string(n) +
                " samples are too short: at least " + std::to_string(win + hop) +
                " needed (30 ms frames, hop " + std::to_string(hop) + ")");
  std::vector<double> w(static_cast<size_t>(win));
  for (int64_t i = 0; i < win; ++i)
    w[i] = 0.5 *
           (1.0 - std::cos(2.0 * M_PI * static_cast<double>(i + 1) / static_cast<double>(win + 1)));
  double sum = 0;
  for (int64_t t = 0; t < frames; ++t) {
    double signal = 0, error = 0;
    for (int64_t i = 0; i < win; ++i) {
      const double r = w[i] * reference[t * hop + i];
      const double e = r - w[i] * static_cast<double>(estimate[t * hop + i]);
      signal += r * r;
      error += e * e;
    }
    const double snr = 10.0 * std::log10(signal / (error + kEps) + kEps);
    sum += std::clamp(snr, kMinDb, kMaxDb);
  }
  return sum / static_cast<double>(frames);
}

double stoi(const std::vector<float>& clean, const std::vector<float>& processed,
            int sample_rate_hz) {
  return stoi_impl("stoi", clean, processed, sample_rate_hz, false);
}

double estoi(const std::vector<float>& clean, const std::vector<float>& processed,
             int sample_rate_hz) {
  return stoi_impl("estoi", clean, processed, sample_rate_hz, true);
}

}  // namespace denoise
