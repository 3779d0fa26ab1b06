#include "denoise/front_end.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "denoise/error.h"
#include "denoise/json_strict.h"
#include "fftw_planner.h"

namespace denoise {

namespace detail {
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace detail

void FrontEndConfig::validate() const {
  auto fail = [](const std::string& why) { throw Error("front end: " + why); };
  if (n_fft < 16 || n_fft > 65536 || n_fft % 2 != 0)
    fail("n_fft must be even and in 16..65536, got " + std::to_string(n_fft));
  if (hop_length <= 0 || hop_length > n_fft / 2)
    fail("hop_length must be in 1..n_fft/2 (" + std::to_string(n_fft / 2) + "), got " +
         std::to_string(hop_length));
  if (sample_rate_hz < 1000 || sample_rate_hz > 384000)
    fail("sample_rate_hz out of range: " + std::to_string(sample_rate_hz));
  // Written so that NaN fails too.
  if (!(power_exponent > 0 && power_exponent <= 1)) fail("power_exponent must be in (0, 1]");
  if (!(log_epsilon > 0 && log_epsilon < 1) || !(power_epsilon > 0 && power_epsilon < 1))
    fail("epsilons must be in (0, 1)");
}

bool FrontEndConfig::operator==(const FrontEndConfig& o) const {
  return sample_rate_hz == o.sample_rate_hz && n_fft == o.n_fft && hop_length == o.hop_length &&
         window == o.window && center == o.center && compression == o.compression &&
         power_exponent == o.power_exponent && log_epsilon == o.log_epsilon &&
         power_epsilon == o.power_epsilon;
}

void to_json(nlohmann::json& j, const FrontEndConfig& c) {
  j = nlohmann::json{{"sample_rate_hz", c.sample_rate_hz},
                     {"n_fft", c.n_fft},
                     {"hop_length", c.hop_length},
                     {"window", c.window},
                     {"center", c.center},
                     {"compression", c.compression},
                     {"power_exponent", c.power_exponent},
                     {"log_epsilon", c.log_epsilon},
                     {"power_epsilon", c.power_epsilon}};
}

void from_json(const nlohmann::json& j, FrontEndConfig& c) {
  require_same_keys(j, FrontEndConfig{}, "front end config");
  try {
    j.at("sample_rate_hz").get_to(c.sample_rate_hz);
    j.at("n_fft").get_to(c.n_fft);
    j.at("hop_length").get_to(c.hop_length);
    j.at("center").get_to(c.center);
    j.at("power_exponent").get_to(c.power_exponent);
    j.at("log_epsilon").get_to(c.log_epsilon);
    j.at("power_epsilon").get_to(c.power_epsilon);
    // The enum macros map unknown strings to the first value; reject them instead.
    const std::string window = j.at("window").get<std::string>();
    const std::string compression = j.at("compression").get<std::string>();
    if (window != "hann" && window != "sqrt_hann")
      throw Error("front end config: unknown window '" + window + "'");
    if (compression != "none" && compression != "log" && compression != "power")
      throw Error("front end config: unknown compression '" + compression + "'");
    j.at("window").get_to(c.window);
    j.at("compression").get_to(c.compression);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("front end config: ") + e.what());
  }
  c.validate();
}

// FFTW plans for one transform size. Planning is not thread-safe in FFTW, so it is serialised;
// execution on the plan's own buffers is done by one FrontEnd (one thread) at a time.
struct FrontEnd::Fft {
  int n;
  float* time = nullptr;
  fftwf_complex* freq = nullptr;
  fftwf_plan forward = nullptr, inverse = nullptr;

  explicit Fft(int size) : n(size) {
    std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    time = fftwf_alloc_real(n);
    freq = fftwf_alloc_complex(n / 2 + 1);
    // FFTW_ESTIMATE: deterministic plans (MEASURE may pick different algorithms run to run, which
    // would make outputs differ in the last bits).
    forward = fftwf_plan_dft_r2c_1d(n, time, freq, FFTW_ESTIMATE);
    inverse = fftwf_plan_dft_c2r_1d(n, freq, time, FFTW_ESTIMATE);
    if (!forward || !inverse)
      throw Error("front end: FFTW could not plan an FFT of size " + std::to_string(n));
  }
  ~Fft() {
    std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    fftwf_destroy_plan(forward);
    fftwf_destroy_plan(inverse);
    fftwf_free(time);
    fftwf_free(freq);
  }
};

FrontEnd::FrontEnd(const FrontEndConfig& config) : config_(config) {
  config_.validate();
  const int n = config_.n_fft;
  window_.resize(n);
  window_sq_.resize(n);
  for (int i = 0; i < n; ++i) {
    // Periodic Hann (scipy.signal.get_window("hann"), torch.hann_window(periodic=True)).
    const double h = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);
    const double w = config_.window == WindowType::kSqrtHann ? std::sqrt(h) : h;
    window_[i] = static_cast<float>(w);
    window_sq_[i] = static_cast<double>(window_[i]) * window_[i];
  }
  fft_ = std::make_unique<Fft>(n);
}

FrontEnd::~FrontEnd() = default;

void FrontEnd::analyze_frame(const float* samples, std::complex<float>* out) {
  const int n = config_.n_fft;
  float* t = fft_->time;
  for (int i = 0; i < n; ++i) t[i] = samples[i] * window_[i];
  fftwf_execute(fft_->forward);
  std::memcpy(static_cast<void*>(out), fft_->freq, sizeof(std::complex<float>) * (n / 2 + 1));
}

void FrontEnd::synthesize_frame(const std::complex<float>* in, float* out) {
  const int n = config_.n_fft;
  std::memcpy(fft_->freq, in, sizeof(std::complex<float>) * (n / 2 + 1));
  // irfft ignores the imaginary parts of DC and Nyquist, as torch.istft / numpy do.
  fft_->freq[0][1] = 0.f;
  fft_->freq[n / 2][1] = 0.f;
  fftwf_execute(fft_->inverse);
  const float scale = 1.0f / static_cast<float>(n);
  for (int i = 0; i < n; ++i) out[i] = fft_->time[i] * scale * window_[i];
}

int64_t FrontEnd::num_frames(int64_t n_samples) const {
  const int64_t padded = config_.center ? n_samples : n_samples - config_.n_fft;
  if (padded < 0) return 0;
  return 1 + padded / config_.hop_length;
}

double FrontEnd::window_square_sum(int64_t p, int64_t total_frames) const {
  const int64_t hop = config_.hop_length, n = config_.n_fft;
  // Frames k with k*hop <= p < k*hop + n.
  int64_t k_lo = p - n + 1 <= 0 ? 0 : (p - n + 1 + hop - 1) / hop;
  int64_t k_hi = p < 0 ? -1 : std::min(p / hop, total_frames - 1);
  double s = 0;
  for (int64_t k = k_lo; k <= k_hi; ++k) s += window_sq_[p - k * hop];
  return s;
}

void FrontEnd::analyze(const float* signal, int64_t n, Spectrogram& out) {
  const int64_t frames = num_frames(n);
  const int half = config_.center ? config_.n_fft / 2 : 0;
  // Padded copy of the signal covering every frame, zeros outside.
  const int64_t padded_len = (frames - 1) * config_.hop_length + config_.n_fft;
  std::vector<float> padded(std::max<int64_t>(padded_len, 0), 0.f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = i + half;
    if (p >= 0 && p < padded_len) padded[p] = signal[i];
  }
  analyze_range(padded.data(), 0, frames, out);
}

std::vector<float> FrontEnd::synthesize(const Spectrogram& spec, int64_t n_samples) {
  std::vector<float> out(n_samples, 0.f);
  const int half = config_.center ? config_.n_fft / 2 : 0;
  synthesize_range(spec, 0, spec.n_frames, half, half + n_samples, out.data());
  return out;
}

void FrontEnd::analyze_range(const float* padded, int64_t first_frame, int64_t count,
                             Spectrogram& out) {
  // Positions are relative to `padded`, which starts at first_frame * hop.
  out.resize(count, n_bins());
  out.first_frame = first_frame;
  for (int64_t k = 0; k < count; ++k) analyze_frame(padded + k * config_.hop_length, out.frame(k));
}

void FrontEnd::synthesize_range(const Spectrogram& spec, int64_t first_frame, int64_t total_frames,
                                int64_t begin, int64_t end, float* out) {
  const int n = config_.n_fft;
  const int64_t hop = config_.hop_length;
  const int64_t len = end - begin;
  std::vector<double>& acc = acc_;
  acc.assign(len, 0.0);
  std::vector<float>& frame = frame_;
  frame.resize(n);
  for (int64_t j = 0; j < spec.n_frames; ++j) {
    const int64_t k = first_frame + j;
    const int64_t start = k * hop;
    if (start >= end || start + n <= begin) continue;
    synthesize_frame(spec.frame(j), frame.data());
    const int64_t lo = std::max<int64_t>(begin, start), hi = std::min<int64_t>(end, start + n);
    for (int64_t p = lo; p < hi; ++p) acc[p - begin] += frame[p - start];
  }
  // Normalise by the window-square sum. It is periodic in p away from the ends, so it is computed
  // per residue once and only recomputed near the first and last frames.
  const int64_t base = ((n + hop - 1) / hop) * hop;  // a position covered by all its frames
  std::vector<double> steady(hop, 0.0);
  for (int64_t r = 0; r < hop; ++r) steady[r] = window_square_sum(base + r, base / hop + n + 1);
  const int64_t steady_lo = n, steady_hi = (total_frames - 1) * hop;  // [lo, hi) fully covered
  // The residue p % hop is stepped along rather than divided for (a division per sample is a
  // noticeable share of a classical method's time).
  int64_t r = ((begin % hop) + hop) % hop;
  for (int64_t p = begin; p < end; ++p) {
    const double s =
        (p >= steady_lo && p < steady_hi) ? steady[r] : window_square_sum(p, total_frames);
    // torch.istft and scipy leave positions no window covers at zero.
    out[p - begin] = s > 1e-11 ? static_cast<float>(acc[p - begin] / s) : 0.f;
    if (++r == hop) r = 0;
  }
}

StreamingAnalyzer::StreamingAnalyzer(FrontEnd& front_end)
    : fe_(front_end), buffer_(front_end.n_fft(), 0.f) {
  reset();
}

void StreamingAnalyzer::reset() {
  std::fill(buffer_.begin(), buffer_.end(), 0.f);
  // With centring the stream begins n_fft/2 zeros before the first sample.
  samples_seen_ = fe_.config().center ? fe_.n_fft() / 2 : 0;
}

bool StreamingAnalyzer::push(const float* hop_samples, std::complex<float>* frame) {
  const int n = fe_.n_fft(), hop = fe_.hop();
  std::memmove(buffer_.data(), buffer_.data() + hop, sizeof(float) * (n - hop));
  std::memcpy(buffer_.data() + (n - hop), hop_samples, sizeof(float) * hop);
  samples_seen_ += hop;
  // The buffer ends at padded position samples_seen_; it is frame k when that equals k*hop + n.
  const int64_t start = samples_seen_ - n;
  if (start < 0 || start % hop != 0) return false;
  fe_.analyze_frame(buffer_.data(), frame);
  return true;
}

StreamingSynthesizer::StreamingSynthesizer(FrontEnd& front_end)
    : fe_(front_end), accum_(front_end.n_fft(), 0.f), frame_(front_end.n_fft(), 0.f) {}

void StreamingSynthesizer::reset() {
  std::fill(accum_.begin(), accum_.end(), 0.f);
  frames_seen_ = 0;
}

void StreamingSynthesizer::push(const std::complex<float>* frame, float* hop_out) {
  const int n = fe_.n_fft(), hop = fe_.hop();
  fe_.synthesize_frame(frame, frame_.data());
  for (int i = 0; i < n; ++i) accum_[i] += frame_[i];
  const int64_t start = frames_seen_ * hop;
  // Frames 0..k cover these positions; later frames start after them.
  for (int i = 0; i < hop; ++i) {
    const double s = fe_.window_square_sum(start + i, frames_seen_ + 1);
    hop_out[i] = s > 1e-11 ? static_cast<float>(accum_[i] / s) : 0.f;
  }
  std::memmove(accum_.data(), accum_.data() + hop, sizeof(float) * (n - hop));
  std::fill(accum_.end() - hop, accum_.end(), 0.f);
  ++frames_seen_;
}

int StreamingSynthesizer::latency_samples() const {
  // Sample i leaves with frame floor((i + n_fft/2)/hop), which needs input up to
  // i + n_fft - hop; add the wait for i's hop of input to fill: n_fft in all.
  return fe_.n_fft();
}

int StreamingSynthesizer::stream_offset() const {
  return fe_.config().center ? fe_.n_fft() / 2 : 0;
}

}  // namespace denoise
