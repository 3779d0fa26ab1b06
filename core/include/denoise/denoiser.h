// One interface for every denoising method. A Denoiser maps a noisy spectrogram (from its own
// FrontEnd configuration) to a real gain per time-frequency bin; the caller multiplies the noisy
// STFT by the gains and inverts it. infer, evaluate and live mode pick methods by name through
// make_denoiser() and never special-case one: adding a method is one class and one registry line.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "denoise/front_end.h"

namespace denoise {

class FrameGains;  // stream.h

// Options of the classical methods. Field names follow noisereduce's reduce_noise() where the
// method mirrors it; defaults are noisereduce 3.0.3's.
struct GateOptions {
  int n_fft = 1024;
  int hop_length = 256;
  double prop_decrease = 1.0;  // 1 removes the gated noise fully, 0 leaves the input
  double n_std_thresh_stationary = 1.5;
  double time_constant_s = 2.0;  // non-stationary noise-floor smoothing
  double thresh_n_mult_nonstationary = 2.0;
  double sigmoid_slope_nonstationary = 10.0;
  // Mask smoothing widths (noisereduce's; <= 0 is its None: the narrowest kernel on that axis,
  // and no smoothing at all when both axes are at their narrowest).
  double freq_mask_smooth_hz = 500;
  double time_mask_smooth_ms = 50;
  // Zero padding added on both sides of the signal before the STFT (noisereduce's `padding`).
  // It shapes the non-stationary noise floor near the ends; kept for parity.
  int padding_samples = 30000;
  // Samples of the noise source used for the stationary statistics (noisereduce's
  // clip_noise_stationary with chunk_size 600000); <= 0 uses all of it.
  int noise_clip_samples = 600000;
  // Forward-only smoothing (time mask smoothing over past frames, one-pass noise floor): the
  // mask of a frame depends on no later frame, so it can run live. Departs from noisereduce.
  bool causal = false;
};

struct SubtractOptions {
  int n_fft = 1024;
  int hop_length = 256;
  double over_subtraction = 2.0;  // alpha: subtract alpha x the noise power
  double floor = 0.05;            // beta: gain never below this (-26 dB), against musical noise
  double noise_seconds = 0.5;     // noise estimate from the first seconds when no clip is given
};

struct MethodOptions {
  GateOptions gate;
  SubtractOptions subtract;
  std::string model_path;  // trained model for model-based methods (unet); empty: the default
  int threads = 0;         // CPU threads of model-based methods; 0: all cores
};

class Denoiser {
 public:
  virtual ~Denoiser() = default;

  virtual std::string name() const = 0;
  // The front end this method analyses with: at the rate it is given for classical methods, at
  // the model's own rate for trained models (the pipeline resamples to it and back).
  virtual const FrontEndConfig& front_end() const = 0;

  // Frames either side of a frame that its gain depends on. Block processing recomputes this many
  // frames of context so that its output equals whole-signal processing (within 1e-6 for methods
  // with infinite-memory smoothing, whose context is chosen so the truncation error is below it).
  virtual int context_frames() const = 0;

  // Zeros added on both sides of the signal before analysis (noisereduce pads its chunks).
  virtual int padding_samples() const { return 0; }

  // Noise-only samples (mono, at front_end().sample_rate_hz) for methods with a noise profile.
  virtual bool uses_noise_profile() const { return false; }
  // Seconds taken from the start of the input when no noise clip is given; < 0: the whole input.
  virtual double default_noise_seconds() const { return -1; }
  // Most noise samples the method uses (the rest are ignored); <= 0: no limit.
  virtual int64_t max_noise_samples() const { return 0; }
  virtual void set_noise(const std::vector<float>& noise) {}

  // Statistics over the whole signal that a frame's gain may depend on (the stationary gate's
  // per-frequency maximum). A pass over a signal calls begin_signal(), then for each block gains()
  // and accumulate_signal_statistics() with the same frames, then end_signal(). end_signal()
  // returns true when the gains assumed statistics that the pass measured otherwise; the method
  // then adopts the measured ones and the caller runs the pass again (at most once more).
  virtual void begin_signal() {}
  virtual void accumulate_signal_statistics(const Spectrogram& noisy) {}
  virtual bool end_signal() { return false; }

  // Gains for every bin of `noisy` (same layout): denoised = gain * noisy.
  virtual void gains(const Spectrogram& noisy, std::vector<float>& gain) = 0;
  // A new frame-by-frame stream of this method's gains (live mode, stream.h), sharing this
  // method's settings or weights; nullptr when the method cannot stream (it needs later frames).
  virtual std::unique_ptr<FrameGains> make_frame_gains() const;
};

// The classical methods, always available, in the order `--help` lists them.
std::vector<std::string> classical_method_names();
// Every method make_denoiser knows: the classical ones, then the registered ones.
std::vector<std::string> method_names();

// Methods that live outside this library (the U-Net, which needs LibTorch) register a factory
// under their name; programs that link them call its registration function at start-up.
// Registering a name again replaces the factory. Register before any make_denoiser call (the
// registry is not locked).
using DenoiserFactory =
    std::function<std::unique_ptr<Denoiser>(const MethodOptions& options, int sample_rate_hz)>;
void register_method(const std::string& name, DenoiserFactory factory);

// Model-based methods (the U-Net) live in a plugin, libdenoise_model.so beside libdenoise_core.so
// (else in <bin>/../lib), which links LibTorch. Programs load it only when a model is wanted, so
// the classical methods never pay LibTorch's start-up (about 0.45 s and 160 MiB).
// True when the plugin exists beside the program.
bool model_methods_available();
// Loads the plugin once and registers its methods ("unet"). Throws denoise::Error when it is
// missing (a build without LibTorch) or cannot be loaded.
void load_model_methods();
// The default model: $DENOISE_MODEL, else the first of default_model_candidates() that exists;
// empty when none does.
std::string default_model_path();
// Where the default model is looked for, in order: <libdir>/../share/denoise/models/default.dnz
// beside this library (installed; the relative path is fixed at configure time),
// <bin>/../share/denoise/models/default.dnz, <bin>/../../models/pretrained/default.dnz (a build
// inside the checkout), and, when this library is the one in its build folder, the checkout's
// models/pretrained/ recorded at configure time (a build folder elsewhere).
std::vector<std::string> default_model_candidates();

// Before the unet method is used: loads the plugin, resolves options.model_path (as given, else
// default_model_path()) and loads and checks that model once, so that a bad or missing model is
// one error before any file rather than one per file. Throws denoise::Error.
void prepare_model_method(MethodOptions& options);

// Builds a method for audio at `sample_rate_hz`. Throws denoise::Error for an unknown name or
// options that do not fit the rate (e.g. mask smoothing narrower than one bin).
std::unique_ptr<Denoiser> make_denoiser(const std::string& name, const MethodOptions& options,
                                        int sample_rate_hz);

}  // namespace denoise
