#include "denoise/stream.h"

#include <algorithm>
#include <cmath>

#include "denoise/error.h"

namespace denoise {

std::unique_ptr<FrameGains> Denoiser::make_frame_gains() const { return nullptr; }

StreamEngine::StreamEngine(std::unique_ptr<FrameGains> gains, std::string method)
    : method_(std::move(method)), config_(gains->front_end()), gains_(std::move(gains)) {
  if (config_.center && (config_.n_fft / 2) % config_.hop_length != 0)
    throw Error("cannot stream a front end whose half window (" +
                std::to_string(config_.n_fft / 2) + " samples) is not a whole number of hops (" +
                std::to_string(config_.hop_length) + ")");
  front_end_ = std::make_unique<FrontEnd>(config_);
  analyzer_ = std::make_unique<StreamingAnalyzer>(*front_end_);
  synthesizer_ = std::make_unique<StreamingSynthesizer>(*front_end_);
  const int bins = config_.n_bins();
  frame_.resize(bins);
  delayed_.assign(static_cast<size_t>(gains_->lookahead_frames() + 1) * bins, {});
  gain_.resize(bins);
}

StreamEngine::~StreamEngine() = default;

int StreamEngine::latency_samples() const {
  return synthesizer_->latency_samples() + gains_->lookahead_frames() * config_.hop_length;
}

int StreamEngine::delay_samples() const {
  return config_.n_fft - config_.hop_length + gains_->lookahead_frames() * config_.hop_length;
}

void StreamEngine::reset() {
  analyzer_->reset();
  synthesizer_->reset();
  gains_->reset();
  std::fill(delayed_.begin(), delayed_.end(), std::complex<float>{});
  frames_in_ = 0;
}

void StreamEngine::process_hop(const float* in, float* out) {
  const int bins = config_.n_bins();
  if (!analyzer_->push(in, frame_.data())) {
    // Before the first frame is complete (its centring half-window): silence out.
    std::fill(out, out + config_.hop_length, 0.f);
    return;
  }
  // With look-ahead L the gains that come back are those of frame t - L, kept in a ring.
  const int64_t slots = gains_->lookahead_frames() + 1;
  std::complex<float>* slot = delayed_.data() + (frames_in_ % slots) * bins;
  std::copy(frame_.begin(), frame_.end(), slot);
  gains_->process(frame_.data(), gain_.data());
  const std::complex<float>* target = delayed_.data() + ((frames_in_ + 1) % slots) * bins;
  for (int f = 0; f < bins; ++f) frame_[f] = target[f] * gain_[f];
  ++frames_in_;
  synthesizer_->push(frame_.data(), out);
}

MethodOptions live_method_options(MethodOptions options, int sample_rate_hz) {
  // A hop of about 5 ms and a window of four hops (about 20 ms): at 16 kHz 320 samples every 80,
  // at 44.1 kHz 880 every 220. A whole number of hops in half a window keeps the centred frames
  // on the streaming analyzer's grid.
  const int hop = std::max(1, static_cast<int>(std::lround(0.005 * sample_rate_hz)));
  options.gate.n_fft = 4 * hop;
  options.gate.hop_length = hop;
  options.gate.causal = true;
  options.gate.padding_samples = 0;
  return options;
}

std::unique_ptr<StreamEngine> make_stream_engine(const std::string& method,
                                                 const MethodOptions& options,
                                                 int sample_rate_hz) {
  const MethodOptions live = live_method_options(options, sample_rate_hz);
  const std::unique_ptr<Denoiser> d = make_denoiser(method, live, sample_rate_hz);
  std::unique_ptr<FrameGains> gains = d->make_frame_gains();
  if (!gains)
    throw Error(method + ": cannot run live (it needs later frames; a causal model or "
                         "gate / gate-nonstationary can)");
  return std::make_unique<StreamEngine>(std::move(gains), method);
}

}  // namespace denoise
