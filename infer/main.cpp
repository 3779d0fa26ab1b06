// infer: denoise audio files and folders.
//
//   infer noisy.wav                      -> noisy_denoised.wav beside it (the U-Net when a model
//                                           is found, spectral gating otherwise)
//   infer in.wav --model voice.dnz       a model trained with `train`
//   infer in.flac -o out.wav --method gate-nonstationary
//   infer recordings/ --out-dir clean/   (folders are searched recursively)
//   infer --live --record talk.wav       the microphone, denoised as you speak (live.h)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "denoise/atomic_file.h"
#include "denoise/audio_io.h"
#include "denoise/cli_range.h"
#include "denoise/denoiser.h"
#include "denoise/error.h"
#include "denoise/file_pipeline.h"
#include "denoise/main_guard.h"
#include "denoise/path_guard.h"
#include "denoise/progress.h"
#include "plot_denoising.h"
#ifdef DENOISE_WITH_PORTAUDIO
#include "live.h"
#endif

namespace fs = std::filesystem;
using denoise::Error;

namespace {

struct Job {
  fs::path input;
  fs::path output;
};

bool is_denoised_output(const fs::path& p) {
  const std::string stem = p.stem().string();
  const std::string suffix = "_denoised";
  return stem.size() >= suffix.size() &&
         stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<fs::path> audio_files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const fs::path& p = it->path();
    if (p.filename().string().rfind('.', 0) == 0) continue;  // hidden (e.g. our temporary files)
    if (denoise::is_audio_extension(p.extension().string()) && !is_denoised_output(p))
      files.push_back(p);
  }
  if (ec) throw Error(dir.string() + ": cannot list folder (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  return files;
}

fs::path default_output(const fs::path& input) {
  return input.parent_path() / (input.stem().string() + "_denoised" + input.extension().string());
}

}  // namespace

static int run(int argc, char** argv) {
  CLI::App app{
      "infer: denoise speech recordings (files or folders), or a microphone live (--live).\n"
      "Output keeps the input's rate, channels and sample format unless --rate/--bits say "
      "otherwise,\n"
      "and is written to a temporary file that is renamed into place only when complete."};
  app.set_version_flag("--version", std::string("denoise ") + DENOISE_VERSION);

  std::vector<std::string> inputs;
  std::string output, out_dir;
  denoise::PipelineOptions opt;
  bool quiet = false;

  auto* o_inputs =
      app.add_option("inputs", inputs, "Audio files or folders (searched recursively) to denoise");
  auto* o_output = app.add_option(
      "-o,--output", output, "Output file (one input file only); its extension picks the format");
  auto* o_outdir = app.add_option("--out-dir", out_dir,
                                  "Folder for outputs (created if missing); file names are kept, "
                                  "folder inputs keep their sub-folders");
  o_output->excludes(o_outdir);
  std::string plot_path;
  auto* o_plot = app.add_option(
      "--plot", plot_path,
      "Also write a PNG (one input file only): noisy spectrogram, the gain applied, the "
      "denoised spectrogram, and for gate the noise threshold per frequency");

  // The unet method comes from a plugin, loaded only when used.
  const bool have_models = denoise::model_methods_available();
  std::vector<std::string> methods = denoise::classical_method_names();
  if (have_models) methods.push_back("unet");
  std::string methods_help = "Denoising method: ";
  for (const auto& n : methods) methods_help += n + " ";
  if (have_models) methods_help += "[default: unet when a model is found, else gate]";
  opt.method.clear();
  app.add_option("-m,--method", opt.method, methods_help)->check(CLI::IsMember(methods));
  if (have_models) {
    app.add_option("--model", opt.method_options.model_path,
                   "Trained model file (from train) for --method unet [default: $DENOISE_MODEL, "
                   "or the model installed with the program]")
        ->check(CLI::ExistingFile);
    app.add_option("--threads", opt.method_options.threads,
                   "CPU threads for the model (0: all cores)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1024));
  }

  auto* noise = app.add_option_group("Noise profile (gate, subtract)");
  auto* o_noise_clip =
      noise
          ->add_option(
              "--noise-clip", opt.noise_clip_path,
              "Noise-only recording to profile (any rate/channels; resampled and mixed as needed)")
          ->check(CLI::ExistingFile);
  auto* o_noise_seconds =
      noise
          ->add_option("--noise-seconds", opt.noise_seconds,
                       "Profile the first S seconds of each input [default: gate the whole input "
                       "(first 600000 samples), subtract 0.5 s]")
          ->check(denoise::finite_range(0.001, 1e6));

  auto& g = opt.method_options.gate;
  auto* gate = app.add_option_group(
      "Spectral gating (gate, gate-nonstationary; defaults of noisereduce 3.0.3)");
  gate->add_option("--prop-decrease", g.prop_decrease, "Proportion of the noise removed, 0..1")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 1));
  gate->add_option("--n-std", g.n_std_thresh_stationary,
                   "gate: threshold = noise mean + N standard deviations (dB), per frequency")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 100));
  gate->add_option("--freq-smooth-hz", g.freq_mask_smooth_hz, "Mask smoothing across frequency, Hz")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 48000));
  gate->add_option("--time-smooth-ms", g.time_mask_smooth_ms, "Mask smoothing across time, ms")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 10000));
  gate->add_option("--time-constant-s", g.time_constant_s,
                   "gate-nonstationary: time constant of the noise floor, s")
      ->capture_default_str()
      ->check(denoise::finite_range(0.01, 10));
  gate->add_option("--thresh-n-mult", g.thresh_n_mult_nonstationary,
                   "gate-nonstationary: bins more than N x above the floor pass")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 1000));
  gate->add_option("--sigmoid-slope", g.sigmoid_slope_nonstationary,
                   "gate-nonstationary: slope of the soft mask")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 1000));
  gate->add_flag("--causal", g.causal,
                 "Forward-only smoothing (noise floor and time smoothing use past frames only), as "
                 "live mode runs it");
  auto* o_padding =
      gate->add_option("--padding", g.padding_samples,
                       "Zeros added on both sides before the STFT, samples (noisereduce's "
                       "`padding`; shapes the non-stationary noise floor near the ends)")
          ->capture_default_str()
          ->check(CLI::Range(0, 1 << 22));
  int n_fft = 1024, hop = 256;
  auto* o_n_fft = app.add_option("--n-fft", n_fft,
                                 "FFT size of the classical methods, samples (--live: the even "
                                 "size nearest 20 ms)")
                      ->capture_default_str()
                      ->check(CLI::Range(16, 65536));
  auto* o_hop = app.add_option("--hop", hop,
                               "Hop of the classical methods, samples (--live: a quarter of the "
                               "FFT size)")
                    ->capture_default_str()
                    ->check(CLI::Range(1, 32768));

  auto& s = opt.method_options.subtract;
  auto* sub = app.add_option_group("Spectral subtraction (subtract)");
  sub->add_option("--over-subtraction", s.over_subtraction,
                  "Noise power is subtracted this many times")
      ->capture_default_str()
      ->check(denoise::finite_range(0.01, 100));
  sub->add_option("--floor", s.floor, "Lowest gain, linear (0.05 = -26 dB)")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 1));

  auto* out = app.add_option_group("Output");
  out->add_option("--gain-db", opt.gain_db,
                  "Amplify by this many dB; a peak limiter prevents clipping")
      ->capture_default_str()
      ->check(denoise::finite_range(-100, 60));
  out->add_option("--rate", opt.output_rate_hz,
                  "Output sample rate, Hz [default: the input's]; with --live the device rate "
                  "[default: the input device's default rate]")
      ->check(CLI::Range(denoise::kMinSampleRateHz, denoise::kMaxSampleRateHz));
  out->add_option(
         "--bits", opt.output_bits,
         "Output sample format: 8, 16, 24, 32 (integer PCM), f32, f64 [default: the input's; "
         "--live recordings: f32]")
      ->check(CLI::IsMember({"8", "16", "24", "32", "f32", "f64"}));
  auto* o_block =
      app.add_option("--block-seconds", opt.block_seconds,
                     "Process in blocks of this many seconds [default: 256 hops, or 4x a method's "
                     "context]; the output does not depend on it")
          ->check(denoise::finite_range(0.001, 3600));
  app.add_flag("-q,--quiet", quiet, "Print errors only");

  // Live microphone mode (live.h).
  bool live = false, list = false, no_playback = false;
  std::string input_device, output_device, record_path, record_raw_path;
  double live_seconds = 0;
  auto* lg = app.add_option_group(
      "Live microphone (--live; methods unet, gate, gate-nonstationary; stop with Enter, q or "
      "Ctrl-C)");
  auto* o_live = lg->add_flag(
      "--live", live,
      "Denoise the input device in real time and play the result on the output device");
  lg->add_flag(
      "--list-devices", list,
      "List audio devices (index, in/out channels, default rate, host API, name) and exit");
  std::vector<CLI::Option*> live_only;
  live_only.push_back(lg->add_option("--input-device", input_device,
                                     "Input device: index or part of its name [default: the "
                                     "system's default input]"));
  live_only.push_back(lg->add_option("--output-device", output_device,
                                     "Output device: index or part of its name [default: the "
                                     "system's default output]"));
  live_only.push_back(lg->add_flag("--no-playback", no_playback,
                                   "Do not play the denoised audio (input-only stream)"));
  live_only.push_back(lg->add_option("--record", record_path,
                                     "Write the denoised audio to this WAV file (at the device "
                                     "rate; valid even after a crash)"));
  live_only.push_back(lg->add_option("--record-raw", record_raw_path,
                                     "Write the raw input (mixed to mono) to this WAV file"));
  live_only.push_back(lg->add_option("--seconds", live_seconds,
                                     "Stop after this many seconds of input [default: until "
                                     "Enter, q or Ctrl-C]")
                          ->check(denoise::finite_range(0.01, 1e7)));
  for (auto* o : live_only) o->needs(o_live);
  for (auto* o : {o_inputs, o_output, o_outdir, o_plot, o_noise_clip, o_noise_seconds, o_block,
                  o_n_fft, o_hop, o_padding})
    o->excludes(o_live);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  g.n_fft = s.n_fft = n_fft;
  g.hop_length = s.hop_length = hop;

#ifndef DENOISE_WITH_PORTAUDIO
  if (live || list) {
    std::fprintf(stderr,
                 "infer: error: built without live support (PortAudio); rebuild with "
                 "-DDENOISE_WITH_PORTAUDIO=ON and portaudio19-dev installed\n");
    return 2;
  }
#else
  if (list) return denoise::live::list_devices();
#endif
  if (!live && inputs.empty()) {
    std::fprintf(stderr,
                 "infer: error: give audio files or folders to denoise, or --live for the "
                 "microphone (see --help)\n");
    return 2;
  }
  if (live && opt.method == "subtract") {
    std::fprintf(stderr,
                 "infer: error: --method subtract cannot run live; use unet, gate or "
                 "gate-nonstationary\n");
    return 2;
  }

  // The method: as asked; else the U-Net when a model is given or installed; else gating.
  if (opt.method.empty()) {
    if (have_models &&
        (!opt.method_options.model_path.empty() || !denoise::default_model_path().empty())) {
      opt.method = "unet";
    } else {
      // Live, there is no whole recording to profile the noise from: the non-stationary gate
      // follows the noise floor as it goes.
      opt.method = live ? "gate-nonstationary" : "gate";
      const std::string what = live ? "non-stationary spectral gating" : "spectral gating";
      if (!quiet && have_models)
        std::fprintf(stderr,
                     "infer: note: no trained model found (--model FILE or DENOISE_MODEL); using "
                     "%s\n",
                     what.c_str());
      else if (!quiet)
        std::fprintf(stderr, "infer: note: built without the U-Net (LibTorch); using %s\n",
                     what.c_str());
    }
  } else if (opt.method != "unet" && !opt.method_options.model_path.empty()) {
    std::fprintf(stderr, "infer: error: --model applies to --method unet, not %s\n",
                 opt.method.c_str());
    return 2;
  }
  if (opt.method == "unet") {
    // Load the plugin and the model once, before any file: a bad model is one error, not one
    // per file.
    try {
      denoise::prepare_model_method(opt.method_options);
    } catch (const Error& e) {
      std::fprintf(stderr, "infer: error: %s\n", e.what());
      return 1;
    }
  }

#ifdef DENOISE_WITH_PORTAUDIO
  if (live) {
    try {
      denoise::PathGuard guard;
      guard.add_input(opt.method_options.model_path, "--model");
      guard.add_output(record_path, "--record");
      guard.add_output(record_raw_path, "--record-raw");
    } catch (const Error& e) {
      std::fprintf(stderr, "infer: error: %s\n", e.what());
      return 2;
    }
    denoise::live::LiveOptions lo;
    lo.method = opt.method;
    lo.method_options = opt.method_options;
    lo.input_device = input_device;
    lo.output_device = output_device;
    lo.playback = !no_playback;
    lo.device_rate_hz = opt.output_rate_hz;
    lo.seconds = live_seconds;
    lo.gain_db = opt.gain_db;
    lo.record_path = record_path;
    lo.record_raw_path = record_raw_path;
    lo.record_bits = opt.output_bits;
    lo.quiet = quiet;
    return denoise::live::run_live(lo);
  }
#endif

  // Ctrl-C, kill or a closed terminal: no temporary file is left behind (live mode, above, stops
  // on Ctrl-C by itself).
  denoise::remove_temporary_files_on_signals();

  // Expand inputs into jobs; a bad input is reported and counted, the rest still run.
  std::vector<Job> jobs;
  int failures = 0;
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "infer: error: %s\n", message.c_str());
    ++failures;
  };
  bool folder_mode = inputs.size() > 1;
  for (const auto& in : inputs) {
    std::error_code ec;
    const fs::path p(in);
    if (!fs::exists(p, ec)) {
      fail(in + ": no such file or folder");
      continue;
    }
    if (fs::is_directory(p, ec)) {
      folder_mode = true;
      std::vector<fs::path> files;
      try {
        files = audio_files_in(p);
      } catch (const Error& e) {
        fail(e.what());
        continue;
      }
      if (files.empty()) {
        fail(in + ": no audio files in this folder");
        continue;
      }
      for (const auto& f : files) {
        fs::path dest =
            out_dir.empty() ? default_output(f) : fs::path(out_dir) / fs::relative(f, p);
        jobs.push_back({f, dest});
      }
    } else {
      fs::path dest = !output.empty()    ? fs::path(output)
                      : !out_dir.empty() ? fs::path(out_dir) / p.filename()
                                         : default_output(p);
      jobs.push_back({p, dest});
    }
  }
  if (!output.empty() && (folder_mode || jobs.size() > 1)) {
    std::fprintf(stderr,
                 "infer: error: -o/--output takes one input file; use --out-dir for several\n");
    return 2;
  }
  if (!plot_path.empty() && (folder_mode || jobs.size() > 1)) {
    std::fprintf(stderr, "infer: error: --plot takes one input file\n");
    return 2;
  }

  if (!out_dir.empty() && !jobs.empty()) {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) {
      std::fprintf(stderr, "infer: error: %s: cannot create output folder (%s)\n", out_dir.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }

  // No output may be an input or another output, in any spelling (links included).
  denoise::PathGuard guard;
  for (const auto& job : jobs) guard.add_input(job.input.string(), "input");
  guard.add_input(opt.noise_clip_path, "--noise-clip");
  guard.add_input(opt.method_options.model_path, "--model");
  try {
    guard.add_output(plot_path, "--plot");
  } catch (const Error& e) {
    std::fprintf(stderr, "infer: error: %s\n", e.what());
    return 1;
  }

  int done = 0;
  for (const auto& job : jobs) {
    const std::string in = job.input.string(), dst = job.output.string();
    try {
      std::error_code ec;
      guard.add_output(dst, "output");
      if (!job.output.parent_path().empty() && !fs::exists(job.output.parent_path(), ec)) {
        if (out_dir.empty())
          throw Error(dst + ": output folder " + job.output.parent_path().string() +
                      " does not exist");
        fs::create_directories(job.output.parent_path(), ec);
      }
      std::unique_ptr<denoise::ProgressBar> bar;
      auto report = denoise::denoise_file(in, dst, opt, [&](int64_t d, int64_t total) {
        if (!bar)
          bar =
              std::make_unique<denoise::ProgressBar>(job.input.filename().string(), total, !quiet);
        bar->update(d);
      });
      if (bar) bar->finish();
      ++done;
      if (!quiet) {
        std::printf("%s -> %s (%.2f s, %d ch, %d Hz, %s)\n", in.c_str(), dst.c_str(),
                    static_cast<double>(report.frames) / report.sample_rate_hz, report.channels,
                    report.sample_rate_hz, opt.method.c_str());
      }
      if (!plot_path.empty()) {
        denoise::plot_denoising(in, dst, opt, plot_path);
        if (!quiet) std::printf("plot -> %s\n", plot_path.c_str());
      }
      if (report.limiter_reduction_db > 0.05) {
        std::fprintf(stderr,
                     "infer: note: %s: limiter reduced peaks by up to %.1f dB to avoid clipping\n",
                     dst.c_str(), report.limiter_reduction_db);
      }
    } catch (const Error& e) {
      fail(e.what());
    } catch (const std::exception& e) {
      fail(in + ": " + e.what());
    }
  }
  if (folder_mode) {
    std::fprintf(stderr, "infer: %d file%s denoised, %d failed\n", done, done == 1 ? "" : "s",
                 failures);
  }
  return failures > 0 ? 1 : 0;
}

int main(int argc, char** argv) { return denoise::run_main("infer", run, argc, argv); }
