// train: learn the spectrogram-masking U-Net on noisy/clean speech.
//
//   train --data noisyandcleanaudios                 the unzipped Kaggle set (any of its levels)
//   train --data pairs/ -o voice.dnz --epochs 30     noisy/ + clean/ with matching names
//   train --clean speech/ --noise noise/ --steps 20000   mixed on the fly (plus generated noise)
//   train --data pairs/ -o voice.dnz --resume        continue an interrupted run
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "denoise/checkpoint.h"
#include "denoise/cli_range.h"
#include "denoise/error.h"
#include "denoise/figures.h"
#include "denoise/main_guard.h"
#include "denoise/path_guard.h"
#include "denoise/trainer.h"

namespace {

// OpenMP's threads (LibTorch's and OpenBLAS's) spin while they wait for each other by default.
// On a machine with as many cores as threads, where the data loader's threads and everything
// else compete for them, a spinning thread burns the core its partner needs: 60 % of a profile
// of train was libgomp's wait loop, and passive waiting made training 3-4x faster there.
// libgomp reads the variable once, when it is loaded (before main), so train sets it and runs
// itself again; a value the user set wins. Returns only when no re-run is needed or possible.
void set_openmp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed (no /proc): go on with the default policy
}

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

// The step breakdown: milliseconds per step of the trainer's parts, and of the loader threads'.
void print_breakdown(const denoise::TrainResult& r) {
  const denoise::StepBreakdown& b = r.breakdown;
  if (b.steps == 0) return;
  const double n = static_cast<double>(b.steps);
  auto ms = [n](double s) { return s * 1e3 / n; };
  // With batch parts, features to backward are part 0's; the others run beside it.
  char parts[160] = "";
  if (r.batch_parts > 1)
    std::snprintf(parts, sizeof parts,
                  " (part 1 of %d, on %d threads at once), waiting for the other parts and "
                  "summing their gradients %.1f",
                  r.batch_parts, r.batch_parts, ms(b.parts_wait_s));
  std::printf(
      "step breakdown, ms per step: data wait %.1f, to tensors %.1f, STFT+features %.1f, "
      "forward %.1f, loss %.1f, backward %.1f%s, all-reduce %.1f, optimizer %.1f; validation and "
      "saving %.1f\n",
      ms(b.data_wait_s), ms(b.to_device_s), ms(b.features_s), ms(b.forward_s), ms(b.loss_s),
      ms(b.backward_s), parts, ms(b.all_reduce_s), ms(b.optimizer_s), ms(b.validation_s));
  const denoise::DataProfile& d = b.data;
  std::printf(
      "loader threads, ms per step (all threads, overlapping the steps): %.1f = reading and "
      "resampling %.1f, crops %.1f, noise %.1f, babble %.1f, rumble %.1f, rooms %.1f, "
      "band-limiting %.1f, mixing and level %.1f (%lld examples)\n",
      ms(d.total_s), ms(d.decode_s), ms(d.crop_s), ms(d.noise_s), ms(d.babble_s), ms(d.rumble_s),
      ms(d.reverb_s), ms(d.bandlimit_s), ms(d.mix_s), static_cast<long long>(d.examples));
  std::printf("BLAS: %s\n", r.blas.c_str());
}

}  // namespace

static int run(int argc, char** argv) {
  // A training step allocates and frees the same large tensors every time; glibc would hand
  // each one back to the kernel (mmap/munmap) and page-fault it in zeroed again, a fifth of the
  // step's time in a profile. Keep freed memory in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{
      "train: learn a denoising U-Net from noisy/clean speech pairs or from clean speech mixed "
      "with noise.\nThe best model (by validation loss) is written to --out, beside it a "
      "JSON-lines log and a resume state."};
  app.set_version_flag("--version", std::string("denoise ") + DENOISE_VERSION);

  denoise::TrainOptions opt;
  std::vector<std::string> configs;
  bool quiet = false;
  std::string val_pesq = "on";
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
  app.add_option("--batch-parts", opt.batch_parts,
                 "Split each batch into N parts computed at once, each on its own thread with "
                 "its own copy of the network (CPU; BatchNorm then sees each part's examples, as "
                 "in a job of N ranks). 0: one part per thread, at least 4 examples each; 1: the "
                 "whole batch on all threads")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
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
  app.add_option("--val-pesq", val_pesq,
                 "PESQ of the validation set at each validation (wide-band; about 2 s each)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--val-every", opt.val_every_steps, "Validate every N steps [default: each epoch]")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--config", configs,
                 "JSON file with sections front_end, model, loss, mix, train (partial is fine); "
                 "may be given again, each over the ones before; flags given on the command "
                 "line override them")
      ->allow_extra_args(false)  // one file per --config, as the early read above takes them
      ->check(CLI::ExistingFile);
  app.add_flag("-q,--quiet", quiet, "No progress bar or notices, only errors and the summary");
  // Several processes (README "Training on several machines"): read from the launcher's variables.
  std::string launcher = "auto";
  int master_port = 0;
  denoise::ProcessGroupOptions group_options;
  const std::string dist = "Several processes (torchrun --no_python, srun)";
  app.add_option("--launcher", launcher,
                 "Where this process's rank comes from: auto (torchrun's RANK, WORLD_SIZE, "
                 "MASTER_ADDR, MASTER_PORT, else srun's SLURM_PROCID, SLURM_NTASKS), torchrun, "
                 "slurm, or none (one process whatever the environment)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "none", "torchrun", "slurm"}))
      ->group(dist);
  app.add_option("--master-port", master_port,
                 "Port of the job's rendezvous on the master (rank 0's machine) [default: "
                 "MASTER_PORT, else 29500]")
      ->check(CLI::Range(1, 65535))
      ->group(dist);
  app.add_option("--dist-timeout", group_options.timeout_seconds,
                 "Seconds a rank waits for the others (rendezvous, each step) before it gives up; "
                 "more than rank 0's longest validation")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 604800.0))
      ->group(dist);
  app.add_option("--simulate-ranks", opt.simulate_ranks,
                 "Check: one process draws and averages the batches of ranks 0..N-1 as a job of N "
                 "does (N times slower)")
      ->check(CLI::Range(2, 64))
      ->group(dist);
  app.add_option("--debug-weights", opt.debug_weights_dir,
                 "Debugging: every rank writes its weights after each step into this folder")
      ->check(CLI::ExistingDirectory)
      ->group(dist);

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
  opt.val_pesq = val_pesq == "on";
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

  set_openmp_wait_policy(argv);  // after the arguments were checked: errors come at once
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::string who;  // "rank 1 of 2: " in a job, before every line
  try {
    const auto where =
        denoise::launch_environment(denoise::process_environment(), launcher, master_port);
    if (where) {
      who = where->rank_text() + ": ";
      group_options.device = opt.device;
      // The machine's cores shared among its processes unless told otherwise.
      if (opt.threads == 0 && where->local_world_size > 0 && !std::getenv("OMP_NUM_THREADS"))
        opt.threads = std::max(
            1, static_cast<int>(std::thread::hardware_concurrency()) / where->local_world_size);
      opt.process_group = denoise::ProcessGroup::join(*where, group_options);
      if (where->rank != 0) quiet = true;  // rank 0 speaks for the job
    }
  } catch (const denoise::Error& e) {
    std::fprintf(stderr, "train: %s%s\n", who.c_str(), e.what());
    return 1;
  }
  try {
    auto message = [quiet](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
    };
    const denoise::TrainResult r = denoise::train(opt, message, &g_stop, !quiet);
    if (g_stop.load() || r.interrupted) return 130;
    if (!who.empty() && opt.process_group->rank() != 0) return 0;
    std::printf("trained %lld steps at %.1f s of audio per second\n",
                static_cast<long long>(r.steps), r.audio_seconds_per_second);
    print_breakdown(r);
    if (r.ranks > 1)
      std::printf("%d %s, global batch %lld (%d x %d per %s)\n", r.ranks,
                  opt.process_group ? "processes" : "simulated ranks",
                  static_cast<long long>(r.global_batch_size), r.ranks, opt.batch_size,
                  opt.process_group ? "process" : "rank");
    std::printf("model: %s (validation SI-SDR improvement %+.2f dB, before training %+.2f dB",
                r.model_path.c_str(), r.best.si_sdri_db(), r.first.si_sdri_db());
    if (!std::isnan(r.best.pesq))
      std::printf("; PESQ %.2f, noisy input %.2f", r.best.pesq, r.best.pesq_noisy);
    std::printf(")\n");
    std::printf("log: %s (curves in the .curves.png beside it)\n", r.log_path.c_str());
  } catch (const denoise::Error& e) {
    std::fprintf(stderr, "train: %s%s\n", who.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: %sunexpected error: %s\n", who.c_str(), e.what());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) { return denoise::run_main("train", run, argc, argv); }
