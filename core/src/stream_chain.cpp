#include "denoise/stream_chain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "denoise/error.h"

namespace denoise {

// ---------------------------------------------------------------- ComputeStats

ComputeStats::ComputeStats(size_t window_hops)
    : window_(std::max<size_t>(window_hops, 1)), scratch_(window_.size()) {}

void ComputeStats::add(double ms) {
  if (window_count_ == window_.size())
    window_sum_ -= window_[window_pos_];
  else
    ++window_count_;
  window_[window_pos_] = static_cast<float>(ms);
  window_sum_ += ms;
  window_pos_ = (window_pos_ + 1) % window_.size();
  const double position = (std::log10(std::max(ms, 1e-3)) + 3.0) * kBinsPerDecade;
  ++histogram_[std::min<size_t>(static_cast<size_t>(std::max(position, 0.0)), kBins - 1)];
  sum_ms_ += ms;
  ++count_;
}

void ComputeStats::reset_window() {
  window_count_ = window_pos_ = 0;
  window_sum_ = 0;
}

double ComputeStats::window_p99_ms() {
  if (!window_count_) return 0.0;
  std::copy(window_.begin(), window_.begin() + window_count_, scratch_.begin());
  const size_t k = std::min(window_count_ - 1, static_cast<size_t>(0.99 * window_count_));
  std::nth_element(scratch_.begin(), scratch_.begin() + k, scratch_.begin() + window_count_);
  return scratch_[k];
}

double ComputeStats::p99_ms() const {
  if (!count_) return 0.0;
  const double want = 0.99 * count_;
  uint64_t seen = 0;
  for (size_t b = 0; b < kBins; ++b) {
    seen += histogram_[b];
    if (seen >= want) return std::pow(10.0, static_cast<double>(b + 1) / kBinsPerDecade - 3.0);
  }
  return std::pow(10.0, 4.0);
}

// ---------------------------------------------------------------- StreamChain

StreamChain::StreamChain(std::unique_ptr<StreamEngine> engine, int rate_hz) : rate_hz_(rate_hz) {
  if (rate_hz <= 0) throw Error("stream: invalid sample rate " + std::to_string(rate_hz) + " Hz");
  set_engine(std::move(engine));
}

StreamChain::~StreamChain() = default;

void StreamChain::set_engine(std::unique_ptr<StreamEngine> engine) {
  engine_ = std::move(engine);
  const int rate = engine_->sample_rate_hz();
  to_engine_.reset();
  from_engine_.reset();
  if (rate != rate_hz_) {
    to_engine_ = std::make_unique<Resampler>(1, rate_hz_, rate);
    from_engine_ = std::make_unique<Resampler>(1, rate, rate_hz_);
  }
  const size_t hop = static_cast<size_t>(engine_->hop());
  hop_in_.assign(hop, 0.f);
  hop_out_.assign(hop, 0.f);
  resampled_.reserve(16 * (hop + 4096));
  filled_ = 0;
  consumed_ = produced_ = 0;
}

void StreamChain::reset() {
  engine_->reset();
  if (to_engine_) {
    to_engine_->reset();
    from_engine_->reset();
  }
  filled_ = 0;
  consumed_ = produced_ = 0;
}

int StreamChain::delay_samples() const {
  return static_cast<int>(std::lround(engine_->delay_samples() * static_cast<double>(rate_hz_) /
                                      engine_->sample_rate_hz()));
}

void StreamChain::process(const float* in, size_t n, std::vector<float>& out, ComputeStats* stats) {
  using Clock = std::chrono::steady_clock;
  consumed_ += static_cast<int64_t>(n);
  const size_t out_before = out.size();
  const float* src = in;
  size_t count = n;
  if (to_engine_) {
    resampled_.clear();
    to_engine_->process(in, static_cast<int64_t>(n), false, resampled_);
    src = resampled_.data();
    count = resampled_.size();
  }
  const size_t hop = hop_in_.size();
  for (size_t i = 0; i < count;) {
    const size_t take = std::min(hop - filled_, count - i);
    std::copy(src + i, src + i + take, hop_in_.begin() + static_cast<std::ptrdiff_t>(filled_));
    filled_ += take;
    i += take;
    if (filled_ < hop) break;
    filled_ = 0;
    const auto t0 = Clock::now();
    engine_->process_hop(hop_in_.data(), hop_out_.data());
    if (stats) stats->add(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (from_engine_)
      from_engine_->process(hop_out_.data(), static_cast<int64_t>(hop), false, out);
    else
      out.insert(out.end(), hop_out_.begin(), hop_out_.end());
  }
  produced_ += static_cast<int64_t>(out.size() - out_before);
}

// ---------------------------------------------------------------- FixedLatencyStream

FixedLatencyStream::FixedLatencyStream(std::unique_ptr<StreamEngine> engine, int rate_hz)
    : chain_(std::move(engine), rate_hz) {
  prime();
}

void FixedLatencyStream::prime() {
  const StreamEngine& e = chain_.engine();
  if (e.sample_rate_hz() == chain_.rate_hz()) {
    // A hop's output comes out with its last input sample: the first sample of a hop waits for
    // hop - 1 more.
    priming_ = static_cast<size_t>(e.hop() - 1);
  } else {
    // How far output lags input depends only on how many samples went in (libsamplerate gives
    // out all it can at once, and the hops complete at fixed counts): fed one sample at a time,
    // half a second of silence shows the worst lag (its pattern repeats within a few hops at the
    // usual rates; 2 samples of margin for the others). This also warms the engine up.
    std::vector<float> sink;
    sink.reserve(1 << 16);
    const float zero = 0.f;
    int64_t worst = 0;
    const int64_t n = std::max<int64_t>(chain_.rate_hz() / 2, 8 * e.hop());
    for (int64_t i = 0; i < n; ++i) {
      chain_.process(&zero, 1, sink);
      worst = std::max(worst, chain_.in_flight());
      if (sink.size() > (1 << 15)) sink.clear();
    }
    priming_ = static_cast<size_t>(worst + 2);
  }
  const double ratio = static_cast<double>(chain_.rate_hz()) / e.sample_rate_hz();
  const size_t most_per_piece =
      static_cast<size_t>(std::ceil((kPiece + 2.0 * e.hop()) * std::max(1.0, ratio))) + 4096;
  fifo_.assign(priming_ + 2 * most_per_piece + kPiece, 0.f);
  staged_.reserve(2 * most_per_piece);
  piece_.resize(kPiece);
  reset();
}

void FixedLatencyStream::reset() {
  chain_.reset();
  std::fill(fifo_.begin(), fifo_.end(), 0.f);
  fifo_read_ = 0;
  fifo_size_ = priming_;  // the zeros before the stream
}

void FixedLatencyStream::process(const float* in, float* out, size_t n, ComputeStats* stats) {
  const size_t capacity = fifo_.size();
  for (size_t done = 0; done < n;) {
    const size_t m = std::min(kPiece, n - done);
    std::copy(in + done, in + done + m, piece_.begin());  // `out` may alias `in`
    staged_.clear();
    chain_.process(piece_.data(), m, staged_, stats);
    if (fifo_size_ + staged_.size() > capacity)
      throw Error("stream: internal buffer overrun (" + std::to_string(fifo_size_) + " + " +
                  std::to_string(staged_.size()) + " > " + std::to_string(capacity) + ")");
    size_t write = (fifo_read_ + fifo_size_) % capacity;
    for (float v : staged_) {
      fifo_[write] = v;
      write = write + 1 == capacity ? 0 : write + 1;
    }
    fifo_size_ += staged_.size();
    // By construction (the priming) the output is ready; were it not, zeros stand in.
    const size_t ready = std::min(m, fifo_size_);
    for (size_t i = 0; i < ready; ++i) {
      out[done + i] = fifo_[fifo_read_];
      fifo_read_ = fifo_read_ + 1 == capacity ? 0 : fifo_read_ + 1;
    }
    std::fill(out + done + ready, out + done + m, 0.f);
    fifo_size_ -= ready;
    done += m;
  }
}

// ---------------------------------------------------------------- the fall-back rule

std::string fallback_reason(const StreamEngine& engine, const ComputeStats& stats,
                            double waiting_seconds, const char* input_lost) {
  if (engine.method() == kFallbackMethod) return "";
  const double hop_ms = 1000.0 * engine.hop() / engine.sample_rate_hz();
  char why[160];
  if (stats.window_full() && stats.window_mean_ms() > 0.8 * hop_ms)
    std::snprintf(why, sizeof why, "%.2f ms of compute per %.1f ms hop over the last second",
                  stats.window_mean_ms(), hop_ms);
  else if (waiting_seconds > 0.2)
    std::snprintf(why, sizeof why, "%.0f ms of input waiting", 1000.0 * waiting_seconds);
  else if (input_lost)
    std::snprintf(why, sizeof why, "%s", input_lost);
  else
    return "";
  return why;
}

}  // namespace denoise
