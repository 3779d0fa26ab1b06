#include "denoise/progress.h"

#include <unistd.h>

#include <cstdio>

namespace denoise {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, int64_t first)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && isatty(STDERR_FILENO)),
      first_(first),
      start_(std::chrono::steady_clock::now()),
      last_draw_() {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& status) {
  if (!enabled_ || finished_ || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double frac = std::min(1.0, static_cast<double>(done) / total_);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double new_work = static_cast<double>(done - first_);
  const double eta = new_work > 0 ? elapsed * static_cast<double>(total_ - done) / new_work : 0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %3d%%  %.1fs elapsed, ETA %.1fs %s", label_.c_str(),
               bar.c_str(), static_cast<int>(frac * 100), elapsed, eta, status.c_str());
  std::fflush(stderr);
}

void ProgressBar::print_line(const std::string& line) {
  if (enabled_ && !finished_ && last_draw_ != std::chrono::steady_clock::time_point())
    std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  last_draw_ = std::chrono::steady_clock::time_point();  // redraw at the next update
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (last_draw_ != std::chrono::steady_clock::time_point()) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

}  // namespace denoise
