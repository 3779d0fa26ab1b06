// bench_denoise: compute time of the denoising methods on one file, without the codec.
//
//   bench_denoise FILE [--methods gate,gate-nonstationary,subtract,unet] [--model FILE]
//                 [--repeat N]
//   bench_denoise FILE --stream [--methods gate,gate-nonstationary,unet] [--model FILE]
//
// --stream times the streaming engine (live mode) instead: the file's first channel, converted
// to the engine's rate beforehand, goes through StreamEngine::process_hop() one hop at a time,
// each call timed. Prints per method: hop, latency, mean and 99th-percentile time per hop (us)
// and both as a share of the hop's duration (live mode needs well under 100 %).
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
#include "denoise/resample.h"
#include "denoise/stream.h"
#ifdef DENOISE_WITH_TORCH
#include <torch/torch.h>

#include "denoise/unet_denoiser.h"
#endif

namespace {

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s FILE [--methods gate,gate-nonstationary,subtract,unet] [--model FILE] "
               "[--repeat N] [--stream]\n"
               "Times denoise_channels() per method (best of N, default 5), single-threaded;\n"
               "--stream: the streaming engine's time per hop (mean, p99).\n",
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
  bool stream = false;
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
    } else if (a == "--stream") {
      stream = true;
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
    if (stream) {
      std::printf("%-20s %6s %11s %9s %8s %12s %11s\n", "method", "hop", "latency_ms", "mean_us",
                  "p99_us", "mean_of_hop", "p99_of_hop");
      for (const auto& method : methods) {
        denoise::MethodOptions mo;
        mo.model_path = model;
        auto engine = denoise::make_stream_engine(method, mo, audio.sample_rate_hz);
        const std::vector<float> x =
            denoise::resample(audio.channels[0], audio.sample_rate_hz, engine->sample_rate_hz());
        const int hop = engine->hop();
        std::vector<float> out(hop);
        std::vector<double> us;
        for (size_t i = 0; i + hop <= x.size(); i += hop) {
          const auto t0 = std::chrono::steady_clock::now();
          engine->process_hop(x.data() + i, out.data());
          us.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count());
        }
        double mean = 0;
        for (double u : us) mean += u / static_cast<double>(us.size());
        std::sort(us.begin(), us.end());
        const double p99 = us[std::min(us.size() - 1, us.size() * 99 / 100)];
        const double hop_us = 1e6 * hop / engine->sample_rate_hz();
        std::printf("%-20s %6d %11.1f %9.1f %8.1f %11.1f%% %10.1f%%\n", method.c_str(), hop,
                    engine->latency_ms(), mean, p99, 100 * mean / hop_us, 100 * p99 / hop_us);
        std::fflush(stdout);
      }
      return 0;
    }
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
