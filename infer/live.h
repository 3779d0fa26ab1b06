// infer --live: denoise a microphone in real time (PortAudio).
//
//   PortAudio callback --(SPSC ring, mono)--> worker: resample to the engine rate, StreamEngine hop
//   by hop, resample back, gain/limiter, recordings --(SPSC ring)--> callback (playback)
//
// The callback only moves samples through the two rings (no allocation, locks, logging or
// exceptions); everything that can block or allocate runs in the worker or the main thread. The
// main thread waits for Enter / q / Ctrl-C / --seconds / a device failure and draws the status
// line.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "denoise/denoiser.h"

namespace denoise::live {

struct LiveOptions {
  std::string method;            // "unet", "gate" or "gate-nonstationary"
  MethodOptions method_options;  // live_method_options() is applied by make_stream_engine
  std::string input_device;      // index or case-insensitive part of the name; "": the default
  std::string output_device;     // likewise
  bool playback = true;          // false: input-only stream (--no-playback)
  int device_rate_hz = 0;        // 0: the input device's default rate
  double seconds = 0;            // > 0: stop after this many seconds of input
  double gain_db = 0;            // > 0 or < 0: gain, then a peak limiter (5 ms more latency)
  std::string record_path;       // denoised output, WAV at the device rate ("": none)
  std::string record_raw_path;   // raw input (mono mix), WAV at the device rate ("": none)
  std::string record_bits;       // "", "8", "16", "24", "32", "f32", "f64" ("": f32)
  bool quiet = false;            // errors only
};

// Exit statuses, as everywhere in infer.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// Prints every PortAudio device (index, name, host API, max input/output channels, default rate)
// on stdout. Returns the exit status; errors are printed as one line on stderr.
int list_devices();

// Runs live denoising until stopped. Returns the exit status (0: stopped by the user or
// --seconds; 1: a device or runtime error, after finalising the recordings; 2: a usage error such
// as a recording path that is an input). Errors are printed as one line on stderr.
int run_live(const LiveOptions& options);

// Lock-free single-producer / single-consumer ring of floats. One thread writes, one thread reads;
// neither allocates, locks or throws after construction, so either side may be an audio callback.
// Indices count samples since construction and wrap through the power-of-two mask.
class SpscRing {
 public:
  // Capacity: the smallest power of two >= min_capacity (allocated here, never again).
  explicit SpscRing(size_t min_capacity);
  size_t capacity() const { return buffer_.size(); }

  // Producer side.
  size_t write_available() const;
  // Two contiguous regions for `n` samples (n <= write_available()); fill them, then commit.
  struct Regions {
    float* first;
    size_t first_size;
    float* second;
    size_t second_size;
  };
  Regions write_regions(size_t n);
  void commit_write(size_t n);
  // Copies up to n samples in; returns how many fitted.
  size_t write(const float* data, size_t n);

  // Consumer side.
  size_t read_available() const;
  // Two contiguous regions holding the next `n` samples (n <= read_available()); read them, then
  // commit.
  Regions read_regions(size_t n);
  void commit_read(size_t n);
  // Copies up to n samples out; returns how many were read.
  size_t read(float* data, size_t n);
  // Drops up to n samples; returns how many were dropped.
  size_t skip(size_t n);

 private:
  // The two contiguous regions of `n` slots from position `index` (wrapping at the end).
  Regions regions_at(size_t index, size_t n);
  std::vector<float> buffer_;
  size_t mask_;
  alignas(64) std::atomic<size_t> write_index_{0};  // written by the producer only
  alignas(64) std::atomic<size_t> read_index_{0};   // written by the consumer only
};

}  // namespace denoise::live
