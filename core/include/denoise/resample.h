// Sample-rate conversion through libsamplerate (SRC_SINC_BEST_QUALITY by default).
#pragma once

#include <cstdint>
#include <vector>

namespace denoise {

// Most channels one converter takes (libsamplerate's limit).
inline constexpr int kMaxResampleChannels = 128;

// Streaming converter for one or more interleaved channels; keeps filter state between calls.
class Resampler {
 public:
  // Throws denoise::Error for channels outside 1..kMaxResampleChannels or rates <= 0.
  Resampler(int channels, int from_rate_hz, int to_rate_hz);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  // Converts `frames` interleaved input frames and appends the produced frames to `out`.
  // `end_of_input` flushes the filter's delay line: call once with the last block. Allocates
  // only when a block is larger than any before (and when `out` must grow).
  void process(const float* interleaved, int64_t frames, bool end_of_input,
               std::vector<float>& out);
  void reset();
  double ratio() const { return ratio_; }

 private:
  void* state_ = nullptr;  // SRC_STATE*
  int channels_;
  double ratio_;
  std::vector<float> buffer_;  // libsamplerate's output, before it is appended to `out`
};

// One-shot conversion of a mono signal; output length round(n * to / from).
std::vector<float> resample(const std::vector<float>& signal, int from_rate_hz, int to_rate_hz);

}  // namespace denoise
