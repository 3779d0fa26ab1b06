#include "denoise/limiter.h"

#include <algorithm>
#include <cmath>

namespace denoise {

PeakLimiter::PeakLimiter(int channels, int sample_rate_hz, double ceiling, double lookahead_ms,
                         double release_ms)
    : channels_(channels),
      lookahead_(
          std::max(1, static_cast<int>(std::lround(lookahead_ms * sample_rate_hz / 1000.0)))),
      // A hair below the ceiling so rounding in the running sums can never push a peak over it.
      ceiling_(ceiling * (1.0 - 1e-6)),
      release_coef_(1.0 - std::exp(-1.0 / (release_ms * 1e-3 * sample_rate_hz))) {
  delay_.assign(static_cast<size_t>(lookahead_) * channels_, 0.f);
  required_.assign(lookahead_, 1.0);
  deque_.assign(lookahead_ + 1, 0);
  held_.assign(lookahead_, 1.0);
  held_sum_ = lookahead_;
}

double PeakLimiter::max_reduction_db() const {
  return min_gain_ < 1.0 ? -20.0 * std::log10(min_gain_) : 0.0;
}

void PeakLimiter::push_frame(const float* frame, std::vector<float>& out) {
  const int64_t n = n_;
  const int L = lookahead_;
  float peak = 0.f;
  for (int c = 0; c < channels_; ++c) peak = std::max(peak, std::abs(frame[c]));
  const double req = peak > ceiling_ ? ceiling_ / peak : 1.0;
  required_[n % L] = req;
  // Sliding minimum of the required gain over frames [n-L+1, n] (monotonic deque in a ring).
  const int64_t cap = L + 1;
  while (dq_tail_ > dq_head_ && required_[deque_[(dq_tail_ - 1) % cap] % L] >= req) --dq_tail_;
  deque_[dq_tail_++ % cap] = n;
  while (deque_[dq_head_ % cap] <= n - L) ++dq_head_;
  const double window_min = required_[deque_[dq_head_ % cap] % L];
  // Release: the gain recovers exponentially, never above what the window requires.
  release_state_ = std::min(window_min, release_state_ + (1.0 - release_state_) * release_coef_);
  held_sum_ += release_state_ - held_[n % L];
  held_[n % L] = release_state_;
  // The average of L held gains, each at most the required gain of frame n-L+1, is itself at
  // most that gain: the delayed frame cannot exceed the ceiling.
  const double gain = std::min(1.0, held_sum_ / L);
  std::copy(frame, frame + channels_, delay_.begin() + (n % L) * channels_);
  const int64_t out_index = n - L + 1;
  if (out_index >= 0) {
    const float* delayed = delay_.data() + ((n + 1) % L) * channels_;
    min_gain_ = std::min(min_gain_, gain);
    for (int c = 0; c < channels_; ++c) out.push_back(static_cast<float>(delayed[c] * gain));
  }
  ++n_;
}

void PeakLimiter::process(const float* interleaved, int64_t frames, std::vector<float>& out) {
  for (int64_t i = 0; i < frames; ++i) push_frame(interleaved + i * channels_, out);
}

void PeakLimiter::flush(std::vector<float>& out) {
  const std::vector<float> silence(channels_, 0.f);
  for (int i = 0; i < lookahead_ - 1; ++i) push_frame(silence.data(), out);
}

}  // namespace denoise
