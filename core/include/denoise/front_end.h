// The STFT front end shared by training, file inference and live streaming.
//
// One configuration (FrontEndConfig, stored in every model checkpoint) and one implementation of
// framing, windowing and overlap-add, seen three ways:
//   * whole signals and block ranges of a signal (FrontEnd::analyze / synthesize, *_range), used by
//     file inference and the classical methods;
//   * frame by frame (StreamingAnalyzer / StreamingSynthesizer), used by live mode;
//   * batched on tensors (front_end_torch.h), used by training on CPU or CUDA.
// Tests hold all three equal, and equal to torch::stft / torch::istft.
//
// Conventions (those of torch.stft(center=True, pad_mode="constant") and scipy.signal.stft):
//   frame k covers input samples [k*hop - n_fft/2, k*hop + n_fft/2), zeros outside the signal;
//   X_k[f] = sum_n w[n] x[n] e^{-2 pi i f n / n_fft}, no scaling;
//   synthesis is the least-squares overlap-add: y = sum_k w * irfft(X_k) / sum_k w^2.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace denoise {

enum class WindowType { kHann, kSqrtHann };
enum class Compression { kNone, kLog, kPower };

NLOHMANN_JSON_SERIALIZE_ENUM(WindowType,
                             {{WindowType::kHann, "hann"}, {WindowType::kSqrtHann, "sqrt_hann"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Compression, {{Compression::kNone, "none"},
                                           {Compression::kLog, "log"},
                                           {Compression::kPower, "power"}})

struct FrontEndConfig {
  int sample_rate_hz = 16000;
  int n_fft = 512;
  int hop_length = 128;
  WindowType window = WindowType::kHann;  // periodic, length n_fft
  bool center = true;                     // frame k centred on sample k*hop
  // Feature compression of the magnitude, for models: log(|X| + log_epsilon), or
  // (|X|^2 + power_epsilon)^(power_exponent/2), whose epsilon keeps gradients finite at silent
  // bins.
  Compression compression = Compression::kPower;
  double power_exponent = 0.3;
  double log_epsilon = 1e-6;
  double power_epsilon = 1e-10;

  int n_bins() const { return n_fft / 2 + 1; }
  // Throws denoise::Error when a field is out of range (n_fft even and in 16..65536, 0 < hop <=
  // n_fft, window overlap-add invertible, rate within 8-96 kHz).
  void validate() const;
  bool operator==(const FrontEndConfig& other) const;
  bool operator!=(const FrontEndConfig& other) const { return !(*this == other); }
};

// JSON: every key is written; reading is strict (a missing or unknown key is an error).
void to_json(nlohmann::json& j, const FrontEndConfig& c);
void from_json(const nlohmann::json& j, FrontEndConfig& c);

// |x|^2. (libstdc++'s std::norm and std::abs on complex<float> go through hypotf, which is
// several times slower and guards against an overflow that audio magnitudes never reach.)
inline float power(std::complex<float> x) { return x.real() * x.real() + x.imag() * x.imag(); }

// Frame-major complex spectrogram: frame t occupies bins [t*n_bins, (t+1)*n_bins).
struct Spectrogram {
  int n_bins = 0;
  int64_t n_frames = 0;
  // The signal's frame that frame 0 here is (FrontEnd::analyze_range's first_frame; 0 for a
  // whole signal): methods with memory across blocks (a recurrent model) follow the signal by it.
  int64_t first_frame = 0;
  std::vector<std::complex<float>> bins;

  // Contents are unspecified after a resize (callers overwrite every bin); memory is reused.
  void resize(int64_t frames, int bins_per_frame) {
    first_frame = 0;
    n_frames = frames;
    n_bins = bins_per_frame;
    bins.resize(static_cast<size_t>(frames) * static_cast<size_t>(bins_per_frame));
  }
  std::complex<float>* frame(int64_t t) { return bins.data() + t * n_bins; }
  const std::complex<float>* frame(int64_t t) const { return bins.data() + t * n_bins; }
};

// Frame primitives and whole-signal transforms. Owns FFT plans and scratch buffers: one instance
// per thread (construct more, they are cheap). Allocates only in the constructor and in the
// whole-signal helpers' outputs.
class FrontEnd {
 public:
  explicit FrontEnd(const FrontEndConfig& config);
  ~FrontEnd();
  FrontEnd(const FrontEnd&) = delete;
  FrontEnd& operator=(const FrontEnd&) = delete;

  const FrontEndConfig& config() const { return config_; }
  int n_fft() const { return config_.n_fft; }
  int hop() const { return config_.hop_length; }
  int n_bins() const { return config_.n_bins(); }
  const std::vector<float>& window() const { return window_; }

  // Windows n_fft samples and transforms them: out has n_bins values.
  void analyze_frame(const float* samples, std::complex<float>* out);
  // Inverse-transforms n_bins values and applies the synthesis window: out has n_fft samples
  // to be overlap-added (before normalisation by the window-square sum).
  void synthesize_frame(const std::complex<float>* in, float* out);

  // Frames of a signal of n samples: 1 + n / hop (torch.stft's count with center=true).
  int64_t num_frames(int64_t n_samples) const;
  // Sum over frames k in [0, total_frames) of w^2 at padded position p (frame k spans
  // [k*hop, k*hop + n_fft) in padded coordinates, padded = original + n_fft/2 when centred).
  double window_square_sum(int64_t p, int64_t total_frames) const;

  // Whole signal -> frames [0, num_frames(n)).
  void analyze(const float* signal, int64_t n, Spectrogram& out);
  // Frames -> signal of `n_samples` samples (the inverse of analyze for that length).
  std::vector<float> synthesize(const Spectrogram& spec, int64_t n_samples);

  // Block forms, for signals too long to hold whole. `padded` holds padded-coordinate samples
  // starting at first_frame*hop; frames [first_frame, first_frame + count) are written to out.
  void analyze_range(const float* padded, int64_t first_frame, int64_t count, Spectrogram& out);
  // Overlap-adds `spec` (frames [first_frame, first_frame + spec.n_frames) of a signal with
  // total_frames frames) and writes the normalised padded-coordinate samples [begin, end) to out.
  // Exact when spec holds every frame that overlaps [begin, end).
  void synthesize_range(const Spectrogram& spec, int64_t first_frame, int64_t total_frames,
                        int64_t begin, int64_t end, float* out);

 private:
  FrontEndConfig config_;
  std::vector<float> window_;
  std::vector<double> window_sq_;
  std::vector<double> acc_;   // synthesis scratch
  std::vector<float> frame_;  // synthesis scratch
  struct Fft;
  std::unique_ptr<Fft> fft_;
};

// Frame-by-frame analysis: push `hop` new samples, get the next frame once its window is full.
// Frame k is returned by the push that completes input sample k*hop + n_fft/2 - 1, so the frames
// equal FrontEnd::analyze's. No allocation after construction; reset() starts a new stream.
class StreamingAnalyzer {
 public:
  explicit StreamingAnalyzer(FrontEnd& front_end);
  // Returns true and fills `frame` (n_bins values) when a frame is complete.
  bool push(const float* hop_samples, std::complex<float>* frame);
  void reset();

 private:
  FrontEnd& fe_;
  std::vector<float> buffer_;  // last n_fft padded-coordinate samples
  int64_t samples_seen_ = 0;   // padded-coordinate samples in so far (starts at n_fft/2 if centred)
};

// Frame-by-frame synthesis: push frame k, get the hop samples at padded positions
// [k*hop, (k+1)*hop), which no later frame touches. With centring the first n_fft/2 samples of
// the stream precede the signal; output_delay() says how many samples the stream is late.
class StreamingSynthesizer {
 public:
  explicit StreamingSynthesizer(FrontEnd& front_end);
  void push(const std::complex<float>* frame, float* hop_out);
  void reset();
  // Algorithmic latency: samples between an input sample entering StreamingAnalyzer (in pushes of
  // hop) and the same sample leaving here. Equals n_fft.
  int latency_samples() const;
  // Output stream index minus input stream index of the same sample (n_fft/2 when centred: the
  // stream starts with the centring pad).
  int stream_offset() const;

 private:
  FrontEnd& fe_;
  std::vector<float> accum_;  // n_fft samples of overlap-add in progress
  std::vector<float> frame_;  // scratch
  int64_t frames_seen_ = 0;
};

}  // namespace denoise
