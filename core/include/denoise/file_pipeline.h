// The file flow: decode -> blocks with context -> Denoiser gains on the method's front end ->
// overlap-add -> optional resample -> gain and peak limiter -> encode to a temporary file ->
// rename. Memory is bounded by the block size whatever the file's length; block output equals
// whole-file output (tested).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "denoise/denoiser.h"

namespace denoise {

struct PipelineOptions {
  std::string method = "gate";
  MethodOptions method_options;
  std::string noise_clip_path;  // noise-only recording for the profile; empty: from the input
  double noise_seconds = -1;    // seconds at the start of the input; < 0: the method's default
  double gain_db = 0;           // amplification before the limiter
  int output_rate_hz = 0;       // 0: the input's rate
  std::string output_bits;      // "", "8", "16", "24", "32" (PCM), "f32", "f64"
  // Output samples per block and channel; 0 picks a size that keeps memory bounded (256 hops, or
  // four times the method's context). block_seconds > 0 sets it in seconds instead (files).
  int64_t block_samples = 0;
  double block_seconds = 0;
};

struct FileReport {
  int64_t frames = 0;
  int sample_rate_hz = 0;
  int channels = 0;
  double limiter_reduction_db = 0;  // > 0 when the limiter acted
  int64_t blocks = 0;
};

// Denoises `input` into `output`. Throws denoise::Error naming the file and the reason; on error
// no file is left at `output`. `progress(done, total)` is called with output frames.
FileReport denoise_file(const std::string& input, const std::string& output,
                        const PipelineOptions& options,
                        const std::function<void(int64_t, int64_t)>& progress = {});

// The noise sample `method` is given for planar in-memory audio at `sample_rate_hz` (one per
// channel), as denoise_file and denoise_channels take it: options.noise_clip_path, else the first
// options.noise_seconds (or the method's default) of the audio. Errors name `label`.
std::vector<std::vector<float>> noise_profile(const Denoiser& method,
                                              const PipelineOptions& options,
                                              const std::vector<std::vector<float>>& channels,
                                              int sample_rate_hz, const std::string& label);

// Denoises planar in-memory audio (each channel independently) with `block_samples` (0: one
// block). The same path as denoise_file without the codec; used by tests and evaluate.
std::vector<std::vector<float>> denoise_channels(const std::vector<std::vector<float>>& channels,
                                                 int sample_rate_hz, const PipelineOptions& options,
                                                 const std::vector<float>* noise = nullptr);

}  // namespace denoise
