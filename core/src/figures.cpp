#include "denoise/figures.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "denoise/error.h"
#include "denoise/front_end.h"

namespace denoise::figures {

float DisplaySpectrogram::peak() const {
  float p = 0;
  for (float m : magnitude) p = std::max(p, m);
  return p;
}

DisplaySpectrogram display_spectrogram(const std::vector<float>& mono, int rate_hz,
                                       double max_seconds) {
  FrontEndConfig c;
  c.sample_rate_hz = rate_hz;
  c.n_fft = 16;
  while (c.n_fft < 0.032 * rate_hz) c.n_fft *= 2;
  c.hop_length = c.n_fft / 4;
  c.window = WindowType::kHann;
  c.center = true;
  const auto n = std::min<int64_t>(static_cast<int64_t>(mono.size()),
                                   static_cast<int64_t>(max_seconds * rate_hz));
  DisplaySpectrogram s;
  s.bins = c.n_bins();
  s.seconds_per_frame = static_cast<double>(c.hop_length) / rate_hz;
  s.hz_per_bin = static_cast<double>(rate_hz) / c.n_fft;
  if (n <= 0) return s;
  FrontEnd fe(c);
  Spectrogram spec;
  fe.analyze(mono.data(), n, spec);
  s.frames = static_cast<long>(spec.n_frames);
  s.magnitude.resize(spec.bins.size());
  for (size_t i = 0; i < spec.bins.size(); ++i) s.magnitude[i] = std::sqrt(power(spec.bins[i]));
  return s;
}

plot::HeatmapPanel db_panel(const DisplaySpectrogram& s, float reference, const std::string& title,
                            double range_db) {
  plot::HeatmapPanel p;
  p.title = title;
  p.frames = std::max<long>(1, s.frames);
  p.bins = s.bins;
  p.seconds_per_frame = s.seconds_per_frame;
  p.hz_per_bin = s.hz_per_bin;
  p.value_min = -range_db;
  p.value_max = 0;
  p.colour_bar_label = "dB";
  p.values.assign(static_cast<size_t>(p.frames) * p.bins, static_cast<float>(-range_db));
  const double ref = reference > 0 ? reference : 1.0;
  for (size_t i = 0; i < s.magnitude.size(); ++i)
    p.values[i] = static_cast<float>(20 * std::log10(std::max(1e-12, s.magnitude[i] / ref)));
  return p;
}

plot::HeatmapPanel gain_panel(const DisplaySpectrogram& input, const DisplaySpectrogram& output,
                              const std::string& title) {
  if (input.bins != output.bins)
    throw Error("gain_panel: spectrograms of different resolutions (" +
                std::to_string(input.bins) + " and " + std::to_string(output.bins) + " bins)");
  plot::HeatmapPanel p;
  p.title = title;
  p.frames = std::max<long>(1, std::min(input.frames, output.frames));
  p.bins = input.bins;
  p.seconds_per_frame = input.seconds_per_frame;
  p.hz_per_bin = input.hz_per_bin;
  p.value_min = 0;
  p.value_max = 1;
  p.colour_bar_label = "gain";
  p.values.assign(static_cast<size_t>(p.frames) * p.bins, 1.f);
  const float floor = input.peak() * 1e-4f;  // -80 dB
  const size_t n = std::min(input.magnitude.size(), output.magnitude.size());
  for (size_t i = 0; i < n && i < p.values.size(); ++i) {
    if (input.magnitude[i] > floor)
      p.values[i] = std::min(1.f, output.magnitude[i] / input.magnitude[i]);
  }
  return p;
}

plot::LinePanel threshold_panel(const std::vector<double>& threshold_db, double hz_per_bin,
                                const std::string& title) {
  plot::LinePanel p;
  p.title = title;
  p.x_label = "Frequency (Hz)";
  p.y_label = "Threshold (dB)";
  plot::Series s;
  s.label = "noise threshold";
  for (size_t i = 0; i < threshold_db.size(); ++i) {
    s.x.push_back(static_cast<double>(i) * hz_per_bin);
    s.y.push_back(threshold_db[i]);
  }
  p.series.push_back(std::move(s));
  return p;
}

plot::Figure training_curves(const std::vector<nlohmann::json>& log, const std::string& title) {
  auto number = [](const nlohmann::json& j, const char* key) {
    return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : NAN;
  };
  plot::Series train_loss{"training", {}, {}}, val_loss{"validation", {}, {}};
  plot::Series sdri{"validation", {}, {}};
  for (const auto& line : log) {
    const double step = number(line, "step");
    if (!std::isfinite(step)) continue;
    train_loss.x.push_back(step);
    train_loss.y.push_back(number(line, "train_loss"));
    val_loss.x.push_back(step);
    val_loss.y.push_back(number(line, "loss"));
    sdri.x.push_back(step);
    sdri.y.push_back(number(line, "si_sdri_db"));
  }
  plot::LinePanel loss{"Loss", "Step", "Loss", {train_loss, val_loss}};
  plot::LinePanel gain{"SI-SDR improvement on the validation set", "Step", "SI-SDR improvement (dB)",
                       {sdri}};
  plot::Figure f;
  f.title = title;
  f.width = 1000;
  f.panel_height = 300;
  f.columns = 2;
  f.panels = {loss, gain};
  return f;
}

void write_training_curves(const std::string& log_path, const std::string& png_path,
                           const std::string& title) {
  std::ifstream in(log_path);
  if (!in) throw Error(log_path + ": cannot read the training log");
  std::vector<nlohmann::json> lines;
  std::string text;
  while (std::getline(in, text)) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) lines.push_back(j);
  }
  plot::write_png(training_curves(lines, title), png_path);
}

}  // namespace denoise::figures
