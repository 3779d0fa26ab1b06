// Data-parallel training over LibTorch's own distributed layer (c10d): `train` as one rank of a
// job started by torchrun or Slurm's srun.
//
//   const auto where = launch_environment(process_environment(), "auto", 0);  // nullopt: alone
//   auto group = ProcessGroup::join(*where, {});   // TCPStore rendezvous, then Gloo (or NCCL)
//   StepSync sync(*net, group.get(), 1);
//   each step: sync.begin_shard(0); forward; backward; sync.finish(loss, finite, stop); step
//
// Every rank draws its own batches (rank_seed), computes its gradients, and StepSync sums the
// gradients, the normalisation statistics, the loss and the skip/stop flags over all ranks in one
// all-reduce, so that every rank takes the same optimizer step and agrees on skipping it. Rank 0
// alone validates and writes files (trainer.cpp). The rendezvous follows PyTorch's env://
// convention: rank 0 hosts a TCPStore at MASTER_ADDR:MASTER_PORT, unless torchrun's agent hosts
// it already (TORCHELASTIC_USE_AGENT_STORE), in which case every rank is a client of the agent's
// store under its "/worker/attempt_N" prefix.
//
// Faults: every collective and the rendezvous are bounded by the group's timeout; a peer that
// dies closes its connections, which the others see at their next collective. Either way the
// call throws denoise::Error with one line naming what failed.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace denoise {

// Where this process stands in a job, as its launcher tells it.
struct LaunchEnvironment {
  std::string launcher;  // "torchrun" or "slurm"
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // among the job's processes on this machine (the CUDA device index)
  int local_world_size = 1;  // the job's processes on this machine (0: unknown)
  std::string master_addr;
  int master_port = 0;
  // torchrun's agent already hosts the store: every rank connects as a client, keys prefixed.
  bool agent_store = false;
  std::string store_prefix;
  // "rank 1 of 2"
  std::string rank_text() const;
};

// The process's environment variables.
std::map<std::string, std::string> process_environment();

// Reads the launcher's variables. `launcher`: "auto" (torchrun's RANK/WORLD_SIZE/... when any
// is set, else Slurm's SLURM_PROCID/SLURM_NTASKS, else a single process), "none" (a single
// process whatever the environment), "torchrun" or "slurm" (that launcher's variables must be
// there). `port` > 0 overrides MASTER_PORT. Slurm's master is MASTER_ADDR when set, else the first
// host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST / SLURM_NODELIST; its port MASTER_PORT when
// set, else 29500. Returns nullopt for a single process (also for a job of one). Throws
// denoise::Error naming the variable for missing, malformed or inconsistent values.
std::optional<LaunchEnvironment> launch_environment(const std::map<std::string, std::string>& env,
                                                    const std::string& launcher, int port);

// The first host of a Slurm host list: "node[03-05,9],gpu1" -> "node03". Throws denoise::Error
// for an empty or malformed list.
std::string first_slurm_host(const std::string& list);

// The seed rank `rank` draws its batches with: the run's seed for rank 0 (a job of one draws what
// a single process draws), a different well-mixed seed for each other rank.
uint64_t rank_seed(uint64_t seed, int rank);

struct ProcessGroupOptions {
  // Bound of the rendezvous and of every collective: a rank that is gone or stuck for this long
  // ends the others. Must exceed the longest pause of rank 0 between steps (a validation and the
  // saving of the model and state).
  double timeout_seconds = 300;
  // "cpu": Gloo. "cuda": NCCL when built with DENOISE_WITH_NCCL, else Gloo (through host copies).
  std::string device = "cpu";
};

// This process's membership of a job: a c10d process group over a TCPStore rendezvous. Not
// thread-safe: one thread makes all calls, and every rank makes the same calls in the same order.
class ProcessGroup {
 public:
  // Joins the job: rendezvous at the master, a check that every rank is there once and all agree
  // on the world size, then the process group. Throws denoise::Error when the master cannot be
  // reached, its port is in use, a rank is missing, doubled or disagrees, or on timeout.
  static std::shared_ptr<ProcessGroup> join(const LaunchEnvironment& where,
                                            const ProcessGroupOptions& options);
  ~ProcessGroup();
  // Whether this build has the Gloo process group (models/CMakeLists.txt: Gloo's headers found).
  static bool gloo_available();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  const LaunchEnvironment& where() const;
  int rank() const;
  int world_size() const;
  std::string backend() const;  // "gloo" or "nccl"

  // In place: the sum of `tensor` over all ranks (same shape and type on every rank). `what`
  // names the collective in the error (e.g. "the gradients of step 12").
  void all_reduce_sum(torch::Tensor& tensor, const std::string& what);
  // In place: rank 0's `tensor` on every rank.
  void broadcast_from_root(torch::Tensor& tensor, const std::string& what);
  // Rank 0 calls `produce` and every rank gets its result (through the store; for files that
  // only rank 0 reads, such as the resume state). `key` must be unique per call.
  std::string share_from_root(const std::string& key, const std::function<std::string()>& produce);
  void barrier(const std::string& what);

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Rank 0's parameters and buffers on every rank (the start of a job, or of a resumed one).
void broadcast_module(torch::nn::Module& module, ProcessGroup& group);

// What the ranks agreed on at the end of a step.
struct StepAgreement {
  double loss = 0;     // the mean loss over every batch of the step (all ranks)
  bool finite = true;  // every batch's loss was finite: take the step (else every rank skips it)
  bool stop = false;   // some rank was asked to stop (SIGINT/SIGTERM): every rank stops after it
};

// The gradient averaging of data-parallel steps. Per step, for each of the `local_shards` batches
// this process draws (1; N where one process stands in for N ranks, --simulate-ranks):
// begin_shard(k), forward and backward (gradients accumulate), then finish() once. Afterwards the
// gradients are the mean over all batches of the step, the floating-point buffers (BatchNorm's
// running statistics) the mean of what each batch's forward made of them, on every rank the same.
// With no group and one shard, finish() touches nothing: a single process trains as it always
// did. A skipped step (a non-finite loss anywhere) restores the buffers.
class StepSync {
 public:
  // `first_step`: the steps taken before (a resumed run), for the step numbers in errors.
  StepSync(torch::nn::Module& module, ProcessGroup* group, int local_shards,
           int64_t first_step = 0);
  int local_shards() const { return local_shards_; }
  int64_t step() const { return step_; }
  void begin_shard(int shard);
  // Throws denoise::Error when the all-reduce fails, with the buffers as before the step (the
  // weights, gradients aside, are those of the last step: a resume state saved then is sound).
  StepAgreement finish(double local_loss_sum, bool local_finite, bool local_stop);

 private:
  ProcessGroup* group_;
  int local_shards_;
  int64_t step_ = 0;  // steps finished (names the collectives in errors)
  std::vector<torch::Tensor> params_, float_buffers_, all_buffers_;
  std::vector<torch::Tensor> snapshot_, buffer_sum_;
};

// Writes the module's parameters and floating-point buffers, in their registration order, as raw
// little-endian float32 to `path` (a debugging aid: tests compare ranks' weights step by step).
void dump_module_weights(const torch::nn::Module& module, const std::string& path);

}  // namespace denoise
