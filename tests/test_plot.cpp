// Figures: the colour map, the layout and orientation of heatmaps, line and bar charts with
// awkward data, validation, and the atomic write. PNGs are read back with cairo.
#include <cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "denoise/error.h"
#include "denoise/plot.h"

using namespace denoise;
namespace fs = std::filesystem;

namespace {

// Layout of plot.cpp, in pixels: the tests sample pixels well inside these bounds.
constexpr int kTitleBand = 30;
constexpr int kLeft = 70, kRight = 15, kTop = 25, kBottom = 40, kColourBar = 70;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

double luminance(const plot::Rgb& c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }
double saturation(const plot::Rgb& c) {
  return std::max({c.r, c.g, c.b}) - std::min({c.r, c.g, c.b});
}

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("denoise_test_plot_" + std::to_string(getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint32_t> pixels;  // 0x??RRGGBB, row-major
  plot::Rgb at(int x, int y) const {
    const uint32_t p = pixels.at(static_cast<size_t>(y) * width + x);
    return {((p >> 16) & 0xFF) / 255.0, ((p >> 8) & 0xFF) / 255.0, (p & 0xFF) / 255.0};
  }
};

std::optional<Image> read_png(const std::string& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  std::optional<Image> image;
  const cairo_format_t format = cairo_image_surface_get_format(s);
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS &&
      (format == CAIRO_FORMAT_RGB24 || format == CAIRO_FORMAT_ARGB32)) {
    cairo_surface_flush(s);
    image.emplace();
    image->width = cairo_image_surface_get_width(s);
    image->height = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char* data = cairo_image_surface_get_data(s);
    for (int y = 0; y < image->height; ++y) {
      const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
      image->pixels.insert(image->pixels.end(), row, row + image->width);
    }
  }
  cairo_surface_destroy(s);
  return image;
}

// A heatmap whose value is value_max where `bright(frame, bin)` and value_min elsewhere.
template <typename Pred>
plot::HeatmapPanel two_level_heatmap(long frames, int bins, Pred bright) {
  plot::HeatmapPanel h;
  h.title = "test";
  h.frames = frames;
  h.bins = bins;
  h.values.resize(static_cast<size_t>(frames) * bins);
  for (long f = 0; f < frames; ++f)
    for (int b = 0; b < bins; ++b)
      h.values[static_cast<size_t>(f) * bins + b] =
          static_cast<float>(bright(f, b) ? h.value_max : h.value_min);
  return h;
}

// The plot area of the single heatmap cell of a one-panel figure.
struct Area {
  int x0, y0, x1, y1;
  int x_at(double fraction) const { return x0 + static_cast<int>(fraction * (x1 - x0)); }
  int y_at(double fraction_from_bottom) const {
    return y1 - static_cast<int>(fraction_from_bottom * (y1 - y0));
  }
};
Area heatmap_area(const plot::Figure& fig) {
  const int top = fig.title.empty() ? 0 : kTitleBand;
  return {kLeft, top + kTop, fig.width - kRight - kColourBar, top + fig.panel_height - kBottom};
}

}  // namespace

TEST(PlotColourMap, RunsFromDarkToLightWithRisingLuminance) {
  EXPECT_LT(luminance(plot::colour_map(0)), 0.1);
  EXPECT_GT(luminance(plot::colour_map(1)), 0.9);
  double previous = -1;
  for (int i = 0; i < 256; ++i) {
    const plot::Rgb c = plot::colour_map(i / 255.0);
    for (double channel : {c.r, c.g, c.b}) {
      EXPECT_GE(channel, 0.0);
      EXPECT_LE(channel, 1.0);
    }
    const double l = luminance(c);
    EXPECT_GT(l, previous) << "at sample " << i;
    previous = l;
  }
  // Not grey: the helix gives the middle of the map some colour.
  const plot::Rgb mid = plot::colour_map(0.5);
  EXPECT_GT(std::max({mid.r, mid.g, mid.b}) - std::min({mid.r, mid.g, mid.b}), 0.1);
}

TEST(PlotColourMap, ClampsItsArgument) {
  const auto same = [](const plot::Rgb& a, const plot::Rgb& b) {
    return a.r == b.r && a.g == b.g && a.b == b.b;
  };
  EXPECT_TRUE(same(plot::colour_map(-3), plot::colour_map(0)));
  EXPECT_TRUE(same(plot::colour_map(7), plot::colour_map(1)));
  const plot::Rgb nan = plot::colour_map(kNaN);
  EXPECT_TRUE(std::isfinite(nan.r) && std::isfinite(nan.g) && std::isfinite(nan.b));
}

TEST(PlotHeatmap, ImageSizeFollowsTheGrid) {
  TempDir dir;
  plot::Figure fig;
  fig.title = "Three spectrograms";
  fig.width = 640;
  fig.panel_height = 200;
  fig.columns = 2;
  for (int i = 0; i < 3; ++i)
    fig.panels.push_back(two_level_heatmap(50, 20, [](long f, int) { return f % 2 == 0; }));
  const std::string path = dir.file("grid.png");
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->width, 640);
  EXPECT_EQ(image->height, kTitleBand + 2 * 200);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"grid.png"});

  fig.title.clear();  // no title band
  plot::write_png(fig, path);
  EXPECT_EQ(read_png(path)->height, 2 * 200);
}

TEST(PlotHeatmap, TimeRunsLeftToRight) {
  TempDir dir;
  plot::Figure fig;
  fig.width = 600;
  fig.panel_height = 300;
  fig.panels.push_back(two_level_heatmap(100, 50, [](long f, int) { return f < 50; }));
  const std::string path = dir.file("time.png");
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  ASSERT_EQ(image->width, 600);
  ASSERT_EQ(image->height, 300);
  const Area a = heatmap_area(fig);
  for (double y : {0.15, 0.5, 0.85}) {
    for (double x : {0.1, 0.25, 0.4})
      EXPECT_GT(luminance(image->at(a.x_at(x), a.y_at(y))), 0.85) << x << ", " << y;
    for (double x : {0.6, 0.75, 0.9})
      EXPECT_LT(luminance(image->at(a.x_at(x), a.y_at(y))), 0.15) << x << ", " << y;
  }
}

TEST(PlotHeatmap, BinZeroIsAtTheBottom) {
  TempDir dir;
  plot::Figure fig;
  fig.title = "Low frequencies loud";
  fig.width = 500;
  fig.panel_height = 260;
  fig.panels.push_back(two_level_heatmap(40, 64, [](long, int b) { return b < 32; }));
  const std::string path = dir.file("bins.png");
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  const Area a = heatmap_area(fig);
  for (double x : {0.1, 0.5, 0.9}) {
    EXPECT_GT(luminance(image->at(a.x_at(x), a.y_at(0.2))), 0.85) << x;
    EXPECT_LT(luminance(image->at(a.x_at(x), a.y_at(0.8))), 0.15) << x;
  }
}

// More frames than an image column each: they are averaged, and must keep their positions.
TEST(PlotHeatmap, LongInputsAreAveragedInPlace) {
  TempDir dir;
  plot::Figure fig;
  fig.width = 800;
  fig.panel_height = 200;
  const long frames = 20001;  // 3 frames a column, the last column partial
  fig.panels.push_back(two_level_heatmap(frames, 3, [&](long f, int) { return f < frames / 2; }));
  const std::string path = dir.file("long.png");
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  const Area a = heatmap_area(fig);
  for (double x : {0.05, 0.3, 0.45})
    EXPECT_GT(luminance(image->at(a.x_at(x), a.y_at(0.5))), 0.85) << x;
  for (double x : {0.55, 0.7, 0.95})
    EXPECT_LT(luminance(image->at(a.x_at(x), a.y_at(0.5))), 0.15) << x;
}

TEST(PlotHeatmap, NonFiniteValuesAreDrawnAsTheMinimum) {
  TempDir dir;
  plot::Figure fig;
  fig.width = 400;
  fig.panel_height = 200;
  plot::HeatmapPanel h = two_level_heatmap(20, 10, [](long, int) { return true; });
  for (size_t i = 0; i < h.values.size(); ++i)
    h.values[i] =
        i % 2 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  fig.panels.push_back(h);
  const std::string path = dir.file("nan.png");
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  const Area a = heatmap_area(fig);
  EXPECT_LT(luminance(image->at(a.x_at(0.5), a.y_at(0.5))), 0.1);
}

// A curve that rises to the right (a validation score, say) keeps its latest values in view: the
// legend moves to a corner the lines leave free, here the upper left.
TEST(PlotCharts, LegendLeavesTheLatestValuesInView) {
  TempDir dir;
  plot::Figure fig;
  fig.title = "legend";
  fig.width = 600;
  fig.panel_height = 260;
  plot::LinePanel lines;
  lines.title = "rising";
  lines.x_label = "Step";
  lines.y_label = "dB";
  lines.series.push_back({"validation", {0, 2, 4, 6, 8, 10}, {0, 2, 4, 6, 8, 10}});
  fig.panels.push_back(lines);
  const std::string path = dir.file("legend.png");
  ASSERT_NO_THROW(plot::write_png(fig, path));
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  const auto most_saturated = [&](int x0, int x1, int y0, int y1) {
    double best = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) best = std::max(best, saturation(image->at(x, y)));
    return best;
  };
  const int left = kLeft, right = 600 - kRight, top = kTitleBand + kTop;
  // The last point (x 2 % and y 5 % of the span inside the plot's top-right corner) is drawn in
  // the series' blue (saturation 0.56), not washed out under the legend's white fill (0.08).
  EXPECT_GT(most_saturated(right - 20, right - 2, top + 2, top + 24), 0.4);
  // The legend, with its blue swatch, is in the upper left, where the line never goes.
  EXPECT_GT(most_saturated(left + 10, left + 36, top + 8, top + 30), 0.4);
}

TEST(PlotCharts, LineAndBarPanelsSideBySide) {
  TempDir dir;
  plot::Figure fig;
  fig.title = "Training \xff\xfe (invalid UTF-8 is shown, not fatal)";
  fig.width = 900;
  fig.panel_height = 260;
  fig.columns = 2;

  plot::LinePanel lines;
  lines.title = "Loss";
  lines.x_label = "Epoch";
  lines.y_label = "Loss (dB)";
  lines.series.push_back({"", {0, 1, 2, 3, 4}, {2, 2, 2, 2, 2}});  // flat: mid-axis, no legend
  lines.series.push_back({"gaps", {0, 1, kNaN, 3, 4}, {1.5, kInf, 2.5, 2.2, kNaN}});
  lines.series.push_back({"single point", {2}, {2.5}});
  lines.series.push_back({"empty", {}, {}});
  fig.panels.push_back(lines);

  plot::BarPanel bars;
  bars.title = "SI-SDR improvement";
  bars.y_label = "dB";
  bars.categories = {"spectral_subtract", "a category name far too long to fit under its bar",
                     "unet"};
  bars.values = {1.0, kNaN, -0.5};
  fig.panels.push_back(bars);

  const std::string path = dir.file("charts.png");
  ASSERT_NO_THROW(plot::write_png(fig, path));
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  ASSERT_EQ(image->width, 900);
  ASSERT_EQ(image->height, kTitleBand + 260);

  // The flat series sits on the middle of the y axis (finite points span 1.5 to 2.5): its most
  // coloured pixel in the column at x = 0.5, clear of the other series, is there.
  {
    const int x0 = kLeft, x1 = 450 - kRight, y0 = kTitleBand + kTop,
              y1 = kTitleBand + 260 - kBottom;
    const int x = x0 + static_cast<int>(0.125 * (x1 - x0));
    int best_y = -1;
    double best = 0;
    for (int y = y0 + 3; y < y1 - 3; ++y) {
      const double s = saturation(image->at(x, y));
      if (s > best) best = s, best_y = y;
    }
    EXPECT_GT(best, 0.3);
    EXPECT_NEAR(best_y, (y0 + y1) / 2.0, 2.0);
  }
  // Bars: y runs from -0.5 - 12% to 1 + 12% of the span 1.5; the second value has none.
  {
    const int x0 = 450 + kLeft, x1 = 900 - kRight, y0 = kTitleBand + kTop,
              y1 = kTitleBand + 260 - kBottom;
    const double lo = -0.5 - 0.18, hi = 1.0 + 0.18;
    const auto y_of = [&](double v) {
      return static_cast<int>(y1 - (v - lo) / (hi - lo) * (y1 - y0));
    };
    const auto slot_x = [&](int i) { return x0 + static_cast<int>((i + 0.5) * (x1 - x0) / 3.0); };
    EXPECT_GT(saturation(image->at(slot_x(0), y_of(0.5))), 0.3);
    EXPECT_LT(saturation(image->at(slot_x(1), y_of(0.5))), 0.05);
    EXPECT_LT(saturation(image->at(slot_x(1), y_of(-0.25))), 0.05);
    EXPECT_GT(saturation(image->at(slot_x(2), y_of(-0.25))), 0.3);
    EXPECT_LT(saturation(image->at(slot_x(2), y_of(0.5))), 0.05);  // negative bars hang down
  }
}

TEST(PlotCharts, DegenerateDataStillDraws) {
  TempDir dir;
  plot::Figure fig;
  fig.width = 200;
  fig.panel_height = 100;
  fig.columns = 1;
  fig.panels.push_back(plot::LinePanel{});  // no series at all
  fig.panels.push_back(plot::LinePanel{"", "", "", {{"nan", {kNaN}, {kNaN}}}});
  fig.panels.push_back(plot::BarPanel{});                               // no categories
  fig.panels.push_back(plot::BarPanel{"", "", {"a", "b"}, {kNaN, 0}});  // nothing but n/a and 0
  // Spans that overflow a double, and a constant beyond 2^53.
  fig.panels.push_back(plot::LinePanel{"", "", "", {{"huge", {0, 1}, {-1.7e308, 1.7e308}}}});
  fig.panels.push_back(plot::LinePanel{"", "", "", {{"flat", {0, 1e300}, {1e20, 1e20}}}});
  fig.panels.push_back(plot::BarPanel{"", "", {"a", "b"}, {1.7e308, -1.7e308}});
  const std::string path = dir.file("degenerate.png");
  ASSERT_NO_THROW(plot::write_png(fig, path));
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->height, 7 * 100);
}

TEST(PlotWrite, MalformedFiguresThrowAndLeaveNoFile) {
  TempDir dir;
  const auto heatmap = [] { return two_level_heatmap(4, 3, [](long, int) { return false; }); };
  const auto figure = [](plot::Panel p) {
    plot::Figure f;
    f.panels.push_back(std::move(p));
    return f;
  };
  std::vector<std::pair<std::string, plot::Figure>> cases;
  cases.emplace_back("no panels", plot::Figure{});
  {
    plot::Figure f = figure(heatmap());
    f.width = 199;
    cases.emplace_back("narrow", f);
    f.width = 1000, f.panel_height = 99;
    cases.emplace_back("short", f);
    f.panel_height = 240, f.columns = 0;
    cases.emplace_back("no columns", f);
    f.columns = 6;  // 166 pixels a cell
    cases.emplace_back("cells too narrow", f);
  }
  {
    plot::HeatmapPanel h = heatmap();
    h.values.pop_back();
    cases.emplace_back("values != frames x bins", figure(h));
    h = heatmap(), h.frames = 0, h.values.clear();
    cases.emplace_back("no frames", figure(h));
    h = heatmap(), h.bins = 0, h.values.clear();
    cases.emplace_back("no bins", figure(h));
    h = heatmap(), h.value_max = h.value_min;
    cases.emplace_back("empty colour scale", figure(h));
    h = heatmap(), h.value_max = -100;
    cases.emplace_back("reversed colour scale", figure(h));
    h = heatmap(), h.value_min = kNaN;
    cases.emplace_back("NaN colour scale", figure(h));
  }
  cases.emplace_back("x/y lengths differ",
                     figure(plot::LinePanel{"", "", "", {{"ok", {1}, {1}}, {"bad", {1, 2}, {1}}}}));
  cases.emplace_back("categories != values", figure(plot::BarPanel{"", "", {"a", "b"}, {1}}));

  const std::string path = dir.file("bad.png");
  for (const auto& [name, fig] : cases) {
    try {
      plot::write_png(fig, path);
      ADD_FAILURE() << name << ": no exception";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << name << ": " << e.what();
    }
    EXPECT_TRUE(dir.entries().empty()) << name;
  }
}

TEST(PlotWrite, MissingDirectoryThrowsNamingThePath) {
  TempDir dir;
  plot::Figure fig;
  fig.panels.push_back(plot::BarPanel{"", "", {"a"}, {1}});
  const std::string path = dir.file("no/such/dir/figure.png");
  try {
    plot::write_png(fig, path);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PlotWrite, FailedRenameRemovesTheTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("taken");
  fs::create_directory(path);
  fs::create_directory(path + "/inside");  // a non-empty directory cannot be replaced
  plot::Figure fig;
  fig.panels.push_back(plot::BarPanel{"", "", {"a"}, {1}});
  EXPECT_THROW(plot::write_png(fig, path), Error);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"taken"});
}

TEST(PlotWrite, ReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("figure.png");
  std::ofstream(path) << "not a PNG";
  ASSERT_FALSE(read_png(path));

  plot::Figure fig;
  fig.width = 300;
  fig.panel_height = 150;
  fig.panels.push_back(plot::LinePanel{"t", "x", "y", {{"s", {0, 1}, {0, 1}}}});
  plot::write_png(fig, path);
  const auto image = read_png(path);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->width, 300);
  EXPECT_EQ(image->height, 150);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"figure.png"});
}
