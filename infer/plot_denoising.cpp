#include "plot_denoising.h"

#include <algorithm>
#include <filesystem>

#include "denoise/audio_io.h"
#include "denoise/denoiser.h"
#include "denoise/error.h"
#include "denoise/figures.h"
#include "denoise/file_pipeline.h"
#include "denoise/resample.h"
#include "denoise/spectral_gate.h"

namespace denoise {
namespace {

constexpr double kMaxSeconds = 120;  // longer files: the first two minutes are drawn

// The stationary gate's threshold for this input, from the noise profile infer used (the clip,
// or the first seconds of the input).
std::vector<double> gate_threshold(const std::vector<float>& input_mono, int rate,
                                   const PipelineOptions& options, const std::string& label) {
  auto gate = make_denoiser("gate", options.method_options, rate);
  auto* stationary = dynamic_cast<StationaryGate*>(gate.get());
  if (!stationary) return {};
  stationary->set_noise(noise_profile(*gate, options, {input_mono}, rate, label)[0]);
  return stationary->threshold_db();
}

}  // namespace

void plot_denoising(const std::string& input, const std::string& output,
                    const PipelineOptions& options, const std::string& png_path) {
  const Audio in = read_audio(input);
  const Audio out = read_audio(output);
  const int rate = in.sample_rate_hz;
  const std::vector<float> in_mono = mix_to_mono(in.channels);
  std::vector<float> out_mono = mix_to_mono(out.channels);
  // The gain panel compares bins at one rate: an output at another rate (--rate) is converted.
  if (out.sample_rate_hz != rate) out_mono = resample(out_mono, out.sample_rate_hz, rate);

  const auto noisy = figures::display_spectrogram(in_mono, rate, kMaxSeconds);
  const auto denoised = figures::display_spectrogram(out_mono, rate, kMaxSeconds);
  const float ref = noisy.peak();
  const std::string name = std::filesystem::path(input).filename().string();
  plot::Figure figure;
  figure.title = name + ": " + options.method +
                 (static_cast<double>(in_mono.size()) > kMaxSeconds * rate
                      ? " (first 120 s)"
                      : "");
  figure.panels.push_back(figures::db_panel(noisy, ref, "Noisy input (dB re its peak)"));
  figure.panels.push_back(
      figures::gain_panel(noisy, denoised, "Gain applied by " + options.method + " (output / input)"));
  figure.panels.push_back(figures::db_panel(denoised, ref, "Denoised (dB re the input's peak)"));
  if (options.method == "gate") {
    const auto threshold = gate_threshold(in_mono, rate, options, input);
    const auto& fe = options.method_options.gate;
    if (!threshold.empty())
      figure.panels.push_back(figures::threshold_panel(
          threshold, static_cast<double>(rate) / fe.n_fft,
          "Stationary gate: per-frequency noise threshold (mean + " +
              std::to_string(fe.n_std_thresh_stationary).substr(0, 4) + " std of the noise, dB)"));
  }
  plot::write_png(figure, png_path);
}

}  // namespace denoise
