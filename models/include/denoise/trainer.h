// The training loop behind `train`: batches from TrainingData -> the shared front end (batched, on
// CPU or CUDA) -> U-Net mask x noisy STFT -> inverse -> loss -> Adam. Validates at each epoch
// (or every val_every_steps), keeps the best weights in the output model, logs metrics as JSON
// lines, and keeps a resume state so that an interrupted run continues where it stopped.
//
// Files, for an output "dir/name.dnz":
//   dir/name.dnz              the best model so far (checkpoint.h), replaced atomically
//   dir/name.log.jsonl        one JSON object per validation (appended when resuming)
//   dir/name.resume.pt        weights, optimizer state, step and options of the latest step
//                             saved (LibTorch archive; at each validation and every few minutes)
#pragma once

#include <atomic>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "denoise/checkpoint.h"
#include "denoise/dataset.h"
#include "denoise/distributed.h"
#include "denoise/front_end_torch.h"
#include "denoise/loss.h"
#include "denoise/unet.h"

namespace denoise {

// The front end models are trained with unless a config says otherwise: 16 kHz, 20 ms windows
// (sqrt-Hann, analysis and synthesis) every 10 ms, power-law compressed features. The 20 ms
// window keeps live latency (window + look-ahead) within 30 ms.
FrontEndConfig default_model_front_end();

struct TrainOptions {
  std::string out_path = "model.dnz";
  int64_t epochs = 0;  // one of epochs / steps; both 0: 20 epochs
  int64_t steps = 0;
  int batch_size = 16;
  double learning_rate = 1e-3;
  // "constant", or "cosine": from learning_rate down to learning_rate * lr_min_fraction at the
  // last step (after a linear warm-up over warmup_steps in both cases).
  std::string lr_schedule = "constant";
  double lr_min_fraction = 0.05;
  int64_t warmup_steps = 0;
  double grad_clip_norm = 5.0;
  std::string device = "cpu";  // "cpu" or "cuda"
  int threads = 0;             // LibTorch intra-op threads; 0: all cores
  // CPU: each batch is split into this many parts that are computed at the same time, each on
  // its own thread with its own copy of the network and its share of the LibTorch threads;
  // the parts' gradients are summed in a fixed order, so a seed still gives the same weights.
  // BatchNorm normalises each part by its own examples' statistics, as each rank of a job of
  // that many ranks does. Small networks keep one core busier this way than when LibTorch
  // splits every operation across the threads. 0: one part per LibTorch thread, with at least 4
  // examples in each (always 1 on CUDA); 1: the whole batch at once, on all the threads.
  int batch_parts = 0;
  int loader_workers = 2;
  bool resume = false;
  // A model file whose weights the run starts from (fine-tuning) instead of random ones, with a
  // fresh optimizer and schedule. Its front end and model options must already be in `front_end`
  // and `model` (train's --init puts them there before --config); every tensor must match in
  // name and shape. A resume state, when there is one, takes precedence.
  std::string init_path;
  int64_t val_every_steps = 0;  // 0: once per epoch
  // PESQ of the validation set at each validation (in the log, the summary and the model file);
  // about 2 s per validation of 64 examples of 4 s.
  bool val_pesq = true;
  // > 0: this run ends at that step (resume state saved), the schedule still planned for the
  // whole run; a later --resume continues it (training in sessions, or in stages whose data
  // options differ).
  int64_t stop_at_step = 0;
  double state_every_seconds = 300;  // resume state saved at least this often
  FrontEndConfig front_end = default_model_front_end();
  UNetOptions model;
  LossOptions loss;
  DataOptions data;  // data.seed is the run's seed (split, batches, initial weights)
  // Data-parallel training (distributed.h): this process is one rank of the group's job, which
  // averages its gradients every step; rank 0 alone validates and writes the model, log, curves
  // and resume state. batch_size is per rank. Null: a single process.
  std::shared_ptr<ProcessGroup> process_group;
  // > 1, to check data-parallel training: one process draws the batches of ranks 0..N-1 of an
  // N-rank job each step and averages them as that job does, reaching the same weights.
  int simulate_ranks = 0;
  // Debugging: when set, every rank writes its weights (dump_module_weights) after the start and
  // after each step to DIR/rank<R>.step<S>.f32 (R: "sim" for simulate_ranks).
  std::string debug_weights_dir;
  // Called after each validation line is written to the log (train draws its curves there).
  // An exception it throws is reported once through `message` and the hook is not called again.
  std::function<void(const std::string& log_path)> after_validation;
};

// Applies a JSON config over `options`: sections "front_end", "model", "loss", "mix" (each may
// give only some keys; unknown keys are errors) and "train" (batch_size, learning_rate,
// lr_schedule, lr_min_fraction, warmup_steps, grad_clip_norm, crop_seconds, val_fraction,
// val_crop_seconds, max_val_examples, epochs, steps, val_every_steps). Throws denoise::Error naming
// the file and key.
void apply_config_file(const std::string& path, TrainOptions& options);

struct ValidationResult {
  double loss = 0;
  double si_sdr_db = 0;        // mean over validation examples, of the model's output
  double si_sdr_noisy_db = 0;  // of the noisy input
  // Mean PESQ (wide-band; narrow-band for models below 16 kHz) of the model's output and of the
  // noisy input; NaN when not measured (val_pesq off) or no example could be scored.
  double pesq = std::numeric_limits<double>::quiet_NaN();
  double pesq_noisy = std::numeric_limits<double>::quiet_NaN();
  double si_sdri_db() const { return si_sdr_db - si_sdr_noisy_db; }
};

// Where a run's wall time went, summed over the steps trained in this run (train prints it per
// step). The trainer's parts are timed on its own thread; `data` is the loader threads' time,
// which overlaps the steps (only `data_wait_s` of it held the trainer up).
struct StepBreakdown {
  int64_t steps = 0;
  double data_wait_s = 0;   // waiting for the loader's next batch
  double to_device_s = 0;   // batch into tensors (and onto the device)
  double features_s = 0;    // STFT of the noisy batch and its compressed features
  double forward_s = 0;     // the network's mask, masking and inverse STFT
  double loss_s = 0;        // STFT of the clean batch and the loss terms
  double backward_s = 0;    // gradients
  double all_reduce_s = 0;  // the ranks agreeing on gradients, loss and stop (c10d; ~0 alone)
  double optimizer_s = 0;   // gradient clipping and the Adam step
  // With batch_parts > 1 the parts run at once and the times above (features to backward) are
  // those of part 0; this is the rest of the step's parallel section: waiting for the slowest
  // part, and summing the parts' gradients and BatchNorm statistics.
  double parts_wait_s = 0;
  double validation_s = 0;  // validations, model and resume-state writes
  DataProfile data;
};

struct TrainResult {
  int64_t steps = 0;
  ValidationResult best;   // of the saved model
  ValidationResult first;  // the first validation of this run (or of the untrained model)
  // Training throughput: audio seconds trained per wall second of the training steps, waiting
  // for data included, validation and state writes not.
  double audio_seconds_per_second = 0;  // of all ranks together
  StepBreakdown breakdown;
  std::string blas;  // the BLAS library LibTorch's matrix products ran on (blas_description())
  int ranks = 1;     // processes of the job (or simulated ranks)
  int64_t global_batch_size = 0;  // examples per step over all ranks
  int batch_parts = 1;            // parts each batch was split into (TrainOptions::batch_parts)
  int threads = 1;                // LibTorch threads of this process
  bool interrupted = false;       // ended early by `stop` (in a job: of any rank)
  std::string model_path, log_path, resume_path;
};

// What the network sees for a batch of noisy waveforms [B, N]: the complex spectrogram
// [B, bins, frames] and the features [B, 1, bins, frames]. The same functions as inference
// (TensorFrontEnd::analyze/features).
struct NetworkInput {
  torch::Tensor spec;
  torch::Tensor features;
};
// The learning rate of step `step` (0-based) of `total`.
double learning_rate_at(const TrainOptions& options, int64_t step, int64_t total);

NetworkInput network_input(const TensorFrontEnd& front_end, const torch::Tensor& noisy);

// Which BLAS this process's LibTorch calls for matrix products: the library that the dynamic
// linker resolved libblas.so.3 to (Debian's alternatives choose it), with OpenBLAS's own
// configuration string (version, core, threading) when it is OpenBLAS, e.g.
// "OpenBLAS 0.3.21 ... (/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3)".
std::string blas_description();

// Runs training. `message` receives one-line notices (data summary, validations, resume);
// `stop` (e.g. set by SIGINT) ends the run early after saving the resume state. Throws
// denoise::Error for bad options, unusable data or an unavailable device.
TrainResult train(const TrainOptions& options,
                  const std::function<void(const std::string&)>& message,
                  const std::atomic<bool>* stop = nullptr, bool progress_bar = true);

}  // namespace denoise
