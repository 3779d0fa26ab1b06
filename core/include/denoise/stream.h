// The streaming engine: frame in, frame out, for live microphone denoising.
//
//   auto engine = denoise::make_stream_engine("unet", options);   // after load_model_methods()
//   std::vector<float> out(engine->hop());
//   while (capturing) engine->process_hop(hop_of_input, out.data());  // at engine->sample_rate_hz()
//
// One hop of input gives one hop of output, latency_samples() later. The same front end as files
// (StreamingAnalyzer / StreamingSynthesizer over the method's FrontEndConfig), and the same gains:
// fed a file, the output equals the offline causal path (denoise_channels with the same method
// options) shifted by the latency (tested within 1e-4).
//
// Methods stream through FrameGains, a per-stream object made by Denoiser::make_frame_gains():
// the model's weights (or a method's fixed settings) are shared and never written; the stream's
// state (convolution caches, noise floor, smoothing history) is its own, and reset() clears it.
// process_hop() does not allocate for the classical methods; the U-Net's LibTorch calls allocate
// their intermediate tensors (LibTorch's CPU allocator), which is why the engine runs in a worker
// thread and never in an audio callback.
#pragma once

#include <complex>
#include <memory>
#include <string>
#include <vector>

#include "denoise/denoiser.h"
#include "denoise/front_end.h"

namespace denoise {

// Per-stream, frame-by-frame gains of a causal method.
class FrameGains {
 public:
  virtual ~FrameGains() = default;
  virtual const FrontEndConfig& front_end() const = 0;
  // Frames after frame t that its gains depend on; process() then returns the gains of the
  // frame lookahead_frames() earlier.
  virtual int lookahead_frames() const { return 0; }
  // Starts a new stream: as if nothing had been heard before.
  virtual void reset() = 0;
  // Takes the next frame of the noisy STFT (n_bins values) and writes n_bins gains, for the frame
  // lookahead_frames() earlier (for the first ones: of the silence before the stream).
  virtual void process(const std::complex<float>* frame, float* gain) = 0;
};

class StreamEngine {
 public:
  // Throws denoise::Error when the front end cannot stream (centred frames need half a window to
  // be a whole number of hops).
  explicit StreamEngine(std::unique_ptr<FrameGains> gains, std::string method = "");
  ~StreamEngine();
  StreamEngine(const StreamEngine&) = delete;
  StreamEngine& operator=(const StreamEngine&) = delete;

  const std::string& method() const { return method_; }
  int sample_rate_hz() const { return config_.sample_rate_hz; }
  int hop() const { return config_.hop_length; }
  // Algorithmic latency: window plus look-ahead, in samples at sample_rate_hz().
  int latency_samples() const;
  double latency_ms() const { return 1000.0 * latency_samples() / sample_rate_hz(); }
  // Output index minus input index of the same sample in the hop-by-hop streams (the latency
  // less the one hop a sample waits for its hop to fill): output[i + delay_samples()] is the
  // offline output's sample i.
  int delay_samples() const;

  void reset();
  // One hop of input in, one hop of output out (`in` and `out` may not overlap).
  void process_hop(const float* in, float* out);

 private:
  std::string method_;
  FrontEndConfig config_;
  std::unique_ptr<FrameGains> gains_;
  std::unique_ptr<FrontEnd> front_end_;
  std::unique_ptr<StreamingAnalyzer> analyzer_;
  std::unique_ptr<StreamingSynthesizer> synthesizer_;
  std::vector<std::complex<float>> frame_;    // current analysis frame
  std::vector<std::complex<float>> delayed_;  // ring of lookahead + 1 frames
  std::vector<float> gain_;
  int64_t frames_in_ = 0;
};

// The method options live mode uses at `sample_rate_hz` (the rate the engine will run at for
// classical methods): gating with hops of about 5 ms and windows of four hops (about 20 ms, so
// latency stays within 30 ms), past frames only, no padding.
MethodOptions live_method_options(MethodOptions options, int sample_rate_hz);

// An engine for `method` ("unet", "gate", "gate-nonstationary"): the U-Net at its model's rate
// (load_model_methods() first), the classical methods at `sample_rate_hz` with
// live_method_options(). Throws denoise::Error for a method that cannot stream (e.g. a
// non-causal model).
std::unique_ptr<StreamEngine> make_stream_engine(const std::string& method,
                                                 const MethodOptions& options,
                                                 int sample_rate_hz);

}  // namespace denoise
