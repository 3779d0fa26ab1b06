#include "denoise/plot.h"

#include <cairo.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "denoise/atomic_file.h"
#include "denoise/error.h"

namespace denoise::plot {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- Layout (pixels) ----

constexpr double kTitleBand = 30;  // above the grid, only when the figure has a title
constexpr double kMarginLeft = 70, kMarginRight = 15, kMarginTop = 25, kMarginBottom = 40;
constexpr double kColourBarBand = 70;  // extra right margin of heatmaps
constexpr int kMinWidth = 200, kMinPanelHeight = 100;
// Narrower cells leave a heatmap no room between its margins and colour bar.
constexpr int kMinCellWidth = 200;
// cairo refuses image surfaces larger than 32767 pixels on a side.
constexpr int kMaxSurfaceSide = 32767;
// Heatmaps with more frames (or bins) than this are averaged down before drawing.
constexpr long kMaxHeatmapSide = 8192;

constexpr const char* kFontFamily = "DejaVu Sans";  // fontconfig falls back to the default sans
constexpr double kFigureTitleSize = 13, kPanelTitleSize = 12, kLabelSize = 12, kTickSize = 11;
constexpr double kMinCategorySize = 8;

// Series and bar colours: eight hues distinct in hue and lightness, readable on white.
constexpr Rgb kPalette[] = {
    {0.13, 0.36, 0.69},  // blue
    {0.91, 0.47, 0.07},  // orange
    {0.18, 0.58, 0.26},  // green
    {0.80, 0.16, 0.20},  // red
    {0.52, 0.33, 0.71},  // violet
    {0.55, 0.36, 0.22},  // brown
    {0.86, 0.38, 0.67},  // pink
    {0.09, 0.60, 0.66},  // teal
};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

const Rgb kAxisColour{0, 0, 0};
const Rgb kGridColour{0.88, 0.88, 0.88};
const Rgb kTextColour{0.1, 0.1, 0.1};

struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
  double right() const { return x + w; }
  double bottom() const { return y + h; }
};

// The area inside a grid cell where the data goes.
Rect plot_area(const Rect& cell, double extra_right) {
  return {cell.x + kMarginLeft, cell.y + kMarginTop,
          cell.w - kMarginLeft - kMarginRight - extra_right, cell.h - kMarginTop - kMarginBottom};
}

// ---- cairo resources ----

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
struct PatternDeleter {
  void operator()(cairo_pattern_t* p) const { cairo_pattern_destroy(p); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;
using PatternPtr = std::unique_ptr<cairo_pattern_t, PatternDeleter>;

void set_colour(cairo_t* cr, const Rgb& c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

// Lines of odd width are sharp only when centred on a pixel.
double snap(double v) { return std::floor(v) + 0.5; }

// ---- Text ----

// cairo puts the whole context into an error state when handed invalid UTF-8, which would lose
// the figure; labels come from file names and user options, so replace bad bytes with '?'.
// Mirrors cairo's own check: no overlong forms, surrogates or non-characters.
std::string sanitise_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (lead < 0x80)
      len = 1, cp = lead;
    else if ((lead & 0xE0) == 0xC0)
      len = 2, cp = lead & 0x1F;
    else if ((lead & 0xF0) == 0xE0)
      len = 3, cp = lead & 0x0F;
    else if ((lead & 0xF8) == 0xF0)
      len = 4, cp = lead & 0x07;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (ok) {
      const size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      ok = shortest == len && cp < 0x110000 && (cp & 0xFFFFF800) != 0xD800 &&
           (cp < 0xFDD0 || cp > 0xFDEF) && (cp & 0xFFFE) != 0xFFFE && cp != 0;
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, s.c_str(), &te);
  return te.x_advance;
}

// Shortens `s` (whole UTF-8 characters) and appends an ellipsis until it fits `max_width` in the
// current font. `s` must be valid UTF-8.
std::string fit_text(cairo_t* cr, std::string s, double max_width) {
  if (text_width(cr, s) <= max_width) return s;
  const std::string ellipsis = "\u2026";
  while (!s.empty()) {
    // Drop the last character: its continuation bytes, then its first byte.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty()) s.pop_back();
    if (text_width(cr, s + ellipsis) <= max_width) return s + ellipsis;
  }
  return text_width(cr, ellipsis) <= max_width ? ellipsis : std::string();
}

enum class HAlign { kLeft, kCentre, kRight };
enum class VAlign { kTop, kMiddle, kBaseline };

// Draws `s` (valid UTF-8) anchored at (x, y); `angle` rotates about the anchor, so -pi/2 gives
// text that reads upwards with the alignments applying along and across it. Vertical alignment
// uses the font's ascent and descent rather than the glyphs', so labels in a row line up.
void draw_text(cairo_t* cr, const std::string& s, double x, double y, HAlign h, VAlign v,
               double angle = 0) {
  if (s.empty()) return;
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double w = text_width(cr, s);
  const double dx = h == HAlign::kLeft ? 0 : h == HAlign::kCentre ? -w / 2 : -w;
  const double dy = v == VAlign::kTop      ? fe.ascent
                    : v == VAlign::kMiddle ? (fe.ascent - fe.descent) / 2
                                           : 0;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, dx, dy);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

// ---- Axes ----

// The step among 1, 2, 5 x 10^k nearest to span / target (on a log scale, roughly), so the
// axis gets between about 0.7 and 1.5 times the target number of ticks.
double nice_step(double span, int target) {
  const double raw = span / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

struct Ticks {
  std::vector<double> values;
  double step = 0;
};

// Multiples of a nice step inside [lo, hi], about `target` of them.
Ticks make_ticks(double lo, double hi, int target) {
  Ticks t;
  if (!(hi > lo) || !std::isfinite(hi - lo)) return t;
  t.step = nice_step(hi - lo, target);
  if (!(t.step > 0) || !std::isfinite(t.step)) return t;
  // The slack keeps ticks that rounding put a hair outside the range.
  const double first = std::ceil(lo / t.step - 1e-9), last = std::floor(hi / t.step + 1e-9);
  if (!(last - first < 1000)) return t;
  for (double k = first; k <= last; ++k) t.values.push_back(k == 0 ? 0.0 : k * t.step);
  return t;
}

// As many decimals as the step needs, so that neighbouring labels differ.
std::string tick_label(double v, double step) {
  char buf[64];
  if (std::abs(v) < step * 1e-6) return "0";  // not "-0" or "1e-17"
  if (std::abs(v) >= 1e9 || step < 1e-6) {
    std::snprintf(buf, sizeof buf, "%g", v);
  } else {
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

// Bar values: 3 significant digits, without exponents for the magnitudes metrics have.
std::string value_label(double v) {
  char buf[64];
  if (std::abs(v) >= 1e3 && std::abs(v) < 1e9) {
    const double unit = std::pow(10.0, std::floor(std::log10(std::abs(v))) - 2);
    std::snprintf(buf, sizeof buf, "%.0f", std::round(v / unit) * unit);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

// Maps data values in [lo, hi] linearly onto pixels [p0, p1]. Halves are taken first so that
// ranges near the limits of double (hi - lo overflowing) still map.
struct Scale {
  double lo, hi, p0, p1;
  double operator()(double v) const {
    const double p = p0 + (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5) * (p1 - p0);
    // cairo works in 24.8 fixed point; keep far-off points representable.
    return std::clamp(p, -1e6, 1e6);
  }
};

// Widens [lo, hi] by the given fractions of its span below and above, saturating at the
// largest finite doubles.
void pad_range(double& lo, double& hi, double below, double above) {
  constexpr double kMax = std::numeric_limits<double>::max();
  const double half_span = hi * 0.5 - lo * 0.5;
  lo = std::max(-kMax, lo - 2 * below * half_span);
  hi = std::min(kMax, hi + 2 * above * half_span);
}

// Autoscaled data range: the finite extremes with `pad` of the span added each side; a
// degenerate range is widened by 1 each way so that the data sits mid-axis.
void autoscale(double& lo, double& hi, double pad) {
  if (!(lo <= hi)) lo = 0, hi = 1;  // no finite data
  if (lo == hi) {
    // Beyond 2^53 adding 1 changes nothing; widen relatively there.
    const double d = std::max(1.0, std::abs(lo) * 1e-6);
    lo -= d, hi += d;
    return;
  }
  pad_range(lo, hi, pad, pad);
}

// Target tick counts for an axis of this many pixels: labels need room.
int x_tick_target(double pixels) { return std::max(2, static_cast<int>(pixels / 90)); }
int y_tick_target(double pixels) { return std::max(2, static_cast<int>(pixels / 45)); }

void draw_grid(cairo_t* cr, const Rect& plot, const Ticks* xt, const Scale* xs, const Ticks& yt,
               const Scale& ys) {
  cairo_save(cr);
  set_colour(cr, kGridColour);
  cairo_set_line_width(cr, 1);
  if (xt)
    for (double v : xt->values) {
      const double x = snap((*xs)(v));
      cairo_move_to(cr, x, plot.y);
      cairo_line_to(cr, x, plot.bottom());
    }
  for (double v : yt.values) {
    const double y = snap(ys(v));
    cairo_move_to(cr, plot.x, y);
    cairo_line_to(cr, plot.right(), y);
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

void draw_frame(cairo_t* cr, const Rect& plot) {
  set_colour(cr, kAxisColour);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, snap(plot.x), snap(plot.y), std::round(plot.w), std::round(plot.h));
  cairo_stroke(cr);
}

constexpr double kTickLength = 4;

void draw_x_ticks(cairo_t* cr, const Rect& plot, const Ticks& t, const Scale& s) {
  set_colour(cr, kAxisColour);
  cairo_set_line_width(cr, 1);
  for (double v : t.values) {
    const double x = snap(s(v));
    cairo_move_to(cr, x, snap(plot.bottom()));
    cairo_line_to(cr, x, snap(plot.bottom()) + kTickLength);
  }
  cairo_stroke(cr);
  set_font(cr, kTickSize);
  set_colour(cr, kTextColour);
  for (double v : t.values)
    draw_text(cr, tick_label(v, t.step), s(v), plot.bottom() + kTickLength + 2, HAlign::kCentre,
              VAlign::kTop);
}

void draw_y_ticks(cairo_t* cr, const Rect& plot, const Ticks& t, const Scale& s) {
  set_colour(cr, kAxisColour);
  cairo_set_line_width(cr, 1);
  for (double v : t.values) {
    const double y = snap(s(v));
    cairo_move_to(cr, snap(plot.x), y);
    cairo_line_to(cr, snap(plot.x) - kTickLength, y);
  }
  cairo_stroke(cr);
  set_font(cr, kTickSize);
  set_colour(cr, kTextColour);
  for (double v : t.values)
    draw_text(cr, tick_label(v, t.step), plot.x - kTickLength - 3, s(v), HAlign::kRight,
              VAlign::kMiddle);
}

void draw_x_label(cairo_t* cr, const Rect& plot, const std::string& label) {
  set_font(cr, kLabelSize);
  set_colour(cr, kTextColour);
  const std::string s = fit_text(cr, sanitise_utf8(label), plot.w);
  draw_text(cr, s, plot.x + plot.w / 2, plot.bottom() + kMarginBottom - 5, HAlign::kCentre,
            VAlign::kBaseline);
}

void draw_y_label(cairo_t* cr, const Rect& cell, const Rect& plot, const std::string& label) {
  set_font(cr, kLabelSize);
  set_colour(cr, kTextColour);
  const std::string s = fit_text(cr, sanitise_utf8(label), cell.h - 10);
  draw_text(cr, s, cell.x + 14, plot.y + plot.h / 2, HAlign::kCentre, VAlign::kMiddle, -kPi / 2);
}

void draw_panel_title(cairo_t* cr, const Rect& plot, const std::string& title) {
  set_font(cr, kPanelTitleSize, true);
  set_colour(cr, kTextColour);
  const std::string s = fit_text(cr, sanitise_utf8(title), plot.w);
  draw_text(cr, s, plot.x + plot.w / 2, plot.y - 8, HAlign::kCentre, VAlign::kBaseline);
}

// ---- Heatmap ----

// Packs a colour into cairo's RGB24 pixel (native-endian 0x00RRGGBB).
uint32_t pack_rgb24(const Rgb& c) {
  const auto channel = [](double v) {
    return static_cast<uint32_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
  };
  return channel(c.r) << 16 | channel(c.g) << 8 | channel(c.b);
}

// The heatmap as an image: one pixel per group of `frame_group` frames (columns) and
// `bin_group` bins (rows, bin 0 in row 0), the mean of the clamped values mapped through the
// colour map. The last group of either may hold fewer frames or bins than the others.
SurfacePtr heatmap_image(const HeatmapPanel& p, long frame_group, long bin_group) {
  const long columns = (p.frames + frame_group - 1) / frame_group;
  const long rows = (p.bins + bin_group - 1) / bin_group;
  SurfacePtr image(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(columns),
                                              static_cast<int>(rows)));
  if (cairo_surface_status(image.get()) != CAIRO_STATUS_SUCCESS) return image;
  cairo_surface_flush(image.get());
  unsigned char* data = cairo_image_surface_get_data(image.get());
  const int stride = cairo_image_surface_get_stride(image.get());
  const double range = p.value_max - p.value_min;
  std::vector<double> sums(rows);
  for (long c = 0; c < columns; ++c) {
    std::fill(sums.begin(), sums.end(), 0.0);
    const long f_end = std::min(p.frames, (c + 1) * frame_group);
    for (long f = c * frame_group; f < f_end; ++f) {
      const float* frame = p.values.data() + static_cast<size_t>(f) * p.bins;
      for (long b = 0; b < p.bins; ++b) {
        const double v = frame[b];
        sums[b / bin_group] +=
            std::isfinite(v) ? std::clamp(v, p.value_min, p.value_max) : p.value_min;
      }
    }
    for (long r = 0; r < rows; ++r) {
      const long bins_here = std::min<long>(p.bins, (r + 1) * bin_group) - r * bin_group;
      const double mean = sums[r] / (static_cast<double>(f_end - c * frame_group) * bins_here);
      auto* row = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(r) * stride);
      row[c] = pack_rgb24(colour_map((mean - p.value_min) / range));
    }
  }
  cairo_surface_mark_dirty(image.get());
  return image;
}

void draw_colour_bar(cairo_t* cr, const Rect& plot, const HeatmapPanel& p) {
  const Rect bar{std::round(plot.right()) + 10, plot.y, 14, plot.h};
  // Stops close enough that linear interpolation between them follows the map.
  constexpr int kStops = 64;
  PatternPtr gradient(cairo_pattern_create_linear(0, bar.bottom(), 0, bar.y));
  for (int i = 0; i < kStops; ++i) {
    const double t = static_cast<double>(i) / (kStops - 1);
    const Rgb c = colour_map(t);
    cairo_pattern_add_color_stop_rgb(gradient.get(), t, c.r, c.g, c.b);
  }
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_set_source(cr, gradient.get());
  cairo_fill(cr);
  draw_frame(cr, bar);

  const Ticks t = make_ticks(p.value_min, p.value_max, y_tick_target(bar.h));
  const Scale s{p.value_min, p.value_max, bar.bottom(), bar.y};
  set_colour(cr, kAxisColour);
  for (double v : t.values) {
    const double y = snap(s(v));
    cairo_move_to(cr, snap(bar.right()), y);
    cairo_line_to(cr, snap(bar.right()) + kTickLength, y);
  }
  cairo_stroke(cr);
  set_font(cr, kTickSize);
  set_colour(cr, kTextColour);
  for (double v : t.values)
    draw_text(cr, tick_label(v, t.step), bar.right() + kTickLength + 3, s(v), HAlign::kLeft,
              VAlign::kMiddle);
  const std::string label = fit_text(cr, sanitise_utf8(p.colour_bar_label), kColourBarBand);
  draw_text(cr, label, bar.x + bar.w / 2, bar.y - 8, HAlign::kCentre, VAlign::kBaseline);
}

void draw_heatmap(cairo_t* cr, const Rect& cell, const HeatmapPanel& p) {
  const Rect plot = plot_area(cell, kColourBarBand);
  const long frame_group = (p.frames + kMaxHeatmapSide - 1) / kMaxHeatmapSide;
  const long bin_group = (p.bins + kMaxHeatmapSide - 1) / kMaxHeatmapSide;
  const SurfacePtr image = heatmap_image(p, frame_group, bin_group);
  if (cairo_surface_status(image.get()) != CAIRO_STATUS_SUCCESS) {
    cairo_set_source_surface(cr, image.get(), 0, 0);  // passes the error on to the context
    return;
  }

  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  // Image pixels are a whole group wide even where the last group is partial; anchoring at the
  // bottom-left and clipping keeps every frame and bin at its true position. The negative y
  // scale puts bin 0 (image row 0) at the bottom.
  cairo_translate(cr, plot.x, plot.bottom());
  cairo_scale(cr, plot.w / static_cast<double>(p.frames) * static_cast<double>(frame_group),
              -plot.h / static_cast<double>(p.bins) * static_cast<double>(bin_group));
  cairo_set_source_surface(cr, image.get(), 0, 0);
  cairo_pattern_t* source = cairo_get_source(cr);
  cairo_pattern_set_filter(source, CAIRO_FILTER_GOOD);
  // Without padding the bilinear filter would fade the edges into the background.
  cairo_pattern_set_extend(source, CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_restore(cr);

  // Frame f and bin b are drawn centred on f * seconds_per_frame and b * hz_per_bin.
  const Scale xs{-0.5 * p.seconds_per_frame,
                 (static_cast<double>(p.frames) - 0.5) * p.seconds_per_frame, plot.x, plot.right()};
  const Scale ys{-0.5 * p.hz_per_bin, (p.bins - 0.5) * p.hz_per_bin, plot.bottom(), plot.y};
  draw_frame(cr, plot);
  draw_x_ticks(cr, plot, make_ticks(xs.lo, xs.hi, x_tick_target(plot.w)), xs);
  draw_y_ticks(cr, plot, make_ticks(ys.lo, ys.hi, y_tick_target(plot.h)), ys);
  draw_x_label(cr, plot, "Time (s)");
  draw_y_label(cr, cell, plot, "Frequency (Hz)");
  draw_panel_title(cr, plot, p.title);
  draw_colour_bar(cr, plot, p);
}

// ---- Line chart ----

// The legend goes in the corner of the plot where it hides the fewest of `points` (the series'
// pixels), trying upper right, upper left, lower right, lower left in that order: a curve that
// rises or falls to the right keeps its latest values in view.
void draw_legend(cairo_t* cr, const Rect& plot, const std::vector<Series>& series,
                 const std::vector<std::pair<double, double>>& points) {
  struct Entry {
    std::string label;
    Rgb colour;
  };
  set_font(cr, kTickSize);
  constexpr double kRow = 16, kPad = 6, kSwatch = 18;
  const size_t max_rows = static_cast<size_t>(std::max(0.0, (plot.h - 2 * kPad - 8) / kRow));
  const double max_text = std::max(10.0, plot.w * 0.6 - kSwatch - 3 * kPad);
  std::vector<Entry> entries;
  double text_w = 0;
  for (size_t i = 0; i < series.size() && entries.size() < max_rows; ++i) {
    if (series[i].label.empty()) continue;
    Entry e{fit_text(cr, sanitise_utf8(series[i].label), max_text), kPalette[i % kPaletteSize]};
    text_w = std::max(text_w, text_width(cr, e.label));
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return;

  const double box_w = kPad + kSwatch + kPad + text_w + kPad;
  const double box_h = 2 * kPad + kRow * static_cast<double>(entries.size());
  const double left = plot.x + 8, right = plot.right() - 8 - box_w;
  const double top = plot.y + 8, bottom = plot.bottom() - 8 - box_h;
  const std::pair<double, double> corners[] = {{right, top}, {left, top}, {right, bottom},
                                               {left, bottom}};
  Rect box{right, top, box_w, box_h};
  size_t fewest = std::numeric_limits<size_t>::max();
  for (const auto& [x, y] : corners) {
    size_t hidden = 0;
    for (const auto& [px, py] : points)
      hidden += px >= x - 3 && px <= x + box_w + 3 && py >= y - 3 && py <= y + box_h + 3;
    if (hidden < fewest) fewest = hidden, box = {x, y, box_w, box_h};
  }
  cairo_rectangle(cr, box.x, box.y, box.w, box.h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  set_colour(cr, {0.6, 0.6, 0.6});
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (size_t i = 0; i < entries.size(); ++i) {
    const double y = box.y + kPad + kRow * (static_cast<double>(i) + 0.5);
    set_colour(cr, entries[i].colour);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, box.x + kPad, y);
    cairo_line_to(cr, box.x + kPad + kSwatch, y);
    cairo_stroke(cr);
    set_colour(cr, kTextColour);
    draw_text(cr, entries[i].label, box.x + 2 * kPad + kSwatch, y, HAlign::kLeft, VAlign::kMiddle);
  }
}

void draw_line_panel(cairo_t* cr, const Rect& cell, const LinePanel& p) {
  const Rect plot = plot_area(cell, 0);
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const Series& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      }
  autoscale(x_lo, x_hi, 0.02);
  autoscale(y_lo, y_hi, 0.05);
  const Scale xs{x_lo, x_hi, plot.x, plot.right()};
  const Scale ys{y_lo, y_hi, plot.bottom(), plot.y};
  const Ticks xt = make_ticks(x_lo, x_hi, x_tick_target(plot.w));
  const Ticks yt = make_ticks(y_lo, y_hi, y_tick_target(plot.h));
  draw_grid(cr, plot, &xt, &xs, yt, ys);

  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  cairo_set_line_width(cr, 1.8);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  std::vector<std::pair<double, double>> drawn;  // pixels the lines pass, for the legend
  for (size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    set_colour(cr, kPalette[k % kPaletteSize]);
    // Runs of finite points become polylines; a run of one point would be invisible as a line,
    // so it gets a dot.
    size_t run = 0;
    double last_x = 0, last_y = 0;
    const auto end_run = [&] {
      if (run == 1) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, last_x, last_y, 2.5, 0, 2 * kPi);
        cairo_fill(cr);
      } else if (run > 1) {
        cairo_stroke(cr);
      }
      run = 0;
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        end_run();
        continue;
      }
      const double x = xs(s.x[i]), y = ys(s.y[i]);
      if (run == 0) {
        cairo_move_to(cr, x, y);
        drawn.emplace_back(x, y);
      } else {
        cairo_line_to(cr, x, y);
        // Points every few pixels along the segment, so that a long one counts where it runs.
        const int pieces = std::min(10000, 1 + static_cast<int>(std::hypot(x - last_x, y - last_y) / 4));
        for (int j = 1; j <= pieces; ++j) {
          const double f = static_cast<double>(j) / pieces;
          drawn.emplace_back(last_x + f * (x - last_x), last_y + f * (y - last_y));
        }
      }
      last_x = x, last_y = y;
      ++run;
    }
    end_run();
    cairo_new_path(cr);
  }
  cairo_restore(cr);

  draw_frame(cr, plot);
  draw_x_ticks(cr, plot, xt, xs);
  draw_y_ticks(cr, plot, yt, ys);
  draw_x_label(cr, plot, p.x_label);
  draw_y_label(cr, cell, plot, p.y_label);
  draw_panel_title(cr, plot, p.title);
  draw_legend(cr, plot, p.series, drawn);
}

// ---- Bar chart ----

void draw_bar_panel(cairo_t* cr, const Rect& cell, const BarPanel& p) {
  const Rect plot = plot_area(cell, 0);
  // Bars grow from 0, so 0 is always on the axis; the headroom is for the value labels.
  double lo = 0, hi = 0;
  for (double v : p.values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo == hi) hi = 1;
  pad_range(lo, hi, lo < 0 ? 0.12 : 0, hi > 0 ? 0.12 : 0);
  const Scale ys{lo, hi, plot.bottom(), plot.y};
  const Ticks yt = make_ticks(lo, hi, y_tick_target(plot.h));
  draw_grid(cr, plot, nullptr, nullptr, yt, ys);

  const size_t n = p.values.size();
  const double slot = n > 0 ? plot.w / static_cast<double>(n) : plot.w;
  const double zero = ys(0);
  set_font(cr, kTickSize);
  for (size_t i = 0; i < n; ++i) {
    const double centre = plot.x + slot * (static_cast<double>(i) + 0.5);
    const double v = p.values[i];
    if (!std::isfinite(v)) {
      set_colour(cr, kTextColour);
      draw_text(cr, fit_text(cr, "n/a", slot - 2), centre, zero - 3, HAlign::kCentre,
                VAlign::kBaseline);
      continue;
    }
    const double top = ys(v);
    set_colour(cr, kPalette[i % kPaletteSize]);
    cairo_rectangle(cr, centre - 0.35 * slot, std::min(top, zero), 0.7 * slot,
                    std::abs(top - zero));
    cairo_fill(cr);
    set_colour(cr, kTextColour);
    const std::string label = fit_text(cr, value_label(v), slot - 2);
    if (v >= 0)
      draw_text(cr, label, centre, top - 3, HAlign::kCentre, VAlign::kBaseline);
    else
      draw_text(cr, label, centre, top + 2, HAlign::kCentre, VAlign::kTop);
  }
  if (lo < 0) {  // the baseline bars hang from
    set_colour(cr, {0.4, 0.4, 0.4});
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, plot.x, snap(zero));
    cairo_line_to(cr, plot.right(), snap(zero));
    cairo_stroke(cr);
  }

  // Category names: shrink the font towards kMinCategorySize first, then truncate.
  set_colour(cr, kTextColour);
  for (size_t i = 0; i < n; ++i) {
    const double centre = plot.x + slot * (static_cast<double>(i) + 0.5);
    const std::string name = sanitise_utf8(p.categories[i]);
    double size = kTickSize;
    set_font(cr, size);
    const double width = text_width(cr, name), room = slot - 4;
    if (width > room) {
      size = std::max(kMinCategorySize, size * room / width);
      set_font(cr, size);
    }
    draw_text(cr, fit_text(cr, name, room), centre, plot.bottom() + 5, HAlign::kCentre,
              VAlign::kTop);
  }

  draw_frame(cr, plot);
  draw_y_ticks(cr, plot, yt, ys);
  draw_y_label(cr, cell, plot, p.y_label);
  draw_panel_title(cr, plot, p.title);
}

// ---- Validation, rendering, writing ----

void validate(const Figure& fig, const std::string& path) {
  const auto fail = [&](const std::string& why) { throw Error(path + ": " + why); };
  if (fig.panels.empty()) fail("figure has no panels");
  if (fig.width < kMinWidth)
    fail("figure width " + std::to_string(fig.width) + " is below " + std::to_string(kMinWidth) +
         " pixels");
  if (fig.panel_height < kMinPanelHeight)
    fail("panel height " + std::to_string(fig.panel_height) + " is below " +
         std::to_string(kMinPanelHeight) + " pixels");
  if (fig.columns < 1) fail("figure needs at least one column, got " + std::to_string(fig.columns));
  if (fig.width / fig.columns < kMinCellWidth)
    fail("figure width " + std::to_string(fig.width) + " leaves less than " +
         std::to_string(kMinCellWidth) + " pixels for each of " + std::to_string(fig.columns) +
         " columns");
  const int64_t rows = (static_cast<int64_t>(fig.panels.size()) + fig.columns - 1) / fig.columns;
  const int64_t height =
      (fig.title.empty() ? 0 : static_cast<int64_t>(kTitleBand)) + rows * fig.panel_height;
  if (fig.width > kMaxSurfaceSide || height > kMaxSurfaceSide)
    fail("figure of " + std::to_string(fig.width) + " x " + std::to_string(height) +
         " pixels exceeds the limit of " + std::to_string(kMaxSurfaceSide) + " per side");

  for (size_t i = 0; i < fig.panels.size(); ++i) {
    const std::string where = "panel " + std::to_string(i + 1) + ": ";
    if (const auto* h = std::get_if<HeatmapPanel>(&fig.panels[i])) {
      if (h->frames < 1 || h->bins < 1)
        fail(where + "heatmap needs at least one frame and one bin, got " +
             std::to_string(h->frames) + " x " + std::to_string(h->bins));
      // Compared by division: frames * bins may overflow.
      if (h->values.size() % static_cast<size_t>(h->bins) != 0 ||
          h->values.size() / static_cast<size_t>(h->bins) != static_cast<size_t>(h->frames))
        fail(where + "heatmap has " + std::to_string(h->values.size()) +
             " values, expected frames x bins = " + std::to_string(h->frames) + " x " +
             std::to_string(h->bins));
      if (!(h->value_max > h->value_min) || !std::isfinite(h->value_max - h->value_min))
        fail(where + "heatmap colour scale needs finite value_min < value_max, got " +
             std::to_string(h->value_min) + " and " + std::to_string(h->value_max));
      if (!(h->seconds_per_frame > 0) || !std::isfinite(h->seconds_per_frame) ||
          !(h->hz_per_bin > 0) || !std::isfinite(h->hz_per_bin))
        fail(where + "heatmap seconds_per_frame and hz_per_bin must be positive");
    } else if (const auto* l = std::get_if<LinePanel>(&fig.panels[i])) {
      for (size_t k = 0; k < l->series.size(); ++k)
        if (l->series[k].x.size() != l->series[k].y.size())
          fail(where + "series " + std::to_string(k + 1) + " has " +
               std::to_string(l->series[k].x.size()) + " x values but " +
               std::to_string(l->series[k].y.size()) + " y values");
    } else if (const auto* b = std::get_if<BarPanel>(&fig.panels[i])) {
      if (b->categories.size() != b->values.size())
        fail(where + "bar chart has " + std::to_string(b->categories.size()) + " categories but " +
             std::to_string(b->values.size()) + " values");
    }
  }
}

SurfacePtr render(const Figure& fig, const std::string& path) {
  const double title_band = fig.title.empty() ? 0 : kTitleBand;
  const size_t columns = static_cast<size_t>(fig.columns);
  const size_t rows = (fig.panels.size() + columns - 1) / columns;
  const int height = static_cast<int>(title_band) + static_cast<int>(rows) * fig.panel_height;
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, fig.width, height));
  ContextPtr cr(cairo_create(surface.get()));
  cairo_t* c = cr.get();
  cairo_set_source_rgb(c, 1, 1, 1);
  cairo_paint(c);

  if (!fig.title.empty()) {
    set_font(c, kFigureTitleSize, true);
    set_colour(c, kTextColour);
    const std::string title = fit_text(c, sanitise_utf8(fig.title), fig.width - 20);
    draw_text(c, title, fig.width / 2.0, title_band / 2, HAlign::kCentre, VAlign::kMiddle);
  }
  const double cell_w = static_cast<double>(fig.width) / fig.columns;
  for (size_t i = 0; i < fig.panels.size(); ++i) {
    const Rect cell{cell_w * static_cast<double>(i % columns),
                    title_band + static_cast<double>(i / columns) * fig.panel_height, cell_w,
                    static_cast<double>(fig.panel_height)};
    cairo_save(c);
    std::visit(
        [&](const auto& panel) {
          using T = std::decay_t<decltype(panel)>;
          if constexpr (std::is_same_v<T, HeatmapPanel>)
            draw_heatmap(c, cell, panel);
          else if constexpr (std::is_same_v<T, LinePanel>)
            draw_line_panel(c, cell, panel);
          else
            draw_bar_panel(c, cell, panel);
        },
        fig.panels[i]);
    cairo_restore(c);
  }
  // cairo records the first failure (out of memory, ...) and ignores later calls.
  if (const cairo_status_t status = cairo_status(c); status != CAIRO_STATUS_SUCCESS)
    throw Error(path + ": cannot draw the figure: " + cairo_status_to_string(status));
  cairo_surface_flush(surface.get());
  return surface;
}

cairo_status_t append_chunk(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Encoded in memory, then written through write_file_atomically, which reports the system's
// reason for a failure (no such folder, disk full) rather than cairo's generic write error.
void write_atomically(cairo_surface_t* surface, const std::string& path) {
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface, append_chunk, &png);
  if (status != CAIRO_STATUS_SUCCESS)
    throw Error(path + ": cannot encode the PNG (" + cairo_status_to_string(status) + ")");
  write_file_atomically(path, png);
}

}  // namespace

Rgb colour_map(double t) {
  // Cubehelix (D. A. Green 2011, Bull. Astr. Soc. India 39, 289): lightness runs linearly from
  // black to white while the hue turns along a helix about the grey diagonal of the RGB cube.
  // The deviation from grey lies (nearly) in the plane of constant perceived brightness, which
  // is why the map stays monotonic in luminance.
  // These give black -> purple -> red-brown -> olive -> green -> pale cyan -> white, with no
  // channel clipped anywhere in between (a larger kHue would clip and flatten the hues).
  constexpr double kStart = 0.0;      // start hue, Green's units: 1 red, 2 green, 0 or 3 blue
  constexpr double kRotations = 1.0;  // turns of the helix over the map, positive: R -> G -> B
  constexpr double kHue = 1.0;        // saturation: distance of the helix from grey
  constexpr double kGamma = 1.0;      // lightness curve; 1 keeps it linear in t
  if (!(t > 0)) t = 0;                // also maps NaN to black
  if (t > 1) t = 1;
  const double lightness = std::pow(t, kGamma);
  const double amplitude = kHue * lightness * (1 - lightness) / 2;
  const double angle = 2 * kPi * (kStart / 3 + kRotations * t);
  const double c = std::cos(angle), s = std::sin(angle);
  // The two unit directions perpendicular to grey, weighted by the perceived brightness of
  // red, green and blue (coefficients from the paper).
  const auto clamp01 = [](double v) { return std::clamp(v, 0.0, 1.0); };
  return {clamp01(lightness + amplitude * (-0.14861 * c + 1.78277 * s)),
          clamp01(lightness + amplitude * (-0.29227 * c - 0.90649 * s)),
          clamp01(lightness + amplitude * (1.97294 * c))};
}

void write_png(const Figure& figure, const std::string& path) {
  validate(figure, path);
  const SurfacePtr surface = render(figure, path);
  write_atomically(surface.get(), path);
}

}  // namespace denoise::plot
