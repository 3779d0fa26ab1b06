// train: learn the spectrogram-masking U-Net on noisy/clean speech.
//
//   train --data noisyandcleanaudios                 the unzipped Kaggle set (any of its levels)
//   train --data pairs/ -o voice.dnz --epochs 30     noisy/ + clean/ with matching names
//   train --clean speech/ --noise noise/ --steps 20000   mixed on the fly (plus generated noise)
//   train --data pairs/ -o voice.dnz --resume        continue an interrupted run
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "denoise/checkpoint.h"
#include "denoise/cli_range.h"
#include "denoise/error.h"
#include "denoise/figures.h"
#include "denoise/main_guard.h"
#include "denoise/path_guard.h"
#include "denoise/trainer.h"

namespace {

std::atomic<bool> g_stop{false};

void on_interrupt(int) {
  // First Ctrl-C: finish the step, save the resume state and exit. Second: the default action.
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

// The values given to `flag` on the command line ("--flag V" or "--flag=V"), in order.
std::vector<std::string> values_of(int argc, char** argv, const std::string& flag) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == flag && i + 1 < argc)
      out.push_back(argv[i + 1]);
    else if (a.rfind(flag + "=", 0) == 0)
      out.push_back(a.substr(flag.size() + 1));
  }
  return out;
}

}  // namespace

static int run(int argc, char** argv) {
  CLI::App app{
      "train: learn a denoising U-Net from noisy/clean speech pairs or from clean speech mixed "
      "with noise.\nThe best model (by validation loss) is written to --out, beside it a "
      "JSON-lines log and a resume state."};
  app.set_version_flag("--version", std::string("denoise ") + DENOISE_VERSION);

  denoise::TrainOptions opt;
  std::string config;
  bool quiet = false;
  app.add_option("--data", opt.data.data_dirs,
                 "Paired data: the Kaggle noisyandcleanaudios folder (unzipped), or a folder with "
                 "noisy/ and clean/ (or noisy_trainset_wav/ and clean_trainset_wav/)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--clean", opt.data.clean_dirs,
                 "Clean speech folders, mixed on the fly with --noise and generated noise")
      ->check(CLI::ExistingDirectory);
  app.add_option("--noise", opt.data.noise_dirs, "Noise folders for mixing with --clean")
      ->check(CLI::ExistingDirectory);
  app.add_option("-o,--out", opt.out_path, "Model file to write (the best weights)")
      ->capture_default_str();
  auto* o_epochs = app.add_option("--epochs", opt.epochs,
                                  "Epochs (one epoch = the training speech once) [default: 20]")
                       ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  auto* o_steps = app.add_option("--steps", opt.steps, "Training steps (instead of --epochs)")
                      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  o_epochs->excludes(o_steps);
  app.add_option("--batch", opt.batch_size, "Examples per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--lr", opt.learning_rate, "Adam learning rate")
      ->capture_default_str()
      ->check(denoise::finite_range(1e-8, 10));
  app.add_option("--device", opt.device, "cpu, or cuda when LibTorch has CUDA")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", opt.threads, "CPU threads for LibTorch (0: all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--workers", opt.loader_workers, "Data loading threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--seed", opt.data.seed, "Seed of the split, batches and initial weights")
      ->capture_default_str();
  app.add_flag("--resume", opt.resume,
               "Continue from the resume state beside --out (weights, optimizer, step)");
  app.add_option("--init", opt.init_path,
                 "Start from this model's weights (fine-tuning, e.g. on your own recordings): "
                 "its front end and network, a fresh optimizer and schedule; --config may change "
                 "only what keeps the weights' shapes (e.g. model.causal)")
      ->check(CLI::ExistingFile);
  app.add_option("--crop-seconds", opt.data.crop_seconds, "Length of training examples, s")
      ->capture_default_str()
      ->check(denoise::finite_range(0.05, 600));
  app.add_option("--val-fraction", opt.data.val_fraction,
                 "Share of files held out for validation (split by file, seeded)")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 0.99));
  app.add_option("--stop-at", opt.stop_at_step,
                 "End this run at step N with the resume state saved (the learning-rate schedule "
                 "still spans --steps); continue later with --resume")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--val-every", opt.val_every_steps, "Validate every N steps [default: each epoch]")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--config", config,
                 "JSON file with sections front_end, model, loss, mix, train (partial is fine); "
                 "flags given on the command line override it")
      ->check(CLI::ExistingFile);
  app.add_flag("-q,--quiet", quiet, "No progress bar or notices, only errors and the summary");

  // --init's front end and network come first, a config file's settings over them, and flags
  // given on the command line over both: apply them before parsing.
  try {
    for (const auto& path : values_of(argc, argv, "--init")) {
      const denoise::ModelMetadata init = denoise::read_checkpoint_metadata(path);
      opt.front_end = init.front_end;
      opt.model = init.model;
    }
    for (const auto& path : values_of(argc, argv, "--config"))
      denoise::apply_config_file(path, opt);
  } catch (const denoise::Error& e) {
    std::fprintf(stderr, "train: %s\n", e.what());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (opt.data.data_dirs.empty() && opt.data.clean_dirs.empty()) {
    std::fprintf(stderr, "train: no data: give --data DIR (pairs) or --clean DIR (for mixing)\n");
    return 2;
  }
  if (!opt.data.noise_dirs.empty() && opt.data.clean_dirs.empty()) {
    std::fprintf(stderr, "train: --noise needs --clean speech to mix it with\n");
    return 2;
  }

  // No output (model, log, curves, resume state: names as the trainer derives them from --out)
  // may be an input or another output, in any spelling (links included).
  try {
    denoise::PathGuard guard;
    guard.add_input(opt.init_path, "--init");
    for (const auto& path : values_of(argc, argv, "--config")) guard.add_input(path, "--config");
    for (const auto& d : opt.data.data_dirs) guard.add_input_folder(d, "--data");
    for (const auto& d : opt.data.clean_dirs) guard.add_input_folder(d, "--clean");
    for (const auto& d : opt.data.noise_dirs) guard.add_input_folder(d, "--noise");
    const std::string base = std::filesystem::path(opt.out_path).replace_extension("").string();
    guard.add_output(opt.out_path, "--out model");
    guard.add_output(base + ".log.jsonl", "training log");
    guard.add_output(base + ".curves.png", "training curves");
    guard.add_output(base + ".resume.pt", "resume state");
  } catch (const denoise::Error& e) {
    std::fprintf(stderr, "train: %s\n", e.what());
    return 2;
  }

  // Training and validation curves next to the log, redrawn at each validation.
  opt.after_validation = [](const std::string& log_path) {
    const std::string suffix = ".log.jsonl";
    std::string stem = log_path;
    if (stem.size() > suffix.size() &&
        stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
      stem.resize(stem.size() - suffix.size());
    denoise::figures::write_training_curves(
        log_path, stem + ".curves.png",
        "Training " + std::filesystem::path(stem).filename().string());
  };

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  try {
    auto message = [quiet](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
    };
    const denoise::TrainResult r = denoise::train(opt, message, &g_stop, !quiet);
    if (g_stop.load()) return 130;
    std::printf("trained %lld steps at %.1f s of audio per second\n",
                static_cast<long long>(r.steps), r.audio_seconds_per_second);
    std::printf("model: %s (validation SI-SDR improvement %+.2f dB, before training %+.2f dB)\n",
                r.model_path.c_str(), r.best.si_sdri_db(), r.first.si_sdri_db());
    std::printf("log: %s (curves in the .curves.png beside it)\n", r.log_path.c_str());
  } catch (const denoise::Error& e) {
    std::fprintf(stderr, "train: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) { return denoise::run_main("train", run, argc, argv); }
