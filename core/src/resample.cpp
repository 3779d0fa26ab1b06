#include "denoise/resample.h"

#include <samplerate.h>

#include <cmath>
#include <string>

#include "denoise/error.h"

namespace denoise {

Resampler::Resampler(int channels, int from_rate_hz, int to_rate_hz)
    : channels_(channels), ratio_(static_cast<double>(to_rate_hz) / from_rate_hz) {
  if (channels < 1 || channels > kMaxResampleChannels)
    throw Error("sample-rate conversion takes 1 to " + std::to_string(kMaxResampleChannels) +
                " channels, not " + std::to_string(channels));
  if (from_rate_hz <= 0 || to_rate_hz <= 0)
    throw Error("sample-rate conversion: invalid rates " + std::to_string(from_rate_hz) + " -> " +
                std::to_string(to_rate_hz) + " Hz");
  int err = 0;
  state_ = src_new(SRC_SINC_BEST_QUALITY, channels, &err);
  if (!state_) throw Error(std::string("resampler: ") + src_strerror(err));
}

Resampler::~Resampler() {
  if (state_) src_delete(static_cast<SRC_STATE*>(state_));
}

void Resampler::reset() { src_reset(static_cast<SRC_STATE*>(state_)); }

void Resampler::process(const float* interleaved, int64_t frames, bool end_of_input,
                        std::vector<float>& out) {
  SRC_DATA data{};
  data.src_ratio = ratio_;
  data.end_of_input = end_of_input ? 1 : 0;
  const long chunk_out =
      static_cast<long>(std::ceil(std::max<int64_t>(frames, 1024) * ratio_)) + 256;
  if (buffer_.size() < static_cast<size_t>(chunk_out) * channels_)
    buffer_.resize(static_cast<size_t>(chunk_out) * channels_);
  std::vector<float>& buffer = buffer_;
  const float* in = interleaved;
  int64_t remaining = frames;
  for (;;) {
    data.data_in = in;
    data.input_frames = static_cast<long>(remaining);
    data.data_out = buffer.data();
    data.output_frames = chunk_out;
    const int err = src_process(static_cast<SRC_STATE*>(state_), &data);
    if (err) throw Error(std::string("resampler: ") + src_strerror(err));
    out.insert(out.end(), buffer.begin(), buffer.begin() + data.output_frames_gen * channels_);
    in += data.input_frames_used * channels_;
    remaining -= data.input_frames_used;
    // Done once the input is consumed and (when flushing) the filter has drained.
    if (remaining == 0 && (!end_of_input || data.output_frames_gen == 0)) break;
  }
}

std::vector<float> resample(const std::vector<float>& signal, int from_rate_hz, int to_rate_hz) {
  if (from_rate_hz == to_rate_hz) return signal;
  Resampler r(1, from_rate_hz, to_rate_hz);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(signal.size() * r.ratio()) + 16);
  r.process(signal.data(), static_cast<int64_t>(signal.size()), true, out);
  const size_t want = static_cast<size_t>(std::llround(signal.size() * r.ratio()));
  out.resize(want, 0.f);
  return out;
}

}  // namespace denoise
