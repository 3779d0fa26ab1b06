// bench_denoise: compute time of the denoising methods on one file, without the codec.
//
//   bench_denoise FILE [--methods gate,gate-nonstationary,subtract,unet] [--model FILE]
//                 [--repeat N]
//
// Reads FILE once with denoise::read_audio, then for each method times denoise_channels() (the
// same block path as denoise_file, default PipelineOptions apart from the method) with
// std::chrono::steady_clock and keeps the best of N runs. Decoding, encoding, resampling and the
// limiter are not timed. Single-threaded: the library is, FFTW is used in its float,
// single-threaded form, and LibTorch is limited to one thread for the unet method (--model). Prints
// one line per method:
//
//   method  compute_ms  ms_per_minute_of_audio  rtf
//
// where rtf = compute time / audio duration (lower is faster; 0.01 = 100x real time).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "denoise/audio_io.h"
#include "denoise/file_pipeline.h"
#ifdef DENOISE_WITH_TORCH
#include <torch/torch.h>

#include "denoise/unet_denoiser.h"
#endif

namespace {

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s FILE [--methods gate,gate-nonstationary,subtract,unet] [--model FILE] "
               "[--repeat N]\n"
               "Times denoise_channels() per method (best of N, default 5), single-threaded.\n",
               argv0);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  std::vector<std::string> methods = {"gate", "gate-nonstationary", "subtract"};
  int repeat = 5;
  std::string model;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_denoise: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage(argv[0]);
      return 0;
    } else if (a == "--methods") {
      methods = split_commas(value("--methods"));
      if (methods.empty()) {
        std::fprintf(stderr, "bench_denoise: --methods is empty\n");
        return 2;
      }
    } else if (a == "--model") {
      model = value("--model");
    } else if (a == "--repeat") {
      const std::string v = value("--repeat");
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 1 || n > 1000) {
        std::fprintf(stderr, "bench_denoise: --repeat must be an integer 1..1000, got '%s'\n",
                     v.c_str());
        return 2;
      }
      repeat = static_cast<int>(n);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "bench_denoise: unknown option '%s'\n", a.c_str());
      usage(argv[0]);
      return 2;
    } else if (file.empty()) {
      file = a;
    } else {
      std::fprintf(stderr, "bench_denoise: one FILE only (got '%s' and '%s')\n", file.c_str(),
                   a.c_str());
      return 2;
    }
  }
  if (file.empty()) {
    usage(argv[0]);
    return 2;
  }

  try {
#ifdef DENOISE_WITH_TORCH
    denoise::register_unet_method();
    torch::set_num_threads(1);
#endif
    const denoise::Audio audio = denoise::read_audio(file);
    const double seconds = static_cast<double>(audio.frames()) / audio.sample_rate_hz;
    std::printf("# %s: %lld frames, %d Hz, %zu channel(s), %.2f s; best of %d\n", file.c_str(),
                static_cast<long long>(audio.frames()), audio.sample_rate_hz, audio.channels.size(),
                seconds, repeat);
    std::printf("%-20s %12s %22s %10s\n", "method", "compute_ms", "ms_per_minute_of_audio", "rtf");

    for (const auto& method : methods) {
      denoise::PipelineOptions options;
      options.method = method;
      options.method_options.model_path = model;
      double best_ms = std::numeric_limits<double>::infinity();
      size_t sink = 0;  // keeps the result observable
      for (int r = 0; r < repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        auto out = denoise::denoise_channels(audio.channels, audio.sample_rate_hz, options);
        const auto t1 = std::chrono::steady_clock::now();
        sink += out.empty() ? 0 : out[0].size();
        best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      if (sink != static_cast<size_t>(repeat) * static_cast<size_t>(audio.frames())) {
        std::fprintf(stderr, "bench_denoise: %s returned %zu samples, expected %lld per run\n",
                     method.c_str(), sink / repeat, static_cast<long long>(audio.frames()));
        return 1;
      }
      const double per_minute = best_ms * 60.0 / seconds;
      const double rtf = best_ms / 1000.0 / seconds;
      std::printf("%-20s %12.2f %22.2f %10.5f\n", method.c_str(), best_ms, per_minute, rtf);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_denoise: %s\n", e.what());
    return 1;
  }
  return 0;
}
