// infer --plot: a picture of what a method did to one file.
#pragma once

#include <string>

#include "denoise/file_pipeline.h"

namespace denoise {

// Writes a PNG with the noisy input's spectrogram, the gain the method applied (output/input per
// bin), the denoised spectrogram, and for stationary gating its per-frequency noise threshold.
// `input` and `output` are the files infer read and wrote; `options` are infer's. Throws
// denoise::Error naming the PNG path.
void plot_denoising(const std::string& input, const std::string& output,
                    const PipelineOptions& options, const std::string& png_path);

}  // namespace denoise
