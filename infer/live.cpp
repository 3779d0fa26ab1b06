#include "live.h"

#include <fcntl.h>
#include <poll.h>
#include <portaudio.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/limiter.h"
#include "denoise/resample.h"
#include "denoise/stream.h"
#include "denoise/stream_chain.h"

namespace denoise::live {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- errors

// A failure with its exit status; run_live() prints it as one line.
struct Failure {
  int status;
  std::string message;
};

std::string pa_error(PaError e) { return Pa_GetErrorText(e); }

// Where our messages go. PortAudio's ALSA and JACK back ends write diagnostics of their own to
// stderr, when they probe devices (ALSA's "Unknown PCM cards.pcm.rear", JACK's "cannot connect to
// server") and while streaming (ALSA's "underrun occurred", PortAudio's "Expression ... failed"),
// which would bury our one-line messages. While live mode runs, file descriptor 2 points at
// /dev/null and our own messages go to a copy of the real stderr. DENOISE_AUDIO_DEBUG=1 keeps the
// libraries' messages.
FILE* g_err = stderr;

class LibraryOutputGate {
 public:
  LibraryOutputGate() {
    const char* debug = std::getenv("DENOISE_AUDIO_DEBUG");
    if (debug && *debug && std::string(debug) != "0") return;
    std::fflush(stderr);
    const int saved = dup(STDERR_FILENO);
    const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || null_fd < 0) {
      if (saved >= 0) close(saved);
      if (null_fd >= 0) close(null_fd);
      return;
    }
    FILE* out = fdopen(saved, "w");
    if (!out) {
      close(saved);
      close(null_fd);
      return;
    }
    setvbuf(out, nullptr, _IONBF, 0);  // unbuffered, like stderr
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
    saved_ = saved;
    g_err = out;
  }
  ~LibraryOutputGate() {
    if (g_err == stderr) return;
    std::fflush(g_err);
    dup2(saved_, STDERR_FILENO);
    std::fclose(g_err);
    g_err = stderr;
  }
  LibraryOutputGate(const LibraryOutputGate&) = delete;
  LibraryOutputGate& operator=(const LibraryOutputGate&) = delete;

 private:
  int saved_ = -1;
};

// Pa_Initialize / Pa_Terminate.
class PortAudioSession {
 public:
  PortAudioSession() {
    // A denoiser has no business starting a JACK server; JACK is used when one runs.
    setenv("JACK_NO_START_SERVER", "1", 0);
    const PaError e = Pa_Initialize();
    if (e != paNoError) throw Failure{kExitRuntime, "cannot start PortAudio: " + pa_error(e)};
  }
  ~PortAudioSession() {
    if (!abandoned_) Pa_Terminate();
  }
  // After a hung stream (see run()): PortAudio is left as it is, never terminated.
  void abandon() { abandoned_ = true; }
  PortAudioSession(const PortAudioSession&) = delete;
  PortAudioSession& operator=(const PortAudioSession&) = delete;

 private:
  bool abandoned_ = false;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string host_api_name(const PaDeviceInfo* info) {
  const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
  return api ? api->name : "?";
}

std::string describe_device(PaDeviceIndex index) {
  const PaDeviceInfo* info = Pa_GetDeviceInfo(index);
  return std::to_string(index) + " \"" + (info ? info->name : "?") + "\" (" +
         (info ? host_api_name(info) : "?") + ")";
}

// A device by index or by case-insensitive (part of the) name; "" is PortAudio's default.
PaDeviceIndex find_device(const std::string& spec, bool input) {
  const char* what = input ? "input" : "output";
  const int count = Pa_GetDeviceCount();
  if (count < 0) throw Failure{kExitRuntime, "cannot list audio devices: " + pa_error(count)};
  auto channels = [&](PaDeviceIndex i) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
    return info ? (input ? info->maxInputChannels : info->maxOutputChannels) : 0;
  };
  if (spec.empty()) {
    const PaDeviceIndex d = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
    if (d == paNoDevice || channels(d) < 1)
      throw Failure{kExitRuntime, std::string("no default ") + what + " device (" +
                                      std::to_string(count) +
                                      " devices found; see infer --list-devices)"};
    return d;
  }
  const bool numeric =
      std::all_of(spec.begin(), spec.end(), [](unsigned char c) { return std::isdigit(c); });
  if (numeric) {
    const long index = std::strtol(spec.c_str(), nullptr, 10);
    if (spec.size() > 6 || index >= count)
      throw Failure{kExitRuntime, std::string(what) + " device " + spec + " not found (" +
                                      std::to_string(count) +
                                      " devices; see infer --list-devices)"};
    const auto d = static_cast<PaDeviceIndex>(index);
    if (channels(d) < 1)
      throw Failure{kExitRuntime, std::string(what) + " device " + describe_device(d) + " has no " +
                                      what + " channels"};
    return d;
  }
  // An exact name first (case-insensitive), then the first name containing `spec`.
  const std::string want = lower(spec);
  PaDeviceIndex partial = paNoDevice;
  for (PaDeviceIndex i = 0; i < count; ++i) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
    if (!info || channels(i) < 1) continue;
    const std::string name = lower(info->name);
    if (name == want) return i;
    if (partial == paNoDevice && name.find(want) != std::string::npos) partial = i;
  }
  if (partial == paNoDevice)
    throw Failure{kExitRuntime, std::string(what) + " device '" + spec + "' not found (no " + what +
                                    " device has it in its name; see infer --list-devices)"};
  return partial;
}

// ---------------------------------------------------------------- recordings

// A WAV file written as the audio arrives. Deliberately not the project's temporary-file-and-
// rename scheme (audio_io.h): a recording must survive a crash, a kill -9 or a vanished device, so
// it is written under its final name and libsndfile rewrites the header after every write
// (SFC_SET_UPDATE_HEADER_AUTO); the file is a valid WAV with all audio up to the last write.
// Written as RF64 with auto-downgrade: a plain WAV (with a JUNK chunk in reserve) until it passes
// 4 GiB (6 h of 48 kHz float), RF64 after that, instead of failing there.
class Recorder {
 public:
  Recorder(const std::string& path, int sample_rate_hz, const std::string& bits) : path_(path) {
    SF_INFO info{};
    info.samplerate = sample_rate_hz;
    info.channels = 1;
    const int subtype = bits.empty() ? SF_FORMAT_FLOAT : sndfile_subtype(bits, SF_FORMAT_RF64);
    info.format = SF_FORMAT_RF64 | subtype;
    file_ = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!file_)
      throw Failure{kExitRuntime,
                    path + ": cannot create recording (" + sf_strerror(nullptr) + ")"};
    sf_command(file_, SFC_RF64_AUTO_DOWNGRADE, nullptr, SF_TRUE);
    sf_command(file_, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
    if (subtype != SF_FORMAT_FLOAT && subtype != SF_FORMAT_DOUBLE)
      sf_command(file_, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  }
  ~Recorder() {
    if (file_) sf_close(file_);
  }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Worker thread only. Throws denoise::Error on a short write (disk full, file gone).
  void write(const float* samples, size_t n) {
    if (n == 0) return;
    const sf_count_t done = sf_write_float(file_, samples, static_cast<sf_count_t>(n));
    if (done != static_cast<sf_count_t>(n))
      throw Error(path_ + ": recording failed (" + sf_strerror(file_) + ")");
    frames_ += static_cast<int64_t>(n);
  }
  // Returns "" or the reason closing failed.
  std::string close() {
    if (!file_) return "";
    const int e = sf_close(file_);
    file_ = nullptr;
    return e == 0 ? "" : path_ + ": cannot finish recording (" + sf_error_number(e) + ")";
  }
  const std::string& path() const { return path_; }
  int64_t frames() const { return frames_; }

 private:
  std::string path_;
  SNDFILE* file_ = nullptr;
  int64_t frames_ = 0;
};

// Checks recording paths before anything is opened: nothing is created when one is wrong.
void check_record_paths(const LiveOptions& o) {
  std::error_code ec;
  auto same = [&](const std::string& a, const std::string& b) {
    return !a.empty() && !b.empty() && fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
  };
  for (const std::string* p : {&o.record_path, &o.record_raw_path}) {
    if (p->empty()) continue;
    const fs::path path(*p);
    if (lower(path.extension().string()) != ".wav")
      throw Failure{kExitUsage, *p + ": recordings are written as WAV; give a .wav file name"};
    if (fs::is_directory(path, ec))
      throw Failure{kExitUsage, *p + ": is a folder; give a .wav file name"};
    if (same(*p, o.method_options.model_path))
      throw Failure{kExitUsage, *p + ": is the model file (an input); refusing to record over it"};
    const fs::path parent = path.parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw Failure{kExitRuntime, *p + ": folder " + parent.string() + " does not exist"};
  }
  if (same(o.record_path, o.record_raw_path))
    throw Failure{kExitUsage,
                  o.record_path + ": --record and --record-raw name the same file; give two names"};
}

// ---------------------------------------------------------------- the worker's chain

// Device-rate samples in, device-rate samples out: the library's StreamChain (resampling to the
// engine's rate and back, the engine hop by hop), then gain and a peak limiter (only when
// --gain-db is set, as the limiter adds its 5 ms look-ahead).
class Chain {
 public:
  Chain(std::unique_ptr<StreamEngine> engine, int device_rate_hz, double gain_db)
      : chain_(std::move(engine), device_rate_hz),
        device_rate_hz_(device_rate_hz),
        gain_(static_cast<float>(std::pow(10.0, gain_db / 20.0))),
        use_limiter_(gain_db != 0) {
    start();
  }

  void set_engine(std::unique_ptr<StreamEngine> engine) {
    chain_.set_engine(std::move(engine));
    start();
  }
  void reset() {
    chain_.reset();
    start();
  }
  StreamEngine& engine() { return chain_.engine(); }
  StreamChain& chain() { return chain_; }
  // Device samples taken in but not yet given out (the hop being filled, resampler and limiter
  // delay lines): buffering latency inside the worker.
  int64_t in_flight() const {
    return chain_.in_flight() + (limiter_ ? limiter_->latency_frames() : 0);
  }
  double limiter_latency_ms() const {
    return limiter_ ? 1000.0 * limiter_->latency_frames() / device_rate_hz_ : 0.0;
  }

  // Appends the output for `n` device-rate samples to `out`; per-hop compute times go to `stats`.
  void process(const float* in, size_t n, std::vector<float>& out, ComputeStats& stats) {
    staged_.clear();
    chain_.process(in, n, staged_, &stats);
    if (gain_ != 1.f)
      for (auto& v : staged_) v *= gain_;
    if (limiter_) {
      limited_.clear();
      limiter_->process(staged_.data(), static_cast<int64_t>(staged_.size()), limited_);
      out.insert(out.end(), limited_.begin(), limited_.end());
    } else {
      out.insert(out.end(), staged_.begin(), staged_.end());
    }
  }

 private:
  void start() {
    if (use_limiter_) limiter_ = std::make_unique<PeakLimiter>(1, device_rate_hz_);
    const size_t room =
        16 * (static_cast<size_t>(chain_.engine().hop()) + 4096) *
        static_cast<size_t>(std::max(1, device_rate_hz_ / chain_.engine().sample_rate_hz() + 1));
    staged_.reserve(room);
    limited_.reserve(room);
  }
  StreamChain chain_;
  int device_rate_hz_;
  float gain_;
  bool use_limiter_;
  std::unique_ptr<PeakLimiter> limiter_;
  std::vector<float> staged_, limited_;
};

// ---------------------------------------------------------------- state shared by the threads

struct Shared {
  explicit Shared(size_t ring_capacity) : in_ring(ring_capacity), out_ring(ring_capacity) {}
  SpscRing in_ring;   // callback -> worker, mono at the device rate
  SpscRing out_ring;  // worker -> callback
  int in_channels = 1, out_channels = 0;

  // Owned by the callback: the output waits until the ring holds prime_fixed + the largest
  // callback seen (a jitter buffer); after an underflow it waits again, so latency does not creep.
  bool primed = false;
  size_t max_frames = 0;
  size_t prime_fixed = 0;
  size_t trim_slack = 0;  // more than target + this in the ring: drop back to the target

  // Counters: written by the callback, read by the others.
  std::atomic<uint64_t> callbacks{0};
  std::atomic<uint64_t> overflows{0};        // callbacks whose input did not fit in the ring
  std::atomic<uint64_t> dropped{0};          // input samples dropped on overflow
  std::atomic<uint64_t> underflows{0};       // callbacks that played silence for want of output
  std::atomic<uint64_t> trimmed{0};          // output samples skipped to bring latency back
  std::atomic<uint64_t> device_xruns{0};     // PortAudio's own over/underflow flags
  std::atomic<uint64_t> input_gaps{0};       // callbacks without input (paInputUnderflow)
  std::atomic<uint64_t> input_callbacks{0};  // callbacks with input

  // Published by the worker for the main thread.
  std::atomic<bool> stop{false};           // main -> worker
  std::atomic<bool> worker_done{false};    // --seconds reached
  std::atomic<bool> worker_failed{false};  // worker_error is set
  std::string worker_error;
  std::atomic<float> level_dbfs{-120.f};
  std::atomic<float> window_mean_ms{0.f}, window_p99_ms{0.f};
  std::atomic<float> engine_latency_ms{0.f}, hop_ms{0.f};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> processed{0};        // device samples taken by the worker
  std::atomic<bool> fallback_ready{false};  // fallback_message is set
  std::string fallback_message;
};

void mix_to_mono(const float* in, int channels, float* out, size_t frames) {
  if (!in) {
    std::fill(out, out + frames, 0.f);
    return;
  }
  if (channels == 1) {
    std::copy(in, in + frames, out);
    return;
  }
  const float scale = 1.f / static_cast<float>(channels);
  for (size_t i = 0; i < frames; ++i) {
    float sum = 0.f;
    for (int c = 0; c < channels; ++c) sum += in[i * channels + c];
    out[i] = sum * scale;
  }
}

// The real-time callback: moves samples through the rings, counts, nothing else.
int audio_callback(const void* input, void* output, unsigned long frames,
                   const PaStreamCallbackTimeInfo* /*time*/, PaStreamCallbackFlags flags,
                   void* user) {
  Shared& s = *static_cast<Shared*>(user);
  constexpr auto relaxed = std::memory_order_relaxed;
  s.callbacks.fetch_add(1, relaxed);
  if (flags & (paInputOverflow | paOutputUnderflow | paOutputOverflow))
    s.device_xruns.fetch_add(1, relaxed);

  // With paInputUnderflow PortAudio passes zeros in place of input it does not have (a full-duplex
  // stream does so at start-up while the capture side fills): not audio, so not recorded or
  // denoised. The output side still runs.
  const size_t n = frames;
  const size_t n_in = (flags & paInputUnderflow) ? 0 : n;
  if (flags & paInputUnderflow)
    s.input_gaps.fetch_add(1, relaxed);
  else
    s.input_callbacks.fetch_add(1, relaxed);
  const size_t fits = std::min(n_in, s.in_ring.write_available());
  if (fits < n_in) {
    s.overflows.fetch_add(1, relaxed);
    s.dropped.fetch_add(n_in - fits, relaxed);
  }
  const SpscRing::Regions w = s.in_ring.write_regions(fits);
  const float* in = static_cast<const float*>(input);
  mix_to_mono(in, s.in_channels, w.first, w.first_size);
  mix_to_mono(in ? in + w.first_size * s.in_channels : nullptr, s.in_channels, w.second,
              w.second_size);
  s.in_ring.commit_write(fits);

  if (!output) return paContinue;
  float* out = static_cast<float*>(output);
  const int och = s.out_channels;
  s.max_frames = std::max(s.max_frames, n);
  const size_t target = s.prime_fixed + s.max_frames;
  size_t available = s.out_ring.read_available();
  if (!s.primed && available >= target) s.primed = true;
  size_t played = 0;
  if (s.primed) {
    if (available > target + s.trim_slack) {
      s.trimmed.fetch_add(s.out_ring.skip(available - target), relaxed);
      available = target;
    }
    played = std::min(n, available);
    const SpscRing::Regions r = s.out_ring.read_regions(played);
    for (size_t i = 0; i < played; ++i) {
      const float v =
          std::clamp(i < r.first_size ? r.first[i] : r.second[i - r.first_size], -1.f, 1.f);
      for (int c = 0; c < och; ++c) out[i * och + c] = v;
    }
    s.out_ring.commit_read(played);
    if (played < n) {
      s.underflows.fetch_add(1, relaxed);
      s.primed = false;
    }
  }
  std::fill(out + played * och, out + n * och, 0.f);
  return paContinue;
}

// ---------------------------------------------------------------- worker

struct WorkerSetup {
  Shared* shared;
  Chain* chain;
  Recorder* record;
  Recorder* record_raw;
  ComputeStats* stats;
  const LiveOptions* options;
  int device_rate_hz;
  bool playback;
};

void worker_main(WorkerSetup w) {
  Shared& s = *w.shared;
  Chain& chain = *w.chain;
  ComputeStats& stats = *w.stats;
  const int rate = w.device_rate_hz;
  const int64_t limit =
      w.options->seconds > 0 ? static_cast<int64_t>(std::llround(w.options->seconds * rate)) : -1;
  // Chunks of at most 10 ms: the fall-back check below runs between chunks.
  std::vector<float> in(static_cast<size_t>(std::clamp(rate / 100, 64, 4096))), out;
  out.reserve(1 << 16);
  int64_t processed = 0;
  double level_sum = 0;
  int64_t level_count = 0, since_publish = 0;
  const int64_t publish_every = std::max(1, rate / 4);
  uint64_t overflows_seen = 0;
  auto publish_engine = [&] {
    StreamEngine& e = chain.engine();
    s.engine_latency_ms.store(static_cast<float>(e.latency_ms() + chain.limiter_latency_ms()));
    s.hop_ms.store(static_cast<float>(1000.0 * e.hop() / e.sample_rate_hz()));
  };
  publish_engine();
  try {
    while (!s.stop.load(std::memory_order_acquire)) {
      size_t n = std::min(s.in_ring.read_available(), in.size());
      if (limit >= 0) n = std::min<size_t>(n, static_cast<size_t>(limit - processed));
      if (n == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      s.in_ring.read(in.data(), n);
      if (w.record_raw) w.record_raw->write(in.data(), n);
      for (size_t i = 0; i < n; ++i) level_sum += static_cast<double>(in[i]) * in[i];
      level_count += static_cast<int64_t>(n);

      out.clear();
      chain.process(in.data(), n, out, stats);
      if (w.playback) s.out_ring.write(out.data(), out.size());  // full only if playback stalls
      if (w.record) w.record->write(out.data(), out.size());
      processed += static_cast<int64_t>(n);
      s.processed.store(processed, std::memory_order_relaxed);
      s.in_flight.store(chain.in_flight(), std::memory_order_relaxed);

      since_publish += static_cast<int64_t>(n);
      if (since_publish >= publish_every) {
        since_publish = 0;
        const double ms = level_count ? level_sum / level_count : 0.0;
        s.level_dbfs.store(static_cast<float>(std::max(-120.0, 10.0 * std::log10(ms + 1e-12))));
        level_sum = 0;
        level_count = 0;
        s.window_mean_ms.store(static_cast<float>(stats.window_mean_ms()));
        s.window_p99_ms.store(static_cast<float>(stats.window_p99_ms()));
      }

      // Falling behind: rather than crackle, hand over to the cheapest method (once; the rule is
      // the library's, shared with the plugin).
      const uint64_t overflows = s.overflows.load(std::memory_order_relaxed);
      if (!s.fallback_ready.load()) {
        const std::string why = fallback_reason(
            chain.engine(), stats, static_cast<double>(s.in_ring.read_available()) / rate,
            overflows > overflows_seen ? "the input overflowed" : nullptr);
        if (!why.empty()) {
          const std::string method = chain.engine().method();  // set_engine() ends the old one
          chain.set_engine(make_stream_engine(kFallbackMethod, w.options->method_options, rate));
          stats.reset_window();
          publish_engine();
          s.fallback_message =
              method + " cannot keep up (" + why + "); switched to " + kFallbackMethod;
          s.fallback_ready.store(true, std::memory_order_release);
        }
      }
      overflows_seen = overflows;
      if (limit >= 0 && processed >= limit) {
        s.worker_done.store(true, std::memory_order_release);
        break;
      }
    }
  } catch (const std::exception& e) {
    s.worker_error = e.what();
    s.worker_failed.store(true, std::memory_order_release);
  }
}

// ---------------------------------------------------------------- stop requests

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }

// SIGINT/SIGTERM set a flag (a second one kills, SA_RESETHAND); restored on destruction.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;  // no SA_RESTART: poll() returns at once
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Enter (any line, "q" included) on stdin. End of input is not a request: a run with stdin
// closed or from /dev/null goes on. A background job never reads the terminal (SIGTTIN).
class StdinWatch {
 public:
  // Waits up to `timeout_ms`; true when a line arrived.
  bool line_arrived(int timeout_ms) {
    if (!open_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      return false;
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return false;
    if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) != getpgrp()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      return false;
    }
    char buffer[256];
    const ssize_t got = read(STDIN_FILENO, buffer, sizeof buffer);
    if (got <= 0) {
      open_ = false;
      return false;
    }
    return std::find(buffer, buffer + got, '\n') != buffer + got;
  }

 private:
  bool open_ = true;
};

std::string format_ms(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, ms < 10 ? "%.2f" : "%.1f", ms);
  return b;
}

// ---------------------------------------------------------------- the live run

// The devices and stream parameters, resolved from the options.
struct DeviceSetup {
  PaDeviceIndex in_dev = paNoDevice, out_dev = paNoDevice;
  PaStreamParameters in{}, out{};
  int rate_hz = 0;
};

DeviceSetup resolve_devices(const LiveOptions& o) {
  DeviceSetup d;
  d.in_dev = find_device(o.input_device, true);
  const PaDeviceInfo* in_info = Pa_GetDeviceInfo(d.in_dev);
  d.rate_hz = o.device_rate_hz > 0 ? o.device_rate_hz
                                   : static_cast<int>(std::lround(in_info->defaultSampleRate));
  if (d.rate_hz < kMinSampleRateHz || d.rate_hz > kMaxSampleRateHz)
    throw Failure{kExitRuntime, "input device " + describe_device(d.in_dev) + " runs at " +
                                    std::to_string(d.rate_hz) + " Hz; give --rate between " +
                                    std::to_string(kMinSampleRateHz) + " and " +
                                    std::to_string(kMaxSampleRateHz)};
  // At most two channels in (mixed to mono), two out (the mono output on both). The device's low
  // latency, but at least 10 ms: shorter buffers buy little and turn a busy moment into an xrun.
  d.in.device = d.in_dev;
  d.in.channelCount = std::min(in_info->maxInputChannels, 2);
  d.in.sampleFormat = paFloat32;
  d.in.suggestedLatency = std::max(in_info->defaultLowInputLatency, 0.020);
  if (o.playback) {
    d.out_dev = find_device(o.output_device, false);
    const PaDeviceInfo* out_info = Pa_GetDeviceInfo(d.out_dev);
    d.out.device = d.out_dev;
    d.out.channelCount = std::min(out_info->maxOutputChannels, 2);
    d.out.sampleFormat = paFloat32;
    d.out.suggestedLatency = std::max(out_info->defaultLowOutputLatency, 0.020);
  }
  return d;
}

PaStream* open_stream(const LiveOptions& o, DeviceSetup& d, Shared* shared) {
  PaStream* stream = nullptr;
  const PaError e = Pa_OpenStream(&stream, &d.in, o.playback ? &d.out : nullptr, d.rate_hz,
                                  paFramesPerBufferUnspecified, paNoFlag, audio_callback, shared);
  if (e != paNoError) {
    std::string what = "cannot open input device " + describe_device(d.in_dev);
    if (o.playback) what += " with output device " + describe_device(d.out_dev);
    throw Failure{kExitRuntime,
                  what + " at " + std::to_string(d.rate_hz) + " Hz: " + pa_error(e) +
                      (e == paInvalidSampleRate ? " (give --rate with a rate it supports)" : "")};
  }
  return stream;
}

// Closes the stream (stopping it if it runs) however run() leaves; nothing once abandoned.
struct StreamCloser {
  PaStream* stream;
  ~StreamCloser() {
    if (!stream) return;
    if (Pa_IsStreamStopped(stream) == 0) Pa_AbortStream(stream);
    Pa_CloseStream(stream);
  }
};

// Runs `fn` on a thread of its own; true when it returned within `timeout`. A call that hangs is
// left behind on its detached thread.
bool finishes_within(std::function<void()> fn, std::chrono::milliseconds timeout) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([fn = std::move(fn), done] {
    fn();
    done->set_value();
  }).detach();
  return finished.wait_for(timeout) == std::future_status::ready;
}

// Opens and starts the stream, and waits for its first input. PortAudio 19.6's ALSA back end can
// end a full-duplex stream in its first milliseconds (ContinuePoll: snd_pcm_delay() of the
// playback side fails while it starts; seen with the ALSA pulse plugin, which desktops route
// "default" through, on a loaded machine): such a stream is closed and opened again, twice at
// most. A device that delivers nothing for 3 s has gone. Returns nullptr when closing a failed
// stream hung (the caller abandons PortAudio).
PaStream* start_stream(const LiveOptions& o, DeviceSetup& d, Shared& s, StreamCloser& closer) {
  for (int attempt = 1;; ++attempt) {
    PaStream* stream = open_stream(o, d, &s);
    closer.stream = stream;
    s.primed = false;  // the callback's own state; no callback runs now
    s.max_frames = 0;
    const uint64_t inputs_before = s.input_callbacks.load();
    const PaError e = Pa_StartStream(stream);
    if (e != paNoError)
      throw Failure{kExitRuntime, "cannot start audio on input device " +
                                      describe_device(d.in_dev) + ": " + pa_error(e)};
    const auto started = Clock::now();
    PaError active = 1;
    while (s.input_callbacks.load() == inputs_before && !g_signal) {
      active = Pa_IsStreamActive(stream);
      if (active != 1) break;
      if (Clock::now() - started > std::chrono::seconds(3))
        throw Failure{kExitRuntime, "input device " + describe_device(d.in_dev) +
                                        " delivered nothing for 3 s after starting"};
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (active == 1) return stream;
    const std::string why = active < 0 ? pa_error(active) : "ended by the audio back end";
    if (attempt == 3)
      throw Failure{kExitRuntime, "audio on input device " + describe_device(d.in_dev) +
                                      " stopped as it started, 3 times (" + why + ")"};
    closer.stream = nullptr;
    if (!finishes_within([stream] { Pa_CloseStream(stream); }, std::chrono::milliseconds(2000)))
      return nullptr;
    if (!o.quiet)
      std::fprintf(g_err, "infer: note: the audio stream stopped as it started (%s); retrying\n",
                   why.c_str());
  }
}

// Waits for a stop request (Enter, q, a signal, --seconds) or a failure while drawing the status
// line. Returns "" after a stop request, else the error. A stream that PortAudio stopped on its
// own (a device error: unplugged, sound server gone) or that delivers nothing for a second means
// the device has gone. It is not restarted: after such an error PortAudio 19.6's ALSA back end can
// deadlock in Pa_StartStream (seen with the ALSA pulse plugin).
std::string supervise(const LiveOptions& o, const DeviceSetup& d, PaStream* stream, Shared& s,
                      double host_latency_ms) {
  const bool tty = isatty(fileno(g_err)) != 0;
  const auto started = Clock::now();
  auto last_progress = started, last_status = started;
  uint64_t last_callbacks = 0;
  StdinWatch stdin_watch;
  bool status_drawn = false;
  auto message = [&](const char* kind, const std::string& text) {
    if (status_drawn) std::fputc('\n', g_err);
    status_drawn = false;
    std::fprintf(g_err, "infer: %s: %s\n", kind, text.c_str());
  };
  struct EndStatusLine {
    bool& drawn;
    ~EndStatusLine() {
      if (drawn) std::fputc('\n', g_err);
    }
  } end_status_line{status_drawn};

  for (;;) {
    const bool line = stdin_watch.line_arrived(50);
    const auto now = Clock::now();
    if (line || g_signal || s.worker_done.load(std::memory_order_acquire)) return "";
    if (s.worker_failed.load(std::memory_order_acquire)) return s.worker_error;

    const uint64_t callbacks = s.callbacks.load(std::memory_order_relaxed);
    if (callbacks != last_callbacks) {
      last_callbacks = callbacks;
      last_progress = now;
    }
    const PaError active = Pa_IsStreamActive(stream);
    if (active != 1)
      return "audio stopped: the stream on input device " + describe_device(d.in_dev) +
             (active < 0 ? " failed (" + pa_error(active) + ")"
                         : " ended on a device error (disconnected?)");
    if (now - last_progress > std::chrono::seconds(1))
      return "audio stopped: input device " + describe_device(d.in_dev) +
             " delivered nothing for 1 s (disconnected?)";
    if (s.fallback_ready.load(std::memory_order_acquire) && !s.fallback_message.empty()) {
      message("warning", s.fallback_message);
      s.fallback_message.clear();
    }

    if (o.quiet) continue;
    if (now - last_status < std::chrono::milliseconds(tty ? 250 : 5000)) continue;
    last_status = now;
    const double buffered = static_cast<double>(s.in_ring.read_available()) +
                            static_cast<double>(s.in_flight.load()) +
                            (o.playback ? static_cast<double>(s.out_ring.read_available()) : 0.0);
    const double latency_ms =
        s.engine_latency_ms.load() + host_latency_ms + 1000.0 * buffered / d.rate_hz;
    char text[256];
    std::snprintf(text, sizeof text,
                  "in %6.1f dBFS | latency %5.1f ms | compute %s ms mean, %s ms p99 per %s ms "
                  "hop | overflows %llu, underflows %llu",
                  s.level_dbfs.load(), latency_ms, format_ms(s.window_mean_ms.load()).c_str(),
                  format_ms(s.window_p99_ms.load()).c_str(), format_ms(s.hop_ms.load()).c_str(),
                  static_cast<unsigned long long>(s.overflows.load()),
                  static_cast<unsigned long long>(s.underflows.load()));
    if (tty) {
      std::fprintf(g_err, "\r%s\x1b[K", text);
      status_drawn = true;
    } else {
      std::fprintf(g_err, "infer: live: %s\n", text);
    }
  }
}

int run(const LiveOptions& o) {
  check_record_paths(o);
  PortAudioSession pa;
  DeviceSetup d = resolve_devices(o);
  const int rate = d.rate_hz;

  // The engine (and its model) before the devices open.
  std::unique_ptr<StreamEngine> engine = make_stream_engine(o.method, o.method_options, rate);
  const int engine_rate = engine->sample_rate_hz();
  const double hop_ms = 1000.0 * engine->hop() / engine_rate;
  const double hop_device = hop_ms * rate / 1000.0;
  std::string engine_line =
      "method " + engine->method() + " at " + std::to_string(engine_rate) + " Hz";
  if (engine->method() != "unet")
    engine_line +=
        ", n_fft " + std::to_string(live_method_options(o.method_options, engine_rate).gate.n_fft);
  engine_line += ", hop " + std::to_string(engine->hop()) + " (" + format_ms(hop_ms) + " ms)";
  if (engine_rate != rate)
    engine_line += ", resampled from " + std::to_string(rate) + " Hz and back";
  // Recordings: the denoised one lags the raw one by the engine's delay, at the device rate.
  const long record_delay =
      std::lround(engine->delay_samples() * static_cast<double>(rate) / engine_rate);
  engine_line += "; recording delay " + std::to_string(record_delay) + " samples";
  Chain chain(std::move(engine), rate, o.gain_db);

  // A dry run on a second of silence warms the engine up (the U-Net's first calls are slow) and
  // measures the worker's own buffering (hop filling, resampler and limiter delay lines).
  int64_t worker_buffering = 0;
  {
    ComputeStats warm(64);
    std::vector<float> chunk(static_cast<size_t>(std::max(1.0, std::round(hop_device))), 0.f);
    std::vector<float> sink;
    sink.reserve(1 << 16);
    for (int64_t done = 0; done < rate; done += static_cast<int64_t>(chunk.size())) {
      sink.clear();
      chain.process(chunk.data(), chunk.size(), sink, warm);
      worker_buffering = std::max(worker_buffering, chain.in_flight());
    }
    chain.reset();
  }

  // Rings of about half a second; the jitter buffer holds two hops beyond the largest callback.
  auto shared_owner = std::make_unique<Shared>(static_cast<size_t>(rate / 2));
  Shared* shared = shared_owner.get();
  shared->in_channels = d.in.channelCount;
  shared->out_channels = o.playback ? d.out.channelCount : 0;
  shared->prime_fixed = static_cast<size_t>(std::ceil(2 * hop_device));
  shared->trim_slack = static_cast<size_t>(rate / 10);  // 100 ms

  StopSignals signals;
  g_signal = 0;
  StreamCloser closer{nullptr};
  PaStream* stream = start_stream(o, d, *shared, closer);
  if (!stream) {
    pa.abandon();
    shared_owner.release();  // the hung callback thread may still touch it
    throw Failure{kExitRuntime, "audio on input device " + describe_device(d.in_dev) +
                                    " stopped as it started, and hung when closed"};
  }

  // Recordings are created only now that the devices are open.
  std::unique_ptr<Recorder> record, record_raw;
  if (!o.record_path.empty())
    record = std::make_unique<Recorder>(o.record_path, rate, o.record_bits);
  if (!o.record_raw_path.empty())
    record_raw = std::make_unique<Recorder>(o.record_raw_path, rate, o.record_bits);

  const PaStreamInfo* info = Pa_GetStreamInfo(stream);
  const double host_latency_ms =
      info ? 1000.0 * (info->inputLatency + (o.playback ? info->outputLatency : 0.0)) : 0.0;
  const double buffering_ms = host_latency_ms + 1000.0 * worker_buffering / rate +
                              (o.playback ? 1000.0 * shared->prime_fixed / rate : 0.0);
  if (!o.quiet) {
    const std::string out_text = o.playback ? "output " + describe_device(d.out_dev) + ", " +
                                                  std::to_string(d.out.channelCount) + " ch"
                                            : "no playback";
    std::fprintf(g_err, "infer: live: input %s, %d ch -> %s at %d Hz\n",
                 describe_device(d.in_dev).c_str(), d.in.channelCount, out_text.c_str(), rate);
    std::fprintf(g_err, "infer: live: %s\n", engine_line.c_str());
    std::fprintf(g_err,
                 "infer: live: latency: %.1f ms algorithmic (window + look-ahead), + %.1f ms "
                 "buffering\n",
                 chain.engine().latency_ms(), buffering_ms);
    if (isatty(STDIN_FILENO))
      std::fprintf(g_err, "infer: live: press Enter (or q, Enter) to stop\n");
  }

  ComputeStats stats(static_cast<size_t>(std::ceil(1000.0 / hop_ms)));
  std::thread worker(worker_main, WorkerSetup{shared, &chain, record.get(), record_raw.get(),
                                              &stats, &o, rate, o.playback});
  std::string error;
  try {
    error = supervise(o, d, stream, *shared, host_latency_ms);
  } catch (const std::exception& e) {
    error = e.what();
  }

  // Stop: the stream first (no more input), then the worker, then the files. When a device or
  // sound server dies, stopping can hang inside the audio libraries (libpulse 16 deadlocks in its
  // connection teardown, and PortAudio then waits for its callback thread forever): after 2 s the
  // stream is abandoned (never closed, its callback's state never freed) so that the recordings
  // are still finalised and infer exits.
  const bool abort = !error.empty();
  if (!finishes_within([stream, abort] { abort ? Pa_AbortStream(stream) : Pa_StopStream(stream); },
                       std::chrono::milliseconds(2000))) {
    closer.stream = nullptr;
    pa.abandon();
    shared_owner.release();  // the hung callback thread may still touch it
    if (error.empty()) error = "the audio device did not stop (hung); its stream was abandoned";
  }
  shared->stop.store(true, std::memory_order_release);
  worker.join();
  if (error.empty() && shared->worker_failed.load()) error = shared->worker_error;
  for (Recorder* r : {record.get(), record_raw.get()}) {
    if (!r) continue;
    const std::string e = r->close();
    if (error.empty()) error = e;
  }

  if (!o.quiet) {
    const double seconds = static_cast<double>(shared->processed.load()) / rate;
    std::printf(
        "live: %.2f s processed (%s at %d Hz), %llu overflows (%llu samples dropped), %llu "
        "underflows, %llu device xruns, %llu callbacks without input; compute per %s ms hop: "
        "%s ms mean, %s ms p99\n",
        seconds, chain.engine().method().c_str(), rate,
        static_cast<unsigned long long>(shared->overflows.load()),
        static_cast<unsigned long long>(shared->dropped.load()),
        static_cast<unsigned long long>(shared->underflows.load()),
        static_cast<unsigned long long>(shared->device_xruns.load()),
        static_cast<unsigned long long>(shared->input_gaps.load()),
        format_ms(shared->hop_ms.load()).c_str(), format_ms(stats.mean_ms()).c_str(),
        format_ms(stats.p99_ms()).c_str());
    if (const uint64_t trimmed = shared->trimmed.load())
      std::printf("live: playback skipped %.0f ms in all to keep its latency down\n",
                  1000.0 * static_cast<double>(trimmed) / rate);
    for (Recorder* r : {record.get(), record_raw.get()})
      if (r)
        std::printf("live: recorded %s (%.2f s)\n", r->path().c_str(),
                    static_cast<double>(r->frames()) / rate);
    std::fflush(stdout);
  }
  if (!error.empty()) throw Failure{kExitRuntime, error};
  return kExitOk;
}

}  // namespace

int run_live(const LiveOptions& options) {
  LibraryOutputGate gate;
  try {
    return run(options);
  } catch (const Failure& f) {
    std::fprintf(g_err, "infer: error: %s\n", f.message.c_str());
    return f.status;
  } catch (const std::exception& e) {
    std::fprintf(g_err, "infer: error: %s\n", e.what());
    return kExitRuntime;
  }
}

int list_devices() {
  LibraryOutputGate gate;
  try {
    PortAudioSession pa;
    const int count = Pa_GetDeviceCount();
    if (count < 0) throw Failure{kExitRuntime, "cannot list audio devices: " + pa_error(count)};
    if (count == 0) {
      std::printf("no audio devices found\n");
      return kExitOk;
    }
    const PaDeviceIndex default_in = Pa_GetDefaultInputDevice();
    const PaDeviceIndex default_out = Pa_GetDefaultOutputDevice();
    std::printf("%5s  %3s  %3s  %7s  %-8s  %s\n", "index", "in", "out", "rate Hz", "host API",
                "name");
    for (PaDeviceIndex i = 0; i < count; ++i) {
      const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
      if (!info) continue;
      std::string marks;
      if (i == default_in) marks += " [default input]";
      if (i == default_out) marks += " [default output]";
      std::printf("%5d  %3d  %3d  %7.0f  %-8s  %s%s\n", i, info->maxInputChannels,
                  info->maxOutputChannels, info->defaultSampleRate, host_api_name(info).c_str(),
                  info->name, marks.c_str());
    }
    return kExitOk;
  } catch (const Failure& f) {
    std::fprintf(g_err, "infer: error: %s\n", f.message.c_str());
    return f.status;
  }
}

}  // namespace denoise::live
