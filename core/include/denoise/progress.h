// A one-line progress bar on stderr (only when stderr is a terminal, so logs and tests stay clean).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace denoise {

class ProgressBar {
 public:
  // `first`: work already done before this bar started (a resumed run), left out of the ETA.
  ProgressBar(std::string label, int64_t total, bool enabled = true, int64_t first = 0);
  ~ProgressBar();
  // Redraws at most every 100 ms; `status` follows the bar (e.g. "loss 0.12, 3.1 steps/s").
  void update(int64_t done, const std::string& status = "");
  // Prints a whole line (a log message) above the bar without garbling it.
  void print_line(const std::string& line);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  int64_t first_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace denoise
