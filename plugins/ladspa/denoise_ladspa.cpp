// denoise_ladspa.so: the denoiser as a LADSPA plugin (label denoise_mono), for PipeWire's
// filter-chain, PulseAudio's module-ladspa-sink, Audacity, sox, applyplugin, OBS-style hosts.
//
// Ports: audio in, audio out (mono, at the host's rate: resampled inside to the model's rate and
// back, as infer --live does); controls Method (0: the trained model, 1: the causal gate),
// Attenuation limit (dB; 0 = bypass, 100 = no limit; as DeepFilterNet's --atten-lim), Output gain
// (dB); and the output control `latency` (samples), which hosts read to compensate the delay.
//
// Threads. run() is real-time safe: it copies the input into a lock-free ring, wakes the worker
// (sem_post) and waits for the output of those samples (sem_clockwait) at most as long as the
// block lasts; it never allocates, locks or touches a file. The worker (started in activate())
// runs the streams, which may allocate (LibTorch does). Output that is not ready by the deadline
// is the dry input (delayed by the same latency, so nothing jumps), the late output is dropped,
// and the model hands over to the gate as live mode does (fallback_reason in stream_chain.h):
// compute too slow over the last second, or a deadline passed. Both methods run
// at one latency (the larger; the other is delayed to it); switching crossfades over 10 ms.
//
// Deadlines missed in the first half second after activate() (the worker starting) are covered
// by the dry signal but do not count towards the fall-back. The worker takes the scheduling
// policy of the thread that calls run() (one priority step lower), once.
//
// The model (the default one, or $DENOISE_MODEL) is loaded in instantiate(); without one the
// plugin runs the gate and says so once on stderr.
#include <ladspa.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "denoise/denoiser.h"
#include "denoise/spsc_ring.h"
#include "denoise/stream.h"
#include "denoise/stream_chain.h"

namespace denoise::ladspa {
namespace {

enum Port : unsigned long {
  kInput = 0,
  kOutput,
  kMethod,
  kAttenuationLimit,
  kGain,
  kLatency,
  kPortCount
};

constexpr unsigned long kUniqueId = 7518;  // arbitrary, not from the LADSPA registry
constexpr double kNoLimitDb = 100.0;
constexpr size_t kChunk = 1024;  // the worker's most samples per pass

// A fixed delay of `delay` samples, allocated once.
class Delay {
 public:
  explicit Delay(size_t delay) : ring_(delay + 1, 0.f) {}
  float push(float x) {
    ring_[pos_] = x;
    pos_ = pos_ + 1 == ring_.size() ? 0 : pos_ + 1;
    return ring_[pos_];
  }
  void reset() { std::fill(ring_.begin(), ring_.end(), 0.f), pos_ = 0; }

 private:
  std::vector<float> ring_;
  size_t pos_ = 0;
};

class Plugin {
 public:
  explicit Plugin(unsigned long rate_hz) : rate_hz_(static_cast<int>(rate_hz)) {
    gate_ = std::make_unique<FixedLatencyStream>(make_stream_engine(kFallbackMethod, {}, rate_hz_),
                                                 rate_hz_);
    try {
      MethodOptions options;
      options.threads = 1;  // one frame at a time: more intra-op threads only cost
      prepare_model_method(options);
      model_ = std::make_unique<FixedLatencyStream>(make_stream_engine("unet", options, rate_hz_),
                                                    rate_hz_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "denoise_ladspa: %s; running the causal gate\n", e.what());
    }
    const int lg = gate_->latency_samples();
    const int lm = model_ ? model_->latency_samples() : lg;
    latency_ = std::max(lg, lm);
    gate_pad_ = std::make_unique<Delay>(static_cast<size_t>(latency_ - lg));
    model_pad_ = std::make_unique<Delay>(static_cast<size_t>(latency_ - lm));
    dry_ = std::make_unique<Delay>(static_cast<size_t>(latency_));
    fade_step_ = static_cast<float>(1.0 / (0.010 * rate_hz_));
    warmup_samples_ = static_cast<int64_t>(0.5 * rate_hz_);
    if (model_) {
      // The U-Net's first calls are slow (LibTorch warms up): not in the first deadlines.
      std::vector<float> silence(static_cast<size_t>(rate_hz_ / 2), 0.f);
      model_->process(silence.data(), silence.data(), silence.size());
      model_->reset();
    }
    gate_in_.resize(kChunk);
    model_out_.resize(kChunk);
    gate_out_.resize(kChunk);
    mixed_.resize(kChunk);
    stats_ = std::make_unique<ComputeStats>(100);
    sem_init(&work_, 0, 0);
    sem_init(&done_, 0, 0);
  }
  ~Plugin() {
    deactivate();
    sem_destroy(&work_);
    sem_destroy(&done_);
  }

  void connect(unsigned long port, LADSPA_Data* data) {
    if (port < kPortCount) ports_[port] = data;
  }

  void activate() {
    deactivate();
    in_ring_ = std::make_unique<SpscRing>(static_cast<size_t>(2 * rate_hz_));
    out_ring_ = std::make_unique<SpscRing>(static_cast<size_t>(2 * rate_hz_));
    gate_->reset();
    if (model_) model_->reset();
    gate_pad_->reset();
    model_pad_->reset();
    dry_->reset();
    while (sem_trywait(&work_) == 0) {
    }
    while (sem_trywait(&done_) == 0) {
    }
    written_ = taken_ = 0;
    misses_.store(0);
    misses_seen_ = 0;
    fallen_back_.store(false);
    first_ = true;
    scheduling_copied_ = false;
    processed_ = 0;
    stop_.store(false);
    worker_ = std::thread([this] { work(); });
  }

  void deactivate() {
    if (!worker_.joinable()) return;
    stop_.store(true);
    sem_post(&work_);
    worker_.join();
  }

  // The real-time side.
  void run(unsigned long count) {
    const size_t n = count;
    model_wanted_.store(ports_[kMethod] ? *ports_[kMethod] < 0.5f : true,
                        std::memory_order_relaxed);
    const float limit_db = ports_[kAttenuationLimit] ? *ports_[kAttenuationLimit] : 100.f;
    const float a = !(limit_db > 0.f)        ? 1.f
                    : limit_db >= kNoLimitDb ? 0.f
                                             : static_cast<float>(std::pow(10.0, -limit_db / 20.0));
    const float gain =
        ports_[kGain] ? static_cast<float>(std::pow(10.0, *ports_[kGain] / 20.0)) : 1.f;
    if (ports_[kLatency]) *ports_[kLatency] = static_cast<LADSPA_Data>(latency_);
    const float* in = ports_[kInput];
    float* out = ports_[kOutput];
    if (!in || !out || n == 0) return;

    if (!scheduling_copied_) {
      // The worker serves this thread: it gets the same scheduling (a real-time host's audio
      // thread runs SCHED_FIFO/RR; one step lower), once, at the first block.
      scheduling_copied_ = true;
      int policy = 0;
      sched_param param{};
      if (pthread_getschedparam(pthread_self(), &policy, &param) == 0 && policy != SCHED_OTHER) {
        param.sched_priority = std::max(sched_get_priority_min(policy), param.sched_priority - 1);
        pthread_setschedparam(worker_.native_handle(), policy, &param);
      }
    }
    const size_t fits = in_ring_->write(in, n);
    const uint64_t base = written_;
    written_ += fits;
    sem_post(&work_);

    // The worker gives one output per input: wait for those of this block, as long as it lasts.
    timespec deadline{};
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    const long ns = static_cast<long>(1e9 * static_cast<double>(n) / rate_hz_);
    deadline.tv_sec += ns / 1000000000L;
    deadline.tv_nsec += ns % 1000000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_nsec -= 1000000000L, ++deadline.tv_sec;
    while (taken_ + out_ring_->read_available() < written_) {
      if (sem_clockwait(&done_, CLOCK_MONOTONIC, &deadline) != 0 && errno == ETIMEDOUT) break;
    }
    // Output of samples whose deadline passed before comes late: dropped.
    if (taken_ < base) taken_ += out_ring_->skip(static_cast<size_t>(base - taken_));
    size_t ready = 0;
    if (taken_ >= base) ready = std::min<size_t>(out_ring_->read_available(), fits);
    const SpscRing::Regions r = out_ring_->read_regions(ready);
    for (size_t i = 0; i < n; ++i) {
      const float dry = dry_->push(in[i]);
      const float wet =
          i < ready ? (i < r.first_size ? r.first[i] : r.second[i - r.first_size]) : dry;
      out[i] = gain * ((1.f - a) * wet + a * dry);
    }
    out_ring_->commit_read(ready);
    taken_ += ready;
    if (ready < n) misses_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  // The worker: every input sample gives one output sample, in order.
  void work() {
    while (!stop_.load()) {
      sem_wait(&work_);
      for (;;) {
        const size_t m =
            std::min({in_ring_->read_available(), out_ring_->write_available(), kChunk});
        if (m == 0 || stop_.load()) break;
        in_ring_->read(gate_in_.data(), m);
        process(m);
        out_ring_->write(mixed_.data(), m);
        sem_post(&done_);
      }
    }
  }

  void process(size_t m) {
    const bool want_model = model_ && model_wanted_.load(std::memory_order_relaxed) &&
                            !fallen_back_.load(std::memory_order_relaxed);
    if (first_) {
      // A fresh stream: the chosen method from its first sample, no crossfade.
      first_ = false;
      model_running_ = want_model;
      model_fed_ = warmup_samples_;
      mix_ = want_model ? 1.f : 0.f;
    } else if (want_model && !model_running_) {
      model_->reset();
      model_pad_->reset();
      model_running_ = true;
      model_fed_ = 0;
    }
    gate_->process(gate_in_.data(), gate_out_.data(), m);
    for (size_t i = 0; i < m; ++i) gate_out_[i] = gate_pad_->push(gate_out_[i]);
    if (model_running_) {
      model_->process(gate_in_.data(), model_out_.data(), m, stats_.get());
      for (size_t i = 0; i < m; ++i) model_out_[i] = model_pad_->push(model_out_[i]);
      model_fed_ += static_cast<int64_t>(m);
    }
    // Towards the model once it has heard enough after a (re)start, else towards the gate.
    const float target = want_model && model_fed_ >= warmup_samples_ ? 1.f : 0.f;
    for (size_t i = 0; i < m; ++i) {
      mix_ =
          mix_ < target ? std::min(target, mix_ + fade_step_) : std::max(target, mix_ - fade_step_);
      mixed_[i] =
          model_running_ ? mix_ * model_out_[i] + (1.f - mix_) * gate_out_[i] : gate_out_[i];
    }
    if (!want_model && mix_ == 0.f) model_running_ = false;

    processed_ += static_cast<int64_t>(m);
    if (model_running_ && !fallen_back_.load()) {
      // Deadlines missed in the first half second (the worker's start, cold caches) are not
      // counted: the dry signal covers them, and the model goes on.
      const uint64_t misses = misses_.load(std::memory_order_relaxed);
      const bool lost = misses > misses_seen_ && processed_ >= rate_hz_ / 2;
      misses_seen_ = misses;
      // No backlog term: a host may hand over seconds in one block (sox does), which waits in
      // the ring without anything being late; lateness shows as missed deadlines.
      const std::string why = fallback_reason(model_->chain().engine(), *stats_, 0.0,
                                              lost ? "the host's deadline passed" : nullptr);
      if (!why.empty()) {
        fallen_back_.store(true);
        std::fprintf(stderr, "denoise_ladspa: warning: unet cannot keep up (%s); switched to %s\n",
                     why.c_str(), kFallbackMethod);
      }
    }
  }

  int rate_hz_;
  LADSPA_Data* ports_[kPortCount] = {};
  std::unique_ptr<FixedLatencyStream> gate_, model_;
  std::unique_ptr<Delay> gate_pad_, model_pad_, dry_;
  int latency_ = 0;
  std::unique_ptr<ComputeStats> stats_;
  std::unique_ptr<SpscRing> in_ring_, out_ring_;
  sem_t work_{}, done_{};
  std::thread worker_;
  std::atomic<bool> stop_{false}, model_wanted_{true}, fallen_back_{false};
  std::atomic<uint64_t> misses_{0};
  // run()'s own.
  uint64_t written_ = 0, taken_ = 0;
  bool scheduling_copied_ = false;
  // The worker's own.
  uint64_t misses_seen_ = 0;
  int64_t processed_ = 0;  // samples since activation
  bool model_running_ = false, first_ = true;
  int64_t model_fed_ = 0, warmup_samples_ = 0;
  float mix_ = 0.f, fade_step_ = 0.f;
  std::vector<float> gate_in_, gate_out_, model_out_, mixed_;
};

LADSPA_Handle instantiate(const LADSPA_Descriptor*, unsigned long rate_hz) {
  if (rate_hz < 8000 || rate_hz > 96000) {
    std::fprintf(stderr, "denoise_ladspa: host rate %lu Hz is outside 8000..96000 Hz\n", rate_hz);
    return nullptr;
  }
  try {
    return new Plugin(rate_hz);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "denoise_ladspa: %s\n", e.what());
    return nullptr;
  }
}
void connect_port(LADSPA_Handle h, unsigned long port, LADSPA_Data* data) {
  static_cast<Plugin*>(h)->connect(port, data);
}
void activate(LADSPA_Handle h) {
  try {
    static_cast<Plugin*>(h)->activate();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "denoise_ladspa: cannot activate: %s\n", e.what());
  }
}
void run(LADSPA_Handle h, unsigned long n) { static_cast<Plugin*>(h)->run(n); }
void deactivate(LADSPA_Handle h) { static_cast<Plugin*>(h)->deactivate(); }
void cleanup(LADSPA_Handle h) { delete static_cast<Plugin*>(h); }

const LADSPA_PortDescriptor kPortDescriptors[kPortCount] = {
    LADSPA_PORT_INPUT | LADSPA_PORT_AUDIO,   LADSPA_PORT_OUTPUT | LADSPA_PORT_AUDIO,
    LADSPA_PORT_INPUT | LADSPA_PORT_CONTROL, LADSPA_PORT_INPUT | LADSPA_PORT_CONTROL,
    LADSPA_PORT_INPUT | LADSPA_PORT_CONTROL, LADSPA_PORT_OUTPUT | LADSPA_PORT_CONTROL};
// Short names: PipeWire's filter-chain and other hosts' configurations address controls by them.
const char* const kPortNames[kPortCount] = {
    "Input",     "Output", "Method (0 = model, 1 = gate)", "Attenuation limit (dB)",
    "Gain (dB)", "latency"};
const LADSPA_PortRangeHint kPortHints[kPortCount] = {
    {0, 0, 0},
    {0, 0, 0},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE | LADSPA_HINT_INTEGER |
         LADSPA_HINT_DEFAULT_MINIMUM,
     0, 1},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE | LADSPA_HINT_DEFAULT_MAXIMUM, 0, 100},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE | LADSPA_HINT_DEFAULT_0, -24, 24},
    {0, 0, 0}};

const LADSPA_Descriptor kDescriptor = {
    kUniqueId,
    "denoise_mono",
    LADSPA_PROPERTY_HARD_RT_CAPABLE,
    "denoise: speech denoiser (trained U-Net or causal spectral gate), mono",
    "denoise project",
    "see the project's licence",
    kPortCount,
    kPortDescriptors,
    kPortNames,
    kPortHints,
    nullptr,
    instantiate,
    connect_port,
    activate,
    run,
    nullptr,
    nullptr,
    deactivate,
    cleanup};

}  // namespace
}  // namespace denoise::ladspa

extern "C" __attribute__((visibility("default"))) const LADSPA_Descriptor* ladspa_descriptor(
    unsigned long index) {
  return index == 0 ? &denoise::ladspa::kDescriptor : nullptr;
}
