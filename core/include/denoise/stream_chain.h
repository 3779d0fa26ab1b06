// What live mode (infer --live), the C API (capi/denoise.h) and the LADSPA plugin share around
// the streaming engine (stream.h): the caller's rate in and out, the engine at its own rate
// between two streaming resamplers, hop buffering, the compute statistics and the rule that hands
// over to a cheaper method when compute cannot keep up.
//
//   StreamChain chain(make_stream_engine("unet", options, 48000), 48000);
//   chain.process(in, n, out, &stats);              // appends what is ready (any n)
//   FixedLatencyStream s(make_stream_engine(...), 48000);
//   s.process(in, out, n);                          // n in, n out, latency_samples() later
//
// Neither is thread-safe: one stream is used by one thread at a time. Distinct streams over one
// model may run in distinct threads (the model is only read).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "denoise/resample.h"
#include "denoise/stream.h"

namespace denoise {

// Per-hop compute times: a window of the last second for status lines and the fall-back rule,
// and a log-spaced histogram (1 us .. 10 s, 6 % per bin) for a run's p99. Allocates only in the
// constructor.
class ComputeStats {
 public:
  explicit ComputeStats(size_t window_hops);

  void add(double ms);
  void reset_window();
  bool window_full() const { return window_count_ == window_.size(); }
  double window_mean_ms() const { return window_count_ ? window_sum_ / window_count_ : 0.0; }
  double window_p99_ms();
  int64_t count() const { return count_; }
  double mean_ms() const { return count_ ? sum_ms_ / count_ : 0.0; }
  // The upper edge of the histogram bin holding the 99th percentile.
  double p99_ms() const;

 private:
  static constexpr size_t kBinsPerDecade = 40;
  static constexpr size_t kBins = 7 * kBinsPerDecade;
  std::vector<float> window_, scratch_;
  size_t window_pos_ = 0, window_count_ = 0;
  double window_sum_ = 0;
  std::array<uint64_t, kBins> histogram_{};
  double sum_ms_ = 0;
  int64_t count_ = 0;
};

// Samples at the caller's rate in, samples at the caller's rate out: resampled to the engine's
// rate and back (libsamplerate, streaming) when the two differ, fed to the engine hop by hop.
// How many samples come out of a call depends on how many hops completed (see FixedLatencyStream
// for n in, n out). Buffers are reserved here; a call allocates only when its block is larger than
// any before (never for the classical methods' engines in steady state; the U-Net's LibTorch calls
// allocate their tensors).
class StreamChain {
 public:
  StreamChain(std::unique_ptr<StreamEngine> engine, int rate_hz);
  ~StreamChain();

  // Replaces the engine (the fall-back); the resamplers and hop buffer start afresh.
  void set_engine(std::unique_ptr<StreamEngine> engine);
  void reset();
  StreamEngine& engine() { return *engine_; }
  const StreamEngine& engine() const { return *engine_; }
  int rate_hz() const { return rate_hz_; }
  // The engine's delay_samples() at the caller's rate (rounded when the rates' ratio makes it
  // fractional): output sample i + delay_samples() of the concatenated outputs is the offline
  // output's sample i.
  int delay_samples() const;
  // Samples taken in but not yet given out (the hop being filled, the resamplers' delay lines).
  int64_t in_flight() const { return consumed_ - produced_; }

  // Appends the output for `n` input samples to `out`; per-hop compute times go to `stats` when
  // given.
  void process(const float* in, size_t n, std::vector<float>& out, ComputeStats* stats = nullptr);

 private:
  int rate_hz_;
  std::unique_ptr<StreamEngine> engine_;
  std::unique_ptr<Resampler> to_engine_, from_engine_;
  std::vector<float> hop_in_, hop_out_, resampled_;
  size_t filled_ = 0;
  int64_t consumed_ = 0, produced_ = 0;
};

// A StreamChain with a fixed delay: every call gives exactly as many samples as it takes, and
// output sample i + latency_samples() is the offline output's sample i, whatever the sizes of the
// calls. The chain's own output is delayed by the most it can ever lag behind its input (one hop
// less one sample without resampling; measured once on silence, one sample at a time, with
// resampling), so that the output is always ready.
class FixedLatencyStream {
 public:
  FixedLatencyStream(std::unique_ptr<StreamEngine> engine, int rate_hz);

  // `in` and `out` may be the same buffer.
  void process(const float* in, float* out, size_t n, ComputeStats* stats = nullptr);
  void reset();
  int latency_samples() const { return chain_.delay_samples() + static_cast<int>(priming_); }
  StreamChain& chain() { return chain_; }
  const StreamChain& chain() const { return chain_; }

 private:
  static constexpr size_t kPiece = 1024;  // the chain is fed at most this many samples at once
  void prime();
  StreamChain chain_;
  size_t priming_ = 0;
  std::vector<float> fifo_;  // ring of the chain's output not yet given out
  size_t fifo_read_ = 0, fifo_size_ = 0;
  std::vector<float> staged_, piece_;
};

// The fall-back rule of live mode and the plugin. A method that cannot keep up hands over, once,
// to kFallbackMethod rather than crackle: when its mean compute over the last second (a full
// window of `stats`) exceeds 80 % of a hop, when more than 200 ms of input wait, or when input was
// lost (`input_lost` names how: "the input overflowed", "the host's deadline passed"; nullptr:
// none). Returns why, or "" to carry on; always "" for kFallbackMethod itself.
inline constexpr const char* kFallbackMethod = "gate-nonstationary";
std::string fallback_reason(const StreamEngine& engine, const ComputeStats& stats,
                            double waiting_seconds, const char* input_lost);

}  // namespace denoise
