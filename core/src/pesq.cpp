// PESQ, ITU-T P.862 / P.862.1 / P.862.2, written from the recommendations' description of the
// algorithm. The constant tables (filters, Bark bands, thresholds) are the data the recommendation
// publishes with its reference implementation; the processing mirrors the reference step by step
// (including its integer arithmetic on positions and its single-precision FFTs) because scores are
// compared with it to about 0.01 MOS.
#include "denoise/pesq.h"

#include <fftw3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "denoise/error.h"
#include "fftw_planner.h"

namespace denoise {
namespace {

// ---- Constants of P.862 ----

constexpr long kSearchBuffer = 75;      // VAD windows of padding either side (and search range)
constexpr long kDataPaddingMs = 320;    // zeros after the signal, in ms
constexpr long kMinSpeechLength = 4;    // shorter speech bursts (VAD windows) are noise
constexpr long kJoinSpeechLength = 50;  // shorter pauses inside clean speech are joined
constexpr long kMinUtteranceLength = 50;
constexpr long kMaxUtterances = 50;
constexpr double kTargetAvgPower = 1e7;
constexpr double kSilence5Samples = 500.0;  // sum of |x| over 5 samples that counts as silence
constexpr double kThresholdBadFrames = 30.0;
constexpr int kSmearRange = 2;
constexpr int kMinBadFramesInInterval = 5;
constexpr int kSearchRangeInTransforms = 4;
constexpr int kFramesPerSyllable = 20;
constexpr double kMaxScale = 5.0;
constexpr double kMinScale = 3e-4;
constexpr double kZwickerPower = 0.23;

// Level-alignment filter (350 Hz - 3.25 kHz) and IRS receive characteristic: (Hz, dB) points,
// linearly interpolated in dB.
using Curve = std::array<std::array<double, 2>, 26>;
constexpr Curve kAlignFilterDb = {
    {{0., -500},    {50., -500},  {100., -500}, {125., -500},  {160., -500},  {200., -500},
     {250., -500},  {300., -500}, {350., 0},    {400., 0},     {500., 0},     {600., 0},
     {630., 0},     {800., 0},    {1000., 0},   {1250., 0},    {1600., 0},    {2000., 0},
     {2500., 0},    {3000., 0},   {3250., 0},   {3500., -500}, {4000., -500}, {5000., -500},
     {6300., -500}, {8000., -500}}};
constexpr Curve kIrsFilterDb = {
    {{0., -200},    {50., -40},   {100., -20}, {125., -12}, {160., -6},    {200., 0},
     {250., 4},     {300., 6},    {350., 8},   {400., 10},  {500., 11},    {600., 12},
     {700., 12},    {800., 12},   {1000., 12}, {1300., 12}, {1600., 12},   {2000., 12},
     {2500., 12},   {3000., 12},  {3250., 12}, {3500., 4},  {4000., -200}, {5000., -200},
     {6300., -200}, {8000., -200}}};

// Biquad sections b0, b1, b2, a1, a2 (a0 = 1).
using Biquad = std::array<double, 5>;

// P.862.2's wide-band input filter (a 100 Hz high-pass).
const std::vector<Biquad> kWideBandFilter8k = {
    {2.6657628, -5.3315255, 2.6657628, -1.8890331, 0.89487434}};
const std::vector<Biquad> kWideBandFilter16k = {
    {2.740826, -5.4816519, 2.740826, -1.9444777, 0.94597794}};

// The filter that the time alignment sees (applied to copies used only for alignment).
const std::vector<Biquad> kAlignIir8k = {
    {0.885535424, -0.885535424, 0.000000000, -0.771070709, 0.000000000},
    {0.895092588, 1.292907193, 0.449260174, 1.268869037, 0.442025372},
    {4.049527940, -7.865190042, 3.815662102, -1.746859852, 0.786305963},
    {0.500002353, -0.500002353, 0.000000000, 0.000000000, 0.000000000},
    {0.565002834, -0.241585934, -0.306009671, 0.259688659, 0.249979657},
    {2.115237288, 0.919935084, 1.141240051, -1.587313419, 0.665935315},
    {0.912224584, -0.224397719, -0.641121413, -0.246029464, -0.556720590},
    {0.444617727, -0.307589321, 0.141638062, -0.996391149, 0.502251622}};
const std::vector<Biquad> kAlignIir16k = {
    {0.325631521, -0.086782860, -0.238848661, -1.079416490, 0.434583902},
    {0.403961804, -0.556985881, 0.153024077, -0.415115835, 0.696590244},
    {4.736162769, 3.287251046, 1.753289019, -1.859599046, 0.876284034},
    {0.365373469, 0.000000000, 0.000000000, -0.634626531, 0.000000000},
    {0.884811506, 0.000000000, 0.000000000, -0.256725271, 0.141536777},
    {0.723593055, -1.447186099, 0.723593044, -1.129587469, 0.657232737},
    {1.644910855, -1.817280902, 1.249658063, -1.778403899, 0.801724355},
    {0.633692689, -0.284644314, -0.319789663, 0.000000000, 0.000000000},
    {1.032763031, 0.268428979, 0.602913323, 0.000000000, 0.000000000},
    {1.001616361, -0.823749013, 0.439731942, -0.885778255, 0.000000000},
    {0.752472096, -0.375388990, 0.188977609, -0.077258216, 0.247230734},
    {1.023700575, 0.001661628, 0.521284240, -0.183867259, 0.354324187}};

// Bark bands (42 at 8 kHz, 49 at 16 kHz; the first 42 are common): FFT bins per band, band
// centres (Bark), widths (Bark), power-density correction and absolute hearing threshold.
constexpr int kBands8k = 42;
constexpr int kBands16k = 49;
constexpr std::array<int, kBands16k> kBinsPerBand = {
    1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1,  2,  2,  2,  2,  2,  2,  2, 2,
    3, 3, 3, 3, 4, 3, 4, 5, 4, 5, 6, 6, 7, 8, 9, 9, 12, 12, 15, 16, 18, 21, 25, 20};
// At 8 kHz the last band has 11 bins instead of 12.
constexpr int kLastBinsPerBand8k = 11;
constexpr std::array<double, kBands16k> kCentreBark = {
    0.078672,  0.316341,  0.636559,  0.961246,  1.290450,  1.624217,  1.962597,
    2.305636,  2.653383,  3.005889,  3.363201,  3.725371,  4.092449,  4.464486,
    4.841533,  5.223642,  5.610866,  6.003256,  6.400869,  6.803755,  7.211971,
    7.625571,  8.044611,  8.469146,  8.899232,  9.334927,  9.776288,  10.223374,
    10.676242, 11.134952, 11.599563, 12.070135, 12.546731, 13.029408, 13.518232,
    14.013264, 14.514566, 15.022202, 15.536238, 16.056736, 16.583761, 17.117382,
    17.657663, 18.204674, 18.758478, 19.319147, 19.886751, 20.461355, 21.043034};
constexpr std::array<double, kBands16k> kWidthBark = {
    0.157344, 0.317994, 0.322441, 0.326934, 0.331474, 0.336061, 0.340697, 0.345381, 0.350114,
    0.354897, 0.359729, 0.364611, 0.369544, 0.374529, 0.379565, 0.384653, 0.389794, 0.394989,
    0.400236, 0.405538, 0.410894, 0.416306, 0.421773, 0.427297, 0.432877, 0.438514, 0.444209,
    0.449962, 0.455774, 0.461645, 0.467577, 0.473569, 0.479621, 0.485736, 0.491912, 0.498151,
    0.504454, 0.510819, 0.517250, 0.523745, 0.530308, 0.536934, 0.543629, 0.550390, 0.557220,
    0.564119, 0.571085, 0.578125, 0.585232};
constexpr std::array<double, kBands16k> kPowDensCorrection = {
    100.000000, 99.999992,  100.000000, 100.000008, 100.000008, 100.000015, 99.999992,
    99.999969,  50.000027,  100.000000, 99.999969,  100.000015, 99.999947,  100.000061,
    53.047077,  110.000046, 117.991989, 65.000000,  68.760147,  69.999931,  71.428818,
    75.000038,  76.843384,  80.968781,  88.646126,  63.864388,  68.155350,  72.547775,
    75.584831,  58.379192,  80.950836,  64.135651,  54.384785,  73.821884,  64.437073,
    59.176456,  65.521278,  61.399822,  58.144047,  57.004543,  64.126297,  54.311001,
    61.114979,  55.077751,  56.849335,  55.628868,  53.137054,  54.985844,  79.546974};
// At 8 kHz the last band's correction differs.
constexpr double kLastPowDensCorrection8k = 59.248363;
constexpr std::array<double, kBands16k> kAbsThreshPower = {
    51286152.000000, 2454709.500000, 70794.593750, 4897.788574, 1174.897705, 389.045166, 104.712860,
    45.708820,       17.782795,      9.772372,     4.897789,    3.090296,    1.905461,   1.258925,
    0.977237,        0.724436,       0.562341,     0.457088,    0.389045,    0.331131,   0.295121,
    0.269153,        0.257040,       0.251189,     0.251189,    0.251189,    0.251189,   0.263027,
    0.288403,        0.309030,       0.338844,     0.371535,    0.398107,    0.436516,   0.467735,
    0.489779,        0.501187,       0.501187,     0.512861,    0.524807,    0.524807,   0.524807,
    0.512861,        0.478630,       0.426580,     0.371535,    0.363078,    0.416869,   0.537032};

// Pitch-power and loudness scaling of the perceptual model.
constexpr double kSp8k = 2.764344e-5;
constexpr double kSp16k = 6.910853e-6;
constexpr double kSl = 1.866055e-1;

// Everything that depends on the sample rate.
struct RateParams {
  long rate_hz;
  long downsample;  // samples per VAD window (4 ms)
  long align_nfft;  // fine-alignment frame (64 ms)
  long nf;          // perceptual-model frame (32 ms)
  int bands;
  double sp;
  const std::vector<Biquad>* align_iir;
  const std::vector<Biquad>* wide_band_filter;
  std::vector<int> bins_per_band;
  std::vector<double> pow_dens_correction;
  long padding() const { return kDataPaddingMs * (rate_hz / 1000); }
  long search_offset() const { return kSearchBuffer * downsample; }
};

RateParams rate_params(int sample_rate_hz) {
  RateParams p{};
  p.rate_hz = sample_rate_hz;
  if (sample_rate_hz == 8000) {
    p.downsample = 32;
    p.align_nfft = 512;
    p.bands = kBands8k;
    p.sp = kSp8k;
    p.align_iir = &kAlignIir8k;
    p.wide_band_filter = &kWideBandFilter8k;
  } else {
    p.downsample = 64;
    p.align_nfft = 1024;
    p.bands = kBands16k;
    p.sp = kSp16k;
    p.align_iir = &kAlignIir16k;
    p.wide_band_filter = &kWideBandFilter16k;
  }
  p.nf = p.downsample * 8;
  p.bins_per_band.assign(kBinsPerBand.begin(), kBinsPerBand.begin() + p.bands);
  p.pow_dens_correction.assign(kPowDensCorrection.begin(), kPowDensCorrection.begin() + p.bands);
  if (sample_rate_hz == 8000) {
    p.bins_per_band.back() = kLastBinsPerBand8k;
    p.pow_dens_correction.back() = kLastPowDensCorrection8k;
  }
  return p;
}

// ---- FFT (single precision, as the reference) ----

class RealFft {
 public:
  explicit RealFft(long n) : n_(n) {
    std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    time_ = fftwf_alloc_real(n);
    freq_ = fftwf_alloc_complex(n / 2 + 1);
    forward_ = fftwf_plan_dft_r2c_1d(static_cast<int>(n), time_, freq_, FFTW_ESTIMATE);
    inverse_ = fftwf_plan_dft_c2r_1d(static_cast<int>(n), freq_, time_, FFTW_ESTIMATE);
    if (!time_ || !freq_ || !forward_ || !inverse_) throw Error("pesq: FFTW planning failed");
  }
  ~RealFft() {
    std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    if (forward_) fftwf_destroy_plan(forward_);
    if (inverse_) fftwf_destroy_plan(inverse_);
    fftwf_free(time_);
    fftwf_free(freq_);
  }
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  long size() const { return n_; }
  float* time() { return time_; }
  fftwf_complex* freq() { return freq_; }
  void forward() { fftwf_execute(forward_); }
  // Unnormalised: the result is n times the inverse transform.
  void inverse() { fftwf_execute(inverse_); }

 private:
  long n_;
  float* time_ = nullptr;
  fftwf_complex* freq_ = nullptr;
  fftwf_plan forward_ = nullptr;
  fftwf_plan inverse_ = nullptr;
};

// The transforms of one PESQ computation, one per size.
class FftCache {
 public:
  RealFft& get(long n) {
    auto& slot = ffts_[n];
    if (!slot) slot = std::make_unique<RealFft>(n);
    return *slot;
  }

 private:
  std::map<long, std::unique_ptr<RealFft>> ffts_;
};

long next_pow2(long n) {
  long p = 1;
  while (p < n) p <<= 1;
  return p;
}

// ---- Signals ----

// A signal as the recommendation pads it: kSearchBuffer VAD windows of zeros either side
// (`nsamples` counts them) and kDataPaddingMs of zeros after.
struct Signal {
  std::vector<float> data;
  long nsamples = 0;
  std::vector<double> vad;      // per 4 ms window: power, negative where not speech
  std::vector<double> log_vad;  // log(power / threshold) in speech, 0 elsewhere
};

Signal load_signal(const float* x, size_t n, const RateParams& p) {
  Signal s;
  s.nsamples = static_cast<long>(n) + 2 * p.search_offset();
  s.data.assign(static_cast<size_t>(s.nsamples + p.padding()), 0.0f);
  std::copy(x, x + n, s.data.begin() + p.search_offset());
  return s;
}

double power_of(const std::vector<float>& x, long start, long stop, long divisor) {
  double sum = 0.0;
  for (long i = start; i < stop; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum / static_cast<double>(divisor);
}

double curve_gain_db(const Curve& curve, double freq_hz) {
  if (freq_hz <= curve.front()[0]) return curve.front()[1];
  if (freq_hz >= curve.back()[0]) return curve.back()[1];
  size_t k = 0;
  while (freq_hz >= curve[k + 1][0]) ++k;
  const double t = (freq_hz - curve[k][0]) / (curve[k + 1][0] - curve[k][0]);
  return curve[k][1] + t * (curve[k + 1][1] - curve[k][1]);
}

// Zero-phase filtering by a (Hz, dB) curve, normalised to 0 dB at 1 kHz, over the signal and the
// padding after it, in one FFT of the next power of two.
void filter_by_curve(std::vector<float>& data, long nsamples, const Curve& curve,
                     const RateParams& p, FftCache& ffts) {
  const long n = nsamples - 2 * p.search_offset() + p.padding();
  RealFft& fft = ffts.get(next_pow2(n));
  const long size = fft.size();
  float* t = fft.time();
  std::fill(t, t + size, 0.0f);
  std::copy(data.begin() + p.search_offset(), data.begin() + p.search_offset() + n, t);
  fft.forward();
  fftwf_complex* f = fft.freq();
  const double gain_1khz_db = curve_gain_db(curve, 1000.0);
  for (long i = 0; i < size / 2 + 1; ++i) {
    const double freq_hz = static_cast<double>(i) * p.rate_hz / static_cast<double>(size);
    const double gain = std::pow(10.0, (curve_gain_db(curve, freq_hz) - gain_1khz_db) / 20.0);
    f[i][0] = static_cast<float>(f[i][0] * gain);
    f[i][1] = static_cast<float>(f[i][1] * gain);
  }
  fft.inverse();
  for (long i = 0; i < n; ++i)
    data[p.search_offset() + i] = static_cast<float>(t[i] / static_cast<double>(size));
}

// Cascade of biquads (direct form I), each section's output rounded to single precision as the
// next one's input. Sample by sample through all sections, with the section count known at
// compile time so that the states stay in registers and the sections of successive samples
// overlap in the pipeline; two signals are filtered in one pass, each with its own state, for
// twice the independent work per step.
template <size_t kSections>
class IirCascade {
 public:
  explicit IirCascade(const std::vector<Biquad>& sections) {
    std::copy(sections.begin(), sections.end(), c_.begin());
  }
  float step(float v) {
    for (size_t k = 0; k < kSections; ++k) {
      const double in = v;
      const double y = c_[k][0] * in + c_[k][1] * x1_[k] + c_[k][2] * x2_[k] - c_[k][3] * y1_[k] -
                       c_[k][4] * y2_[k];
      x2_[k] = x1_[k];
      x1_[k] = in;
      y2_[k] = y1_[k];
      y1_[k] = y;
      v = static_cast<float>(y);
    }
    return v;
  }

 private:
  std::array<Biquad, kSections> c_{};
  std::array<double, kSections> x1_{}, x2_{}, y1_{}, y2_{};
};

template <size_t kSections>
void iir_cascade(const std::vector<Biquad>& sections, float* a, long na, float* b, long nb) {
  IirCascade<kSections> fa(sections), fb(sections);
  const long common = std::min(na, nb);
  for (long i = 0; i < common; ++i) {
    a[i] = fa.step(a[i]);
    b[i] = fb.step(b[i]);
  }
  for (long i = common; i < na; ++i) a[i] = fa.step(a[i]);
  for (long i = common; i < nb; ++i) b[i] = fb.step(b[i]);
}

// Filters a[0..na) and b[0..nb) independently.
void iir_filter(const std::vector<Biquad>& sections, float* a, long na, float* b, long nb) {
  switch (sections.size()) {
    case 1:
      return iir_cascade<1>(sections, a, na, b, nb);
    case 8:
      return iir_cascade<8>(sections, a, na, b, nb);
    case 12:
      return iir_cascade<12>(sections, a, na, b, nb);
    default:
      throw Error("pesq: unexpected filter of " + std::to_string(sections.size()) + " sections");
  }
}

// Scales the signal so that its power in 350 Hz - 3.25 kHz (over the longer signal's duration)
// is kTargetAvgPower.
void fix_power_level(Signal& s, long max_nsamples, const RateParams& p, FftCache& ffts,
                     const char* name) {
  std::vector<float> filtered = s.data;
  filter_by_curve(filtered, s.nsamples, kAlignFilterDb, p, ffts);
  const double power =
      power_of(filtered, p.search_offset(), s.nsamples - p.search_offset() + p.padding(),
               max_nsamples - 2 * p.search_offset() + p.padding());
  if (!(power > 0.0))
    throw Error(std::string("pesq: the ") + name +
                " signal is silent (no power between 350 Hz and 3.25 kHz)");
  const double scale = std::sqrt(kTargetAvgPower / power);
  for (long i = 0; i < s.nsamples; ++i) s.data[i] = static_cast<float>(s.data[i] * scale);
}

// Removes the mean and fades the first and last 4 ms in (the reference's DC_block).
void dc_block(Signal& s, const RateParams& p) {
  const long ofs = p.search_offset();
  const long ds = p.downsample;
  double mean = 0.0;
  for (long i = ofs; i < s.nsamples - ofs; ++i) mean += s.data[i];
  mean /= static_cast<double>(s.nsamples);
  for (long i = ofs; i < s.nsamples - ofs; ++i) s.data[i] = static_cast<float>(s.data[i] - mean);
  for (long i = ofs; i < ofs + ds; ++i)
    s.data[i] = static_cast<float>(s.data[i] * (0.5 + static_cast<double>(i - ofs)) / ds);
  for (long i = s.nsamples - ofs - 1; i >= s.nsamples - ofs - ds; --i)
    s.data[i] =
        static_cast<float>(s.data[i] * (0.5 + static_cast<double>(s.nsamples - ofs - 1 - i)) / ds);
}

// Voice-activity detection on 4 ms windows with an adaptive noise threshold.
void compute_vad(Signal& s, const RateParams& p) {
  const long ds = p.downsample;
  const long nwindows = s.nsamples / ds;
  std::vector<double>& vad = s.vad;
  vad.assign(static_cast<size_t>(nwindows), 0.0);
  for (long w = 0; w < nwindows; ++w) {
    double sum = 0.0;
    for (long i = 0; i < ds; ++i) {
      const double x = s.data[w * ds + i];
      sum += x * x;
    }
    vad[w] = sum / static_cast<double>(ds);
  }
  double threshold = 0.0, level_min = 0.0;
  for (long w = 0; w < nwindows; ++w) {
    threshold += vad[w];
    level_min = std::max(level_min, vad[w]);
  }
  threshold /= static_cast<double>(nwindows);
  level_min = level_min > 0.0 ? level_min * 1e-4 : 1.0;
  for (double& v : vad) v = std::max(v, level_min);

  for (int iteration = 0; iteration < 12; ++iteration) {
    double level_noise = 0.0, std_noise = 0.0;
    long length = 0;
    for (double v : vad)
      if (v <= threshold) {
        level_noise += v;
        ++length;
      }
    if (length > 0) {
      level_noise /= static_cast<double>(length);
      for (double v : vad)
        if (v <= threshold) std_noise += (v - level_noise) * (v - level_noise);
      std_noise = std::sqrt(std_noise / static_cast<double>(length));
    }
    threshold = 1.001 * (level_noise + 2.0 * std_noise);
  }

  double level_noise = 0.0, level_signal = 0.0;
  long length = 0;
  for (double v : vad) {
    if (v > threshold) {
      level_signal += v;
      ++length;
    } else {
      level_noise += v;
    }
  }
  if (length > 0)
    level_signal /= static_cast<double>(length);
  else
    threshold = -1.0;
  if (length < nwindows)
    level_noise /= static_cast<double>(nwindows - length);
  else
    level_noise = 1.0;

  for (double& v : vad)
    if (v <= threshold) v = -v;
  vad[0] = -level_min;
  vad[nwindows - 1] = -level_min;

  // Speech bursts of kMinSpeechLength windows or less are noise.
  long start = 0, finish = 0;
  for (long w = 1; w < nwindows; ++w) {
    if (vad[w] > 0.0 && vad[w - 1] <= 0.0) start = w;
    if (vad[w] <= 0.0 && vad[w - 1] > 0.0) {
      finish = w;
      if (finish - start <= kMinSpeechLength)
        for (long k = start; k < finish; ++k) vad[k] = -vad[k];
    }
  }
  // In clean recordings, weak speech bursts (mean power under three times the threshold) are
  // noise.
  if (level_signal >= level_noise * 1000.0) {
    for (long w = 1; w < nwindows; ++w) {
      if (vad[w] > 0.0 && vad[w - 1] <= 0.0) start = w;
      if (vad[w] <= 0.0 && vad[w - 1] > 0.0) {
        finish = w;
        double sum = 0.0;
        for (long k = start; k < finish; ++k) sum += vad[k];
        if (sum < 3.0 * threshold * static_cast<double>(finish - start))
          for (long k = start; k < finish; ++k) vad[k] = -vad[k];
      }
    }
  }
  // Pauses of kJoinSpeechLength windows or less between speech are joined into it.
  start = 0;
  finish = 0;
  for (long w = 1; w < nwindows; ++w) {
    if (vad[w] > 0.0 && vad[w - 1] <= 0.0) {
      start = w;
      if (finish > 0 && start - finish <= kJoinSpeechLength)
        for (long k = finish; k < start; ++k) vad[k] = level_min;
    }
    if (vad[w] <= 0.0 && vad[w - 1] > 0.0) finish = w;
  }
  // No speech onset at all: everything counts as speech.
  start = 0;
  for (long w = 1; w < nwindows; ++w)
    if (vad[w] > 0.0 && vad[w - 1] <= 0.0) start = w;
  if (start == 0) {
    for (double& v : vad) v = std::fabs(v);
    vad[0] = -level_min;
    vad[nwindows - 1] = -level_min;
  }
  // Soft onsets and offsets: two windows ramp in before speech and out after it.
  long w = 3;
  while (w < nwindows - 2) {
    if (vad[w] > 0.0 && vad[w - 2] <= 0.0) {
      vad[w - 2] = vad[w] * 0.1;
      vad[w - 1] = vad[w] * 0.3;
      ++w;
    }
    if (vad[w] <= 0.0 && vad[w - 1] > 0.0) {
      vad[w] = vad[w - 1] * 0.3;
      vad[w + 1] = vad[w - 1] * 0.1;
      w += 3;
    }
    ++w;
  }
  for (double& v : vad) v = std::max(v, 0.0);
  if (threshold <= 0.0) threshold = level_min;
  s.log_vad.assign(static_cast<size_t>(nwindows), 0.0);
  for (long k = 0; k < nwindows; ++k)
    if (vad[k] > threshold) s.log_vad[k] = std::log(vad[k] / threshold);
}

// ---- Time alignment ----

struct Alignment {
  long crude_delay = 0;  // samples
  long count = 0;        // utterances
  // Per utterance (one extra slot, index kMaxUtterances, for trial alignments):
  std::array<long, kMaxUtterances + 1> search_start{};  // VAD windows
  std::array<long, kMaxUtterances + 1> search_end{};
  std::array<long, kMaxUtterances + 1> delay_estimate{};  // samples, from the crude alignment
  std::array<long, kMaxUtterances + 1> delay{};           // samples, fine
  std::array<double, kMaxUtterances + 1> confidence{};
  std::array<long, kMaxUtterances + 1> start{};  // VAD windows
  std::array<long, kMaxUtterances + 1> end{};
};

// Full linear cross-correlation y[k] = sum_i x1[i] x2[i + k - n1 + 1], k = 0..n1+n2-2.
std::vector<double> cross_correlation(const double* x1, long n1, const double* x2, long n2,
                                      FftCache& ffts) {
  const long size = 2 * next_pow2(std::max(n1, n2));
  RealFft& fft = ffts.get(size);
  std::vector<std::complex<float>> spectrum1(static_cast<size_t>(size / 2 + 1));
  float* t = fft.time();
  std::fill(t, t + size, 0.0f);
  for (long i = 0; i < n1; ++i) t[i] = static_cast<float>(x1[n1 - 1 - i]);
  fft.forward();
  for (long i = 0; i <= size / 2; ++i)
    spectrum1[i] = std::complex<float>(fft.freq()[i][0], fft.freq()[i][1]);
  std::fill(t, t + size, 0.0f);
  for (long i = 0; i < n2; ++i) t[i] = static_cast<float>(x2[i]);
  fft.forward();
  for (long i = 0; i <= size / 2; ++i) {
    const std::complex<float> v =
        spectrum1[i] * std::complex<float>(fft.freq()[i][0], fft.freq()[i][1]);
    fft.freq()[i][0] = v.real();
    fft.freq()[i][1] = v.imag();
  }
  fft.inverse();
  std::vector<double> y(static_cast<size_t>(n1 + n2 - 1));
  for (long i = 0; i < n1 + n2 - 1; ++i) y[i] = t[i] / static_cast<double>(size);
  return y;
}

enum : long { kWholeSignal = -1 };

// Delay from the cross-correlation of the log-VAD envelopes, for the whole signal, an utterance,
// or the trial slot kMaxUtterances.
void crude_align(const Signal& ref, const Signal& deg, Alignment& a, long utt, const RateParams& p,
                 FftCache& ffts) {
  const long ds = p.downsample;
  const long deg_windows = deg.nsamples / ds;
  long nr, nd, startr, startd;
  if (utt == kWholeSignal) {
    nr = ref.nsamples / ds;
    nd = deg_windows;
    startr = 0;
    startd = 0;
  } else {
    // Utterances start from the whole signal's delay, trial halves from their own estimate.
    const long estimate = utt == kMaxUtterances ? a.delay_estimate[utt] : a.crude_delay;
    startr = a.search_start[utt];
    startd = startr + estimate / ds;
    if (startd < 0) {
      startr = -estimate / ds;
      startd = 0;
    }
    nr = a.search_end[utt] - startr;
    nd = nr;
    if (startd + nd > deg_windows) nd = deg_windows - startd;
  }
  double max_y = 0.0;
  long i_max = nr - 1;
  if (nr > 1 && nd > 1) {
    const std::vector<double> y =
        cross_correlation(ref.log_vad.data() + startr, nr, deg.log_vad.data() + startd, nd, ffts);
    for (long k = 0; k < nr + nd - 1; ++k)
      if (y[k] > max_y) {
        max_y = y[k];
        i_max = k;
      }
  }
  const long lag = (i_max - nr + 1) * ds;
  if (utt == kWholeSignal)
    a.crude_delay = lag;
  else if (utt == kMaxUtterances)
    a.delay[utt] = lag + a.delay_estimate[utt];
  else
    a.delay_estimate[utt] = lag + a.crude_delay;
}

// Fine alignment: a histogram of per-frame cross-correlation peaks (64 ms Hann frames, 75%
// overlap), each weighted by the peak's magnitude to the power 1/8, smoothed by a triangle.
class DelayHistogram {
 public:
  DelayHistogram(const RateParams& p, FftCache& ffts)
      : nfft_(p.align_nfft),
        kernel_(p.align_nfft / 64),
        fft_(ffts.get(p.align_nfft)),
        window_(static_cast<size_t>(p.align_nfft)),
        h_(static_cast<size_t>(p.align_nfft), 0.0),
        smoothed_(static_cast<size_t>(p.align_nfft), 0.0),
        spectrum_(static_cast<size_t>(p.align_nfft / 2 + 1)) {
    for (long i = 0; i < nfft_; ++i)
      window_[i] = 0.5 * (1.0 - std::cos(2.0 * M_PI * static_cast<double>(i) / nfft_));
  }
  void clear() {
    std::fill(h_.begin(), h_.end(), 0.0);
    sum_ = 0.0;
  }
  // Adds the frame of `ref` at startr against the frame of `deg` at startd.
  void add(const Signal& ref, long startr, const Signal& deg, long startd) {
    float* t = fft_.time();
    for (long i = 0; i < nfft_; ++i) t[i] = static_cast<float>(ref.data[startr + i] * window_[i]);
    fft_.forward();
    for (long i = 0; i <= nfft_ / 2; ++i)
      spectrum_[i] = std::complex<float>(fft_.freq()[i][0], fft_.freq()[i][1]);
    for (long i = 0; i < nfft_; ++i) t[i] = static_cast<float>(deg.data[startd + i] * window_[i]);
    fft_.forward();
    for (long i = 0; i <= nfft_ / 2; ++i) {
      const std::complex<float> v =
          std::conj(spectrum_[i]) * std::complex<float>(fft_.freq()[i][0], fft_.freq()[i][1]);
      fft_.freq()[i][0] = v.real();
      fft_.freq()[i][1] = v.imag();
    }
    fft_.inverse();
    float v_max = 0.0f;
    for (long i = 0; i < nfft_; ++i) {
      t[i] = std::fabs(t[i] / static_cast<float>(nfft_));
      v_max = std::max(v_max, t[i]);
    }
    // Every lag within 1% of the frame's peak votes, with the peak's magnitude to the power 1/8.
    v_max *= 0.99f;
    const double w = std::pow(static_cast<double>(v_max), 0.125);
    for (long i = 0; i < nfft_; ++i)
      if (t[i] > v_max) {
        h_[i] += w;
        sum_ += w;
      }
  }
  // The smoothed histogram's peak: (lag in samples, -nfft/2..nfft/2-1; confidence).
  std::pair<long, double> peak() {
    // The histogram is sparse (a few lags get votes): spread each vote over the triangle.
    std::fill(smoothed_.begin(), smoothed_.end(), 0.0);
    for (long i = 0; i < nfft_; ++i) {
      if (h_[i] == 0.0) continue;
      for (long k = 1 - kernel_; k < kernel_; ++k)
        smoothed_[(i + k + nfft_) % nfft_] +=
            h_[i] * (1.0 - static_cast<double>(std::labs(k)) / static_cast<double>(kernel_));
    }
    double v_max = 0.0;
    long i_max = 0;
    for (long i = 0; i < nfft_; ++i)
      if (smoothed_[i] > v_max) {
        v_max = smoothed_[i];
        i_max = i;
      }
    if (i_max >= nfft_ / 2) i_max -= nfft_;
    return {i_max, sum_ > 0.0 ? v_max / sum_ : 0.0};
  }

 private:
  long nfft_;
  long kernel_;
  RealFft& fft_;
  std::vector<double> window_;
  std::vector<double> h_;
  std::vector<double> smoothed_;
  double sum_ = 0.0;
  std::vector<std::complex<float>> spectrum_;
};

void time_align(const Signal& ref, const Signal& deg, Alignment& a, long utt, const RateParams& p,
                FftCache& ffts) {
  const long nfft = p.align_nfft;
  const long estimate = a.delay_estimate[utt];
  long startr = a.search_start[utt] * p.downsample;
  long startd = startr + estimate;
  if (startd < 0) {
    startr = -estimate;
    startd = 0;
  }
  DelayHistogram histogram(p, ffts);
  while (startd + nfft <= deg.nsamples && startr + nfft <= a.search_end[utt] * p.downsample) {
    histogram.add(ref, startr, deg, startd);
    startr += nfft / 4;
    startd += nfft / 4;
  }
  const auto [lag, confidence] = histogram.peak();
  a.delay[utt] = estimate + lag;
  a.confidence[utt] = confidence;
}

// Speech stretches of the reference's VAD that are long enough and that the degraded signal
// (shifted by the crude delay) covers: the search windows (with kSearchBuffer windows of margin)
// or the utterances themselves.
void find_speech_stretches(const Signal& ref, const Signal& deg, const Alignment& a,
                           const RateParams& p, bool with_margin, long& count,
                           std::array<long, kMaxUtterances + 1>& starts,
                           std::array<long, kMaxUtterances + 1>& ends) {
  const long ds = p.downsample;
  const long vad_length = ref.nsamples / ds;
  const long del_deg_start = kMinUtteranceLength - a.crude_delay / ds;
  const long del_deg_end = (deg.nsamples - a.crude_delay) / ds - kMinUtteranceLength;
  count = 0;
  bool speech = false;
  long this_start = 0;
  for (long w = 0; w < vad_length && count < kMaxUtterances; ++w) {
    const double v = ref.vad[w];
    if (v > 0.0 && !speech) {
      speech = true;
      this_start = w;
      starts[count] = with_margin ? std::max(w - kSearchBuffer, 0L) : w;
    }
    if ((v <= 0.0 || w == vad_length - 1) && speech) {
      speech = false;
      ends[count] = with_margin ? std::min(w + kSearchBuffer, vad_length - 1) : w;
      if (w - this_start >= kMinUtteranceLength && this_start < del_deg_end && w > del_deg_start)
        ++count;
    }
  }
}

void id_utterances(const Signal& ref, const Signal& deg, Alignment& a, const RateParams& p) {
  const long ds = p.downsample;
  const long vad_length = ref.nsamples / ds;
  long count = 0;
  find_speech_stretches(ref, deg, a, p, false, count, a.start, a.end);
  const long n = a.count;
  a.start[0] = kSearchBuffer;
  a.end[n - 1] = vad_length - kSearchBuffer;
  for (long u = 1; u < n; ++u) {
    const long middle = (a.start[u] + a.end[u - 1]) / 2;
    a.start[u] = middle;
    a.end[u - 1] = middle;
  }
  if (a.start[0] * ds + a.delay[0] < kSearchBuffer * ds)
    a.start[0] = kSearchBuffer + (ds - 1 - a.delay[0]) / ds;
  if (a.end[n - 1] * ds + a.delay[n - 1] > deg.nsamples - kSearchBuffer * ds)
    a.end[n - 1] = (deg.nsamples - a.delay[n - 1]) / ds - kSearchBuffer;
  for (long u = 1; u < n; ++u) {
    const long this_start = a.start[u] * ds + a.delay[u];
    const long last_end = a.end[u - 1] * ds + a.delay[u - 1];
    if (this_start < last_end) {
      const long middle = (this_start + last_end) / 2;
      a.start[u] = (ds - 1 + middle - a.delay[u]) / ds;
      a.end[u - 1] = (middle - a.delay[u - 1]) / ds;
    }
  }
}

struct SplitResult {
  bool found = false;
  long estimate1 = 0, delay1 = 0, estimate2 = 0, delay2 = 0;
  double confidence1 = 0.0, confidence2 = 0.0;
  long breakpoint = 0;
};

// Tries break points inside an utterance and returns the best one whose two halves have
// different delays, each aligned with more confidence than the whole.
SplitResult split_align(const Signal& ref, const Signal& deg, Alignment& a, long utt_start,
                        long speech_start, long speech_end, long utt_end, long estimate,
                        double confidence, const RateParams& p, FftCache& ffts) {
  const long ds = p.downsample;
  const long nfft = p.align_nfft;
  const long utt_len = speech_end - speech_start;
  const long delta = nfft / (4 * ds);
  long step = static_cast<long>(std::floor((0.801 * utt_len + 40 * delta - 1) / (40 * delta)));
  step *= delta;
  long pad = utt_len / 10;
  if (pad < 75) pad = 75;

  std::vector<long> bps(1, speech_start + pad);
  do {
    bps.push_back(bps.back() + step);
  } while (bps.back() <= speech_end - pad && bps.size() < 41);
  const long n_bps = static_cast<long>(bps.size()) - 1;
  SplitResult best;
  if (n_bps <= 0) return best;

  std::vector<long> ed1(n_bps), ed2(n_bps), d1(n_bps), d2(n_bps);
  std::vector<double> dc1(n_bps, -2.0), dc2(n_bps, -2.0);
  constexpr long trial = kMaxUtterances;
  for (long bp = 0; bp < n_bps; ++bp) {
    a.delay_estimate[trial] = estimate;
    a.search_start[trial] = utt_start;
    a.search_end[trial] = bps[bp];
    crude_align(ref, deg, a, trial, p, ffts);
    ed1[bp] = a.delay[trial];
    a.delay_estimate[trial] = estimate;
    a.search_start[trial] = bps[bp];
    a.search_end[trial] = utt_end;
    crude_align(ref, deg, a, trial, p, ffts);
    ed2[bp] = a.delay[trial];
  }

  DelayHistogram histogram(p, ffts);
  // First halves: frames from the utterance start forwards, one pass per distinct estimate.
  while (true) {
    long bp = 0;
    while (bp < n_bps && dc1[bp] > -2.0) ++bp;
    if (bp >= n_bps) break;
    const long est = ed1[bp];
    histogram.clear();
    long startr = utt_start * ds;
    long startd = startr + est;
    if (startd < 0) {
      startr = -est;
      startd = 0;
    }
    for (; bp < n_bps; ++bp) {
      if (ed1[bp] != est || dc1[bp] > -2.0) continue;
      while (startd + nfft <= deg.nsamples && startr + nfft <= bps[bp] * ds) {
        histogram.add(ref, startr, deg, startd);
        startr += nfft / 4;
        startd += nfft / 4;
      }
      const auto [lag, conf] = histogram.peak();
      d1[bp] = est + lag;
      dc1[bp] = conf;
    }
  }
  // Second halves: frames from the utterance end backwards, only where the first half is aligned
  // with more confidence than the whole.
  for (long bp = 0; bp < n_bps; ++bp)
    if (!(dc1[bp] > confidence)) dc2[bp] = 0.0;
  while (true) {
    long bp = n_bps - 1;
    while (bp >= 0 && dc2[bp] > -2.0) --bp;
    if (bp < 0) break;
    const long est = ed2[bp];
    histogram.clear();
    long startr = utt_end * ds - nfft;
    long startd = startr + est;
    if (startd + nfft > deg.nsamples) {
      startd = deg.nsamples - nfft;
      startr = startd - est;
    }
    for (; bp >= 0; --bp) {
      if (ed2[bp] != est || dc2[bp] > -2.0) continue;
      while (startd >= 0 && startr >= bps[bp] * ds) {
        histogram.add(ref, startr, deg, startd);
        startr -= nfft / 4;
        startd -= nfft / 4;
      }
      const auto [lag, conf] = histogram.peak();
      d2[bp] = est + lag;
      dc2[bp] = conf;
    }
  }

  for (long bp = 0; bp < n_bps; ++bp) {
    if (std::labs(d2[bp] - d1[bp]) >= ds &&
        dc1[bp] + dc2[bp] > best.confidence1 + best.confidence2 && dc1[bp] > confidence &&
        dc2[bp] > confidence) {
      best.found = true;
      best.estimate1 = ed1[bp];
      best.delay1 = d1[bp];
      best.confidence1 = dc1[bp];
      best.estimate2 = ed2[bp];
      best.delay2 = d2[bp];
      best.confidence2 = dc2[bp];
      best.breakpoint = bps[bp];
    }
  }
  return best;
}

void utterance_split(const Signal& ref, const Signal& deg, Alignment& a, const RateParams& p,
                     FftCache& ffts) {
  const long ds = p.downsample;
  long u = 0;
  while (u < a.count && a.count < kMaxUtterances) {
    const long utt_start = a.start[u];
    const long utt_end = a.end[u];
    long speech_start = utt_start;
    while (speech_start < utt_end && ref.vad[speech_start] <= 0.0) ++speech_start;
    long speech_end = utt_end;
    while (speech_end > utt_start && ref.vad[speech_end] <= 0.0) --speech_end;
    ++speech_end;
    if (speech_end - speech_start < 200) {
      ++u;
      continue;
    }
    const SplitResult s = split_align(ref, deg, a, utt_start, speech_start, speech_end, utt_end,
                                      a.delay_estimate[u], a.confidence[u], p, ffts);
    if (!(s.found && s.confidence1 > a.confidence[u] && s.confidence2 > a.confidence[u])) {
      ++u;
      continue;
    }
    for (long k = a.count - 1; k > u; --k) {
      a.delay_estimate[k + 1] = a.delay_estimate[k];
      a.delay[k + 1] = a.delay[k];
      a.confidence[k + 1] = a.confidence[k];
      a.start[k + 1] = a.start[k];
      a.end[k + 1] = a.end[k];
      a.search_start[k + 1] = a.search_start[k];
      a.search_end[k + 1] = a.search_end[k];
    }
    ++a.count;
    a.delay_estimate[u] = s.estimate1;
    a.delay[u] = s.delay1;
    a.confidence[u] = s.confidence1;
    a.delay_estimate[u + 1] = s.estimate2;
    a.delay[u + 1] = s.delay2;
    a.confidence[u + 1] = s.confidence2;
    a.search_start[u + 1] = a.search_start[u];
    a.search_end[u + 1] = a.search_end[u];
    a.start[u] = utt_start;
    a.end[u + 1] = utt_end;
    if (s.delay2 < s.delay1) {
      a.end[u] = s.breakpoint;
      a.start[u + 1] = s.breakpoint;
    } else {
      a.end[u] = s.breakpoint + (s.delay2 - s.delay1) / (2 * ds);
      a.start[u + 1] = s.breakpoint - (s.delay2 - s.delay1) / (2 * ds);
    }
    if (a.start[u] * ds + a.delay[u] < kSearchBuffer * ds)
      a.start[u] = kSearchBuffer + (ds - 1 - a.delay[u]) / ds;
    if (a.end[u + 1] * ds + a.delay[u + 1] > deg.nsamples - kSearchBuffer * ds)
      a.end[u + 1] = (deg.nsamples - a.delay[u + 1]) / ds - kSearchBuffer;
  }
}

void utterance_locate(const Signal& ref, const Signal& deg, Alignment& a, const RateParams& p,
                      FftCache& ffts) {
  find_speech_stretches(ref, deg, a, p, true, a.count, a.search_start, a.search_end);
  for (long u = 0; u < a.count; ++u) {
    a.delay_estimate[u] = a.crude_delay;
    crude_align(ref, deg, a, u, p, ffts);
    time_align(ref, deg, a, u, p, ffts);
  }
  if (a.count == 0) return;
  id_utterances(ref, deg, a, p);
  utterance_split(ref, deg, a, p, ffts);
}

// ---- Perceptual model ----

class PerceptualModel {
 public:
  PerceptualModel(const RateParams& p, FftCache& ffts)
      : p_(p),
        fft_(ffts.get(p.nf)),
        window_(static_cast<size_t>(p.nf)),
        spectrum_(static_cast<size_t>(p.nf / 2)) {
    for (long i = 0; i < p.nf; ++i)
      window_[i] = 0.5 * (1.0 - std::cos(2.0 * M_PI * static_cast<double>(i) / p.nf));
    for (int b = 0; b < p.bands; ++b) {
      double h = kCentreBark[b] < 4.0 ? 6.0 / (kCentreBark[b] + 2.0) : 1.0;
      if (h > 2.0) h = 2.0;
      zwicker_power_[b] = kZwickerPower * std::pow(h, 0.15);
      loudness_scale_[b] = std::pow(kAbsThreshPower[b] / 0.5, zwicker_power_[b]) * kSl;
    }
  }

  // Bark power densities of the frame of `data` at `start` into out[0..bands).
  void pitch_power_density(const std::vector<float>& data, long start, double* out) {
    float* t = fft_.time();
    for (long i = 0; i < p_.nf; ++i) t[i] = static_cast<float>(data[start + i] * window_[i]);
    fft_.forward();
    for (long k = 0; k < p_.nf / 2; ++k) {
      const double re = fft_.freq()[k][0], im = fft_.freq()[k][1];
      spectrum_[k] = re * re + im * im;
    }
    spectrum_[0] = 0.0;
    long bin = 0;
    for (int b = 0; b < p_.bands; ++b) {
      double sum = 0.0;
      for (int i = 0; i < p_.bins_per_band[b]; ++i) sum += spectrum_[bin++];
      out[b] = sum * p_.pow_dens_correction[b] * p_.sp;
    }
  }

  // Sum of the bands (but the first) above factor x the hearing threshold.
  double total_audible(const double* ppd, double factor) const {
    double sum = 0.0;
    for (int b = 1; b < p_.bands; ++b)
      if (ppd[b] > factor * kAbsThreshPower[b]) sum += ppd[b];
    return sum;
  }

  // Zwicker's loudness law with the reference's low-frequency exponent.
  void loudness(const double* ppd, double* out) const {
    for (int b = 0; b < p_.bands; ++b) {
      const double threshold = kAbsThreshPower[b];
      const double zp = zwicker_power_[b];
      out[b] = ppd[b] > threshold
                   ? loudness_scale_[b] * (std::pow(0.5 + 0.5 * ppd[b] / threshold, zp) - 1.0)
                   : 0.0;
    }
  }

  // Band-width-weighted L_p norm over the bands but the first.
  double pseudo_lp(const double* x, double power) const {
    double total_weight = 0.0, result = 0.0;
    for (int b = 1; b < p_.bands; ++b) {
      const double w = kWidthBark[b];
      const double v = std::fabs(x[b]) * w;
      result += power == 2.0 ? v * v : power == 1.0 ? v : std::pow(v, power);
      total_weight += w;
    }
    const double mean = result / total_weight;
    return (power == 2.0   ? std::sqrt(mean)
            : power == 1.0 ? mean
                           : std::pow(mean, 1.0 / power)) *
           total_weight;
  }

  // Symmetric and asymmetric frame disturbance; `ppd_deg` must already be gain-compensated.
  std::pair<double, double> frame_disturbance(const double* ppd_ref, const double* ppd_deg) {
    std::array<double, kBands16k> lr{}, ld{}, d{};
    loudness(ppd_ref, lr.data());
    loudness(ppd_deg, ld.data());
    for (int b = 0; b < p_.bands; ++b) {
      double x = ld[b] - lr[b];
      const double m = 0.25 * std::min(ld[b], lr[b]);
      if (x > m)
        x -= m;
      else if (x < -m)
        x += m;
      else
        x = 0.0;
      d[b] = x;
    }
    const double sym = pseudo_lp(d.data(), 2.0);
    for (int b = 0; b < p_.bands; ++b) {
      double h = std::pow((ppd_deg[b] + 50.0) / (ppd_ref[b] + 50.0), 1.2);
      if (h > 12.0) h = 12.0;
      if (h < 3.0) h = 0.0;
      d[b] *= h;
    }
    return {sym, pseudo_lp(d.data(), 1.0)};
  }

 private:
  const RateParams& p_;
  RealFft& fft_;
  std::vector<double> window_;
  std::vector<double> spectrum_;
  std::array<double, kBands16k> zwicker_power_{};
  std::array<double, kBands16k> loudness_scale_{};  // Sl (threshold / 0.5)^zwicker_power
};

// Lag (samples, -search_range..search_range-1) at which the envelope |deg| best matches |ref|
// over x[0..n), with the normalised correlation at that lag (0 for silence).
std::pair<long, double> envelope_delay(const std::vector<float>& ref, const std::vector<float>& deg,
                                       long search_range, FftCache& ffts) {
  const long n = static_cast<long>(ref.size());
  const long size = next_pow2(2 * n);
  const double energy1 = power_of(ref, 0, n, 1), energy2 = power_of(deg, 0, n, 1);
  if (energy1 / size <= 1e-6 || energy2 / size <= 1e-6) return {0, 0.0};
  RealFft& fft = ffts.get(size);
  float* t = fft.time();
  std::vector<std::complex<float>> spectrum1(static_cast<size_t>(size / 2 + 1));
  std::fill(t, t + size, 0.0f);
  for (long i = 0; i < n; ++i) t[i] = std::fabs(ref[i]);
  fft.forward();
  for (long i = 0; i <= size / 2; ++i)
    spectrum1[i] = std::complex<float>(fft.freq()[i][0], fft.freq()[i][1]);
  std::fill(t, t + size, 0.0f);
  for (long i = 0; i < n; ++i) t[i] = std::fabs(deg[i]);
  fft.forward();
  for (long i = 0; i <= size / 2; ++i) {
    const std::complex<float> v =
        std::conj(spectrum1[i]) * std::complex<float>(fft.freq()[i][0], fft.freq()[i][1]);
    fft.freq()[i][0] = v.real();
    fft.freq()[i][1] = v.imag();
  }
  fft.inverse();
  const double normalisation = static_cast<double>(size) * std::sqrt(energy1 * energy2);
  long best = 0;
  double best_value = 0.0;
  for (long k = -search_range; k < search_range; ++k) {
    const double h = std::fabs(t[(k + size) % size]) / normalisation;
    if (h > best_value) {
      best_value = h;
      best = k;
    }
  }
  return {best, best_value};
}

// Frame-level disturbances, their aggregation and the raw score.
PesqResult perceptual_score(const Signal& ref, const Signal& deg, const Alignment& a,
                            long max_nsamples, const RateParams& p, FftCache& ffts) {
  const long nf = p.nf;
  const long ofs = p.search_offset();
  const long pad = p.padding();
  const int nb = p.bands;
  PerceptualModel model(p, ffts);

  long skip_start = 0;
  double sum5 = 0.0;
  do {
    sum5 = 0.0;
    for (long i = 0; i < 5; ++i) sum5 += std::fabs(ref.data[ofs + skip_start + i]);
    if (sum5 < kSilence5Samples) ++skip_start;
  } while (sum5 < kSilence5Samples && skip_start < max_nsamples / 2);
  long skip_end = 0;
  do {
    sum5 = 0.0;
    for (long i = 0; i < 5; ++i)
      sum5 += std::fabs(ref.data[max_nsamples - ofs + pad - 1 - skip_end - i]);
    if (sum5 < kSilence5Samples) ++skip_end;
  } while (sum5 < kSilence5Samples && skip_end < max_nsamples / 2);

  const long start_frame = skip_start / (nf / 2);
  const long stop_frame = (max_nsamples - 2 * ofs + pad - skip_end) / (nf / 2) - 1;
  const long nframes = stop_frame + 1;
  if (nframes <= 0) throw Error("pesq: the reference has no frame of speech");

  auto delay_at = [&](long sample) {
    long u = a.count - 1;
    while (u >= 0 && a.start[u] * p.downsample > sample) --u;
    return u >= 0 ? a.delay[u] : a.delay[0];
  };

  std::vector<double> ppd_ref(static_cast<size_t>(nframes * nb));
  std::vector<double> ppd_deg(static_cast<size_t>(nframes * nb));
  std::vector<char> silent(static_cast<size_t>(nframes));
  for (long f = 0; f < nframes; ++f) {
    const long start_ref = ofs + f * nf / 2;
    model.pitch_power_density(ref.data, start_ref, &ppd_ref[f * nb]);
    const long start_deg = start_ref + delay_at(start_ref);
    if (start_deg > 0 && start_deg + nf < max_nsamples + pad)
      model.pitch_power_density(deg.data, start_deg, &ppd_deg[f * nb]);
    else
      std::fill(&ppd_deg[f * nb], &ppd_deg[f * nb] + nb, 0.0);
    silent[f] = model.total_audible(&ppd_ref[f * nb], 1e2) < 1e7;
  }

  // Frequency-response compensation of the reference, from the audible power averaged over the
  // non-silent frames.
  const long total_frames = (max_nsamples - 2 * ofs + pad) / (nf / 2) - 1;
  for (int b = 0; b < nb; ++b) {
    double avg_ref = 0.0, avg_deg = 0.0;
    for (long f = 0; f < nframes; ++f) {
      if (silent[f]) continue;
      if (ppd_ref[f * nb + b] > 100.0 * kAbsThreshPower[b]) avg_ref += ppd_ref[f * nb + b];
      if (ppd_deg[f * nb + b] > 100.0 * kAbsThreshPower[b]) avg_deg += ppd_deg[f * nb + b];
    }
    avg_ref /= static_cast<double>(total_frames);
    avg_deg /= static_cast<double>(total_frames);
    double x = (avg_deg + 1000.0) / (avg_ref + 1000.0);
    x = std::clamp(x, 0.01, 100.0);
    for (long f = 0; f < nframes; ++f) ppd_ref[f * nb + b] *= x;
  }

  // Gain compensation of the degraded signal, frame by frame (smoothed), and the disturbances.
  std::vector<double> disturbance(static_cast<size_t>(nframes));
  std::vector<double> disturbance_asym(static_cast<size_t>(nframes));
  std::vector<double> total_power_ref(static_cast<size_t>(nframes));
  bool any_bad_frame = false;
  auto compensate_and_score = [&](long f, double& old_scale, double& sym, double& asym) {
    const double audible_ref = model.total_audible(&ppd_ref[f * nb], 1.0);
    const double audible_deg = model.total_audible(&ppd_deg[f * nb], 1.0);
    double scale = (audible_ref + 5e3) / (audible_deg + 5e3);
    if (f > 0) scale = 0.2 * old_scale + 0.8 * scale;
    old_scale = scale;
    scale = std::clamp(scale, kMinScale, kMaxScale);
    for (int b = 0; b < nb; ++b) ppd_deg[f * nb + b] *= scale;
    std::tie(sym, asym) = model.frame_disturbance(&ppd_ref[f * nb], &ppd_deg[f * nb]);
    return audible_ref;
  };
  {
    double old_scale = 1.0;
    for (long f = 0; f < nframes; ++f) {
      total_power_ref[f] = compensate_and_score(f, old_scale, disturbance[f], disturbance_asym[f]);
      if (disturbance[f] > kThresholdBadFrames) any_bad_frame = true;
    }
  }

  // Frames where the delay jumps back (the degraded signal repeats) are not scored.
  for (long u = 1; u < a.count; ++u) {
    long frame1 = ((a.start[u] - kSearchBuffer) * p.downsample + a.delay[u]) / (nf / 2);
    const long j = ((a.end[u - 1] - kSearchBuffer) * p.downsample + a.delay[u - 1]) / (nf / 2);
    const long delay_jump = a.delay[u] - a.delay[u - 1];
    if (frame1 > j) frame1 = j;
    if (frame1 < 0) frame1 = 0;
    if (delay_jump < -(nf / 2)) {
      const long frame2 =
          ((a.start[u] - kSearchBuffer) * p.downsample + std::labs(delay_jump)) / (nf / 2) + 1;
      for (long f = frame1; f <= frame2; ++f)
        if (f < stop_frame) {
          disturbance[f] = 0.0;
          disturbance_asym[f] = 0.0;
        }
    }
  }

  // Bad intervals: runs of badly disturbed frames are re-aligned locally, and the re-aligned
  // disturbance is kept where it is lower.
  if (any_bad_frame) {
    const long nn = max_nsamples + pad;
    std::vector<float> tweaked(static_cast<size_t>(nn), 0.0f);
    for (long i = ofs; i < nn - ofs; ++i) {
      long j = i + delay_at(i);
      j = std::clamp(j, ofs, nn - ofs - 1);
      tweaked[i] = deg.data[j];
    }
    std::vector<char> bad(static_cast<size_t>(nframes)), smeared(static_cast<size_t>(nframes), 0);
    for (long f = 0; f < nframes; ++f) bad[f] = disturbance[f] > kThresholdBadFrames;
    bad[0] = 0;
    for (long f = kSmearRange; f < stop_frame - kSmearRange; ++f) {
      char left = bad[f], right = bad[f];
      for (long i = -kSmearRange; i <= 0; ++i) left = std::max(left, bad[f + i]);
      for (long i = 0; i <= kSmearRange; ++i) right = std::max(right, bad[f + i]);
      smeared[f] = std::min(left, right);
    }
    std::vector<std::pair<long, long>> intervals;  // [start, stop) frames
    long f = 0;
    while (f <= stop_frame) {
      while (f <= stop_frame && !smeared[f]) ++f;
      if (f > stop_frame) break;
      const long first = f;
      while (f <= stop_frame && smeared[f]) ++f;
      if (f <= stop_frame && f - first >= kMinBadFramesInInterval) intervals.emplace_back(first, f);
    }
    if (!intervals.empty()) {
      std::vector<float> doubly = tweaked;
      const long search_range = kSearchRangeInTransforms * nf;
      for (const auto& [first, last] : intervals) {
        // The interval's reference, padded with zeros by the search range either side, against
        // the aligned degraded signal around it; a weak match (correlation under 0.5) keeps 0.
        const long start_sample = first * (nf / 2) + ofs;
        const long stop_sample = last * (nf / 2) + nf + ofs;
        const long n = stop_sample - start_sample;
        std::vector<float> ref_part(static_cast<size_t>(n + 2 * search_range), 0.0f);
        std::vector<float> deg_part(ref_part.size());
        std::copy(ref.data.begin() + start_sample, ref.data.begin() + stop_sample,
                  ref_part.begin() + search_range);
        const long last_index = max_nsamples - ofs + pad - 1;
        for (long i = 0; i < n + 2 * search_range; ++i)
          deg_part[i] = tweaked[std::clamp(start_sample - search_range + i, ofs, last_index)];
        auto [delay, correlation] = envelope_delay(ref_part, deg_part, search_range, ffts);
        if (correlation < 0.5) delay = 0;
        for (long i = start_sample; i < stop_sample; ++i)
          doubly[i] = tweaked[std::clamp(i + delay, 0L, max_nsamples - 1)];
      }
      std::vector<double> ppd(static_cast<size_t>(nb));
      for (const auto& [first, last] : intervals) {
        for (long fr = first; fr < last; ++fr)
          model.pitch_power_density(doubly, ofs + fr * nf / 2, &ppd_deg[fr * nb]);
        double old_scale = 1.0;
        for (long fr = first; fr < last; ++fr) {
          double sym = 0.0, asym = 0.0;
          compensate_and_score(fr, old_scale, sym, asym);
          disturbance[fr] = std::min(disturbance[fr], sym);
          disturbance_asym[fr] = std::min(disturbance_asym[fr], asym);
        }
      }
    }
  }

  // Long signals weigh later frames more (recency).
  std::vector<double> time_weight(static_cast<size_t>(nframes), 1.0);
  if (nframes > 1000) {
    const long n = (max_nsamples - 2 * ofs) / (nf / 2) - 1;
    const double factor = std::min(0.5, static_cast<double>(n - 1000) / 5500.0);
    for (long fr = 0; fr < nframes; ++fr)
      time_weight[fr] = (1.0 - factor) + factor * static_cast<double>(fr) / n;
  }
  for (long fr = 0; fr < nframes; ++fr) {
    const double h = std::pow((total_power_ref[fr] + 1e5) / 1e7, 0.04);
    disturbance[fr] = std::min(disturbance[fr] / h, 45.0);
    disturbance_asym[fr] = std::min(disturbance_asym[fr] / h, 45.0);
  }

  // L6 over 20-frame syllables (half-overlapping), then L2 over time.
  auto aggregate = [&](const std::vector<double>& d) {
    double result = 0.0, total_weight = 0.0;
    for (long s = start_frame; s <= stop_frame; s += kFramesPerSyllable / 2) {
      double syllable = 0.0;
      for (long fr = s; fr < s + kFramesPerSyllable; ++fr)
        if (fr <= stop_frame) syllable += std::pow(d[fr], 6.0);
      syllable = std::pow(syllable / kFramesPerSyllable, 1.0 / 6.0);
      const double w = time_weight[s - start_frame];
      result += std::pow(w * syllable, 2.0);
      total_weight += w * w;
    }
    return std::sqrt(result / total_weight);
  };
  PesqResult r;
  r.symmetric_disturbance = aggregate(disturbance);
  r.asymmetric_disturbance = aggregate(disturbance_asym);
  r.raw_mos = 4.5 - 0.1 * r.symmetric_disturbance - 0.0309 * r.asymmetric_disturbance;
  return r;
}

}  // namespace

const char* pesq_mode_name(PesqMode mode) { return mode == PesqMode::wide_band ? "wb" : "nb"; }

PesqResult pesq(const float* reference, size_t reference_samples, const float* degraded,
                size_t degraded_samples, int sample_rate_hz, PesqMode mode) {
  if (sample_rate_hz != 8000 && sample_rate_hz != 16000)
    throw Error("pesq: sample rate " + std::to_string(sample_rate_hz) +
                " Hz is not supported (8000 or 16000 Hz; resample first)");
  if (mode == PesqMode::wide_band && sample_rate_hz != 16000)
    throw Error("pesq: wide-band PESQ (P.862.2) needs 16000 Hz, got " +
                std::to_string(sample_rate_hz) + " Hz");
  const size_t min_samples = static_cast<size_t>(sample_rate_hz / 4);
  if (reference_samples < min_samples || degraded_samples < min_samples)
    throw Error("pesq: signals must be at least 1/4 s long (reference " +
                std::to_string(reference_samples) + ", degraded " +
                std::to_string(degraded_samples) + " samples at " + std::to_string(sample_rate_hz) +
                " Hz)");
  for (size_t i = 0; i < reference_samples; ++i)
    if (!std::isfinite(reference[i]))
      throw Error("pesq: non-finite reference sample at index " + std::to_string(i));
  for (size_t i = 0; i < degraded_samples; ++i)
    if (!std::isfinite(degraded[i]))
      throw Error("pesq: non-finite degraded sample at index " + std::to_string(i));

  const RateParams p = rate_params(sample_rate_hz);
  FftCache ffts;
  Signal ref = load_signal(reference, reference_samples, p);
  Signal deg = load_signal(degraded, degraded_samples, p);
  const long max_nsamples = std::max(ref.nsamples, deg.nsamples);

  fix_power_level(ref, max_nsamples, p, ffts, "reference");
  fix_power_level(deg, max_nsamples, p, ffts, "degraded");

  const long ofs = p.search_offset();
  if (mode == PesqMode::narrow_band) {
    filter_by_curve(ref.data, ref.nsamples, kIrsFilterDb, p, ffts);
    filter_by_curve(deg.data, deg.nsamples, kIrsFilterDb, p, ffts);
  } else {
    for (Signal* s : {&ref, &deg})
      for (long i = 0; i < 16; ++i) {
        s->data[ofs + i - 1] *= static_cast<float>(i) / 16.0f;
        s->data[s->nsamples - ofs - i] *= static_cast<float>(i) / 16.0f;
      }
    iir_filter(*p.wide_band_filter, ref.data.data() + ofs, ref.nsamples - 2 * ofs,
               deg.data.data() + ofs, deg.nsamples - 2 * ofs);
  }

  // Alignment works on copies through the alignment filter; the model sees the signals above.
  Signal ref_align = ref, deg_align = deg;
  dc_block(ref_align, p);
  dc_block(deg_align, p);
  iir_filter(*p.align_iir, ref_align.data.data(), ref_align.nsamples + p.padding(),
             deg_align.data.data(), deg_align.nsamples + p.padding());
  compute_vad(ref_align, p);
  compute_vad(deg_align, p);
  Alignment alignment;
  crude_align(ref_align, deg_align, alignment, kWholeSignal, p, ffts);
  utterance_locate(ref_align, deg_align, alignment, p, ffts);
  if (alignment.count < 1)
    throw Error("pesq: no utterance found in the reference (silent or too little speech)");

  ref.data.resize(static_cast<size_t>(max_nsamples + p.padding()), 0.0f);
  deg.data.resize(static_cast<size_t>(max_nsamples + p.padding()), 0.0f);
  ref.vad = ref_align.vad;

  PesqResult r = perceptual_score(ref, deg, alignment, max_nsamples, p, ffts);
  if (mode == PesqMode::narrow_band)
    r.mos_lqo = 0.999 + 4.0 / (1.0 + std::exp(-1.4945 * r.raw_mos + 4.6607));
  else
    r.mos_lqo = 0.999 + 4.0 / (1.0 + std::exp(-1.3669 * r.raw_mos + 3.8224));
  for (long u = 0; u < alignment.count; ++u)
    r.utterance_delays_samples.push_back(alignment.delay[u]);
  return r;
}

double pesq_mos_lqo(const float* reference, const float* degraded, size_t n, int sample_rate_hz,
                    PesqMode mode) {
  return pesq(reference, n, degraded, n, sample_rate_hz, mode).mos_lqo;
}

double pesq_mos_lqo(const std::vector<float>& reference, const std::vector<float>& degraded,
                    int sample_rate_hz, PesqMode mode) {
  if (reference.size() != degraded.size())
    throw Error("pesq: signals differ in length (reference " + std::to_string(reference.size()) +
                ", degraded " + std::to_string(degraded.size()) +
                " samples); call denoise::pesq for signals of different lengths");
  return pesq_mos_lqo(reference.data(), degraded.data(), reference.size(), sample_rate_hz, mode);
}

}  // namespace denoise
