// Figures as PNG files: spectrograms (time in s, frequency in Hz, a dB colour bar), line charts
// (training curves, per-frequency thresholds) and bar charts (metrics per method). Drawn with
// cairo, which renders the text and writes the PNG; the colour map is cubehelix (Green 2011),
// whose lightness rises monotonically, so it reads the same in greyscale and to colour-blind eyes.
//
// A Figure is a grid of panels, filled row by row. write_png() writes atomically (a temporary
// file beside the target, renamed into place) and throws denoise::Error naming the file.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace denoise::plot {

struct Rgb {
  double r = 0, g = 0, b = 0;  // each in [0, 1]
};
// The colour map: t in [0, 1] (clamped) from black through purple, red-brown and green to white.
Rgb colour_map(double t);

// A time-frequency map, e.g. a spectrogram in dB or a mask in [0, 1].
struct HeatmapPanel {
  std::string title;
  std::vector<float> values;  // frames x bins, frame-major: values[frame * bins + bin]
  long frames = 0;
  int bins = 0;
  double seconds_per_frame = 0.01;  // time axis: frame f is drawn at f * seconds_per_frame
  double hz_per_bin = 50;           // frequency axis: bin b is at b * hz_per_bin
  double value_min = -80, value_max = 0;  // colour scale limits; values are clamped to them
  std::string colour_bar_label = "dB";
};

struct Series {
  std::string label;  // shown in the legend when not empty
  std::vector<double> x, y;  // same length; non-finite points are skipped (a gap)
};
struct LinePanel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
};

// One bar per category, its value printed above it.
struct BarPanel {
  std::string title, y_label;
  std::vector<std::string> categories;
  std::vector<double> values;  // non-finite: no bar, "n/a" printed
};

using Panel = std::variant<HeatmapPanel, LinePanel, BarPanel>;

struct Figure {
  std::string title;   // above the grid; may be empty
  int width = 1000;    // pixels
  int panel_height = 240;  // pixels per grid row
  int columns = 1;
  std::vector<Panel> panels;
};

// Writes `figure` to `path` as PNG. Throws denoise::Error (path and reason) when the figure is
// empty or malformed (values.size() != frames * bins, x/y lengths differ, ...) or the file cannot
// be written.
void write_png(const Figure& figure, const std::string& path);

}  // namespace denoise::plot
