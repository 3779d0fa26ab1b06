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
#include "denoise/spsc_ring.h"

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

// The rings between the callback and the worker (the library's, shared with the LADSPA plugin).
using denoise::SpscRing;

}  // namespace denoise::live
