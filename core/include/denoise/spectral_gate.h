// Spectral gating after noisereduce 3.0.3 (Sainburg, https://github.com/timsainb/noisereduce):
// stationary gating against a per-frequency threshold of the noise spectrum in dB, and
// non-stationary gating against a time-smoothed noise floor. Parity with its outputs is tested
// against ../shared/reference/noisereduce.
#pragma once

#include "denoise/denoiser.h"

namespace denoise {

// Stationary: threshold_f = mean_f + n_std * std_f of the noise's dB spectrum (each frequency's dB
// floored 80 dB below that frequency's maximum), binary mask where the signal's dB exceeds it,
// mixed with prop_decrease, smoothed with a triangular kernel over frequency and time.
class StationaryGate : public Denoiser {
 public:
  StationaryGate(const GateOptions& options, int sample_rate_hz);
  std::string name() const override { return "gate"; }
  const FrontEndConfig& front_end() const override { return config_; }
  int context_frames() const override;
  int padding_samples() const override { return options_.padding_samples; }
  bool uses_noise_profile() const override { return true; }
  int64_t max_noise_samples() const override { return options_.noise_clip_samples; }
  void set_noise(const std::vector<float>& noise) override;
  void begin_signal() override;
  void accumulate_signal_statistics(const Spectrogram& noisy) override;
  bool end_signal() override;
  void gains(const Spectrogram& noisy, std::vector<float>& gain) override;

  // Per-frequency threshold in dB (for plots); empty before set_noise().
  const std::vector<double>& threshold_db() const { return threshold_db_; }
  // Live: the noise profile is learned from the stream's first second (the speaker should let
  // the room be heard first); until then the input passes unchanged. Needs options.causal.
  std::unique_ptr<FrameGains> make_frame_gains() const override;
  // The threshold from `frames` frames of the noise's floored dB spectrum (frame-major).
  void set_threshold_from_db(const std::vector<float>& db, int64_t frames);

 private:
  friend class StationaryFrameGains;
  GateOptions options_;
  FrontEndConfig config_;
  int smooth_bins_ = 0, smooth_frames_ = 0;
  std::vector<double> threshold_db_;
  std::vector<float> threshold_power_;  // (10^(thr/20) - eps)^2, or -1 where always above
  std::vector<float> pass_power_;       // threshold_power_, or -1 where the 80 dB floor passes all
  std::vector<float> row_max_power_;    // per-frequency maximum |X|^2 measured in this pass
  std::vector<float> scratch_;
};

// Non-stationary: noise floor S = time-smoothed |X| (zero-phase first-order IIR, filtfilt, with
// time_constant_s), mask = sigmoid(slope * ((|X| - S)/S - n_mult)), smoothed, mixed with
// prop_decrease. With options.causal the IIR runs forward only and time smoothing looks back only.
class NonStationaryGate : public Denoiser {
 public:
  NonStationaryGate(const GateOptions& options, int sample_rate_hz);
  std::string name() const override { return "gate-nonstationary"; }
  const FrontEndConfig& front_end() const override { return config_; }
  int context_frames() const override { return context_frames_; }
  int padding_samples() const override { return options_.padding_samples; }
  void gains(const Spectrogram& noisy, std::vector<float>& gain) override;
  // Live: the causal variant frame by frame (needs options.causal and no padding to equal the
  // offline path).
  std::unique_ptr<FrameGains> make_frame_gains() const override;

 private:
  friend class NonStationaryFrameGains;
  GateOptions options_;
  FrontEndConfig config_;
  int smooth_bins_ = 0, smooth_frames_ = 0;
  double iir_b_ = 0;  // y[n] = b x[n] + (1 - b) y[n-1]
  int context_frames_ = 0;
  std::vector<float> magnitude_, floor_, scratch_;  // reused between calls
};

// Smooths a frame-major [frames x bins] mask in place with noisereduce's triangular kernel
// (half-widths in bins and frames; scipy.signal.fftconvolve(mode="same") with zeros outside).
// With causal=true the time kernel is the past half only, renormalised.
// `scratch` is reused working memory.
void smooth_mask_triangular(std::vector<float>& mask, int64_t frames, int bins, int half_bins,
                            int half_frames, bool causal, std::vector<float>& scratch);

}  // namespace denoise
