// Look-ahead peak limiter: output peaks never exceed the ceiling, with no hard clipping. The gain
// is the minimum required gain over a look-ahead window, held with an exponential release and
// averaged over the window, which guarantees |y| <= ceiling while keeping the gain smooth.
// Channels are linked (one gain for all), so the stereo image does not move.
#pragma once

#include <cstdint>
#include <vector>

namespace denoise {

class PeakLimiter {
 public:
  PeakLimiter(int channels, int sample_rate_hz, double ceiling = 0.9885530946569389 /* -0.1 dBFS */,
              double lookahead_ms = 5.0, double release_ms = 80.0);

  // Processes `frames` interleaved frames; appends the frames that have left the look-ahead delay
  // to `out` (interleaved). flush() emits the rest.
  void process(const float* interleaved, int64_t frames, std::vector<float>& out);
  void flush(std::vector<float>& out);
  int latency_frames() const { return lookahead_ - 1; }

  // Largest gain reduction applied so far, in dB (0 when the limiter never acted).
  double max_reduction_db() const;

 private:
  void push_frame(const float* frame, std::vector<float>& out);
  int channels_;
  int lookahead_;
  double ceiling_;
  double release_coef_;
  std::vector<float> delay_;      // lookahead_ frames, ring
  std::vector<double> required_;  // ring of required gains (for the sliding minimum)
  std::vector<int64_t> deque_;    // monotonic deque of indices into required_ (ring)
  int64_t dq_head_ = 0, dq_tail_ = 0;
  std::vector<double> held_;  // ring of held/released gains for the moving average
  double held_sum_ = 0;
  double release_state_ = 1.0;
  double min_gain_ = 1.0;
  int64_t n_ = 0;  // frames pushed
};

}  // namespace denoise
