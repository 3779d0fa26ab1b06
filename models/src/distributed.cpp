#include "denoise/distributed.h"

#include <torch/version.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "denoise/error.h"

// The Gloo (and NCCL) process groups are compiled only with USE_C10D_GLOO (USE_C10D_NCCL)
// defined, as LibTorch's own build does; models/CMakeLists.txt defines them, with DENOISE_HAVE_GLOO
// where Gloo's headers were found.
#ifdef DENOISE_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DENOISE_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

extern char** environ;

namespace denoise {

namespace {

// c10d's exception texts carry a C++ backtrace and source locations over several lines: the
// first line that says something.
std::string reason_of(const std::exception& e) {
  std::string text;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e))
    text = c10->what_without_backtrace();
  else
    text = e.what();
  std::string best;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    // "[/build/.../pair.cc:598] Connection closed by peer": drop the location.
    if (!line.empty() && line.front() == '[') {
      const size_t close = line.find("] ");
      if (close != std::string::npos) line = line.substr(close + 2);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty() && line.rfind("Exception raised from", 0) != 0) {
      best = line;
      break;
    }
    start = end + 1;
  }
  return best.empty() ? std::string("unknown error") : best;
}

int parse_int(const std::map<std::string, std::string>& env, const std::string& name, int lo,
              int hi) {
  const auto it = env.find(name);
  if (it == env.end()) throw Error("launcher environment: " + name + " is not set");
  const std::string& text = it->second;
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < lo || value > hi)
    throw Error("launcher environment: " + name + "=" + text + " is not a whole number within " +
                std::to_string(lo) + "-" + std::to_string(hi));
  return static_cast<int>(value);
}

const std::string* find(const std::map<std::string, std::string>& env, const std::string& name) {
  const auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

constexpr int kDefaultPort = 29500;
constexpr int kMaxRanks = 1 << 20;

std::optional<LaunchEnvironment> from_torchrun(const std::map<std::string, std::string>& env,
                                               int port) {
  LaunchEnvironment w;
  w.launcher = "torchrun";
  w.world_size = parse_int(env, "WORLD_SIZE", 1, kMaxRanks);
  w.rank = parse_int(env, "RANK", 0, kMaxRanks);
  if (w.rank >= w.world_size)
    throw Error("launcher environment: RANK=" + std::to_string(w.rank) +
                " is not below WORLD_SIZE=" + std::to_string(w.world_size));
  w.local_rank = find(env, "LOCAL_RANK") ? parse_int(env, "LOCAL_RANK", 0, kMaxRanks) : 0;
  w.local_world_size =
      find(env, "LOCAL_WORLD_SIZE") ? parse_int(env, "LOCAL_WORLD_SIZE", 1, kMaxRanks) : 0;
  if (w.world_size == 1) return std::nullopt;
  const std::string* addr = find(env, "MASTER_ADDR");
  if (!addr || addr->empty()) throw Error("launcher environment: MASTER_ADDR is not set");
  w.master_addr = *addr;
  w.master_port = port > 0 ? port : parse_int(env, "MASTER_PORT", 1, 65535);
  const std::string* agent = find(env, "TORCHELASTIC_USE_AGENT_STORE");
  w.agent_store = agent && *agent == "True" && port <= 0;
  if (w.agent_store) {
    const std::string* attempt = find(env, "TORCHELASTIC_RESTART_COUNT");
    w.store_prefix = "/worker/attempt_" + (attempt ? *attempt : std::string("0"));
  }
  return w;
}

std::optional<LaunchEnvironment> from_slurm(const std::map<std::string, std::string>& env,
                                            int port) {
  LaunchEnvironment w;
  w.launcher = "slurm";
  // srun sets the step's own counts; SLURM_NTASKS is the allocation's.
  w.world_size = find(env, "SLURM_STEP_NUM_TASKS")
                     ? parse_int(env, "SLURM_STEP_NUM_TASKS", 1, kMaxRanks)
                     : parse_int(env, "SLURM_NTASKS", 1, kMaxRanks);
  w.rank = parse_int(env, "SLURM_PROCID", 0, kMaxRanks);
  if (w.rank >= w.world_size)
    throw Error("launcher environment: SLURM_PROCID=" + std::to_string(w.rank) +
                " is not below the task count " + std::to_string(w.world_size));
  w.local_rank = find(env, "SLURM_LOCALID") ? parse_int(env, "SLURM_LOCALID", 0, kMaxRanks) : 0;
  // SLURM_STEP_TASKS_PER_NODE is e.g. "2(x3),1": its first figure is an upper bound here.
  w.local_world_size = 0;
  if (w.world_size == 1) return std::nullopt;
  if (const std::string* addr = find(env, "MASTER_ADDR"); addr && !addr->empty()) {
    w.master_addr = *addr;
  } else {
    const std::string* list = nullptr;
    for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"})
      if ((list = find(env, name))) break;
    if (!list)
      throw Error(
          "launcher environment: Slurm gives no node list (SLURM_STEP_NODELIST, "
          "SLURM_JOB_NODELIST or SLURM_NODELIST) and MASTER_ADDR is not set");
    w.master_addr = first_slurm_host(*list);
  }
  if (port > 0)
    w.master_port = port;
  else if (find(env, "MASTER_PORT"))
    w.master_port = parse_int(env, "MASTER_PORT", 1, 65535);
  else
    w.master_port = kDefaultPort;
  return w;
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// c10d logs each failed connection attempt and bind to stderr besides throwing; during the
// rendezvous its exception is the one line the user gets, so its logging is held back there.
// (LibTorch builds on glog, as Debian's does; others, e.g. PyTorch's wheels, have c10's own
// logging, set through TORCH_CPP_LOG_LEVEL, and are left as they are.)
class QuietLogging {
 public:
#ifdef C10_USE_GLOG
  QuietLogging() : saved_(FLAGS_minloglevel) { FLAGS_minloglevel = google::GLOG_FATAL; }
  ~QuietLogging() { FLAGS_minloglevel = saved_; }
#else
  QuietLogging() = default;
#endif
  QuietLogging(const QuietLogging&) = delete;
  QuietLogging& operator=(const QuietLogging&) = delete;

#ifdef C10_USE_GLOG
 private:
  int saved_;
#endif
};

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

}  // namespace

std::string LaunchEnvironment::rank_text() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size);
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  return env;
}

std::optional<LaunchEnvironment> launch_environment(const std::map<std::string, std::string>& env,
                                                    const std::string& launcher, int port) {
  if (port < 0 || port > 65535) throw Error("--master-port must be within 1-65535");
  if (launcher == "none") return std::nullopt;
  if (launcher == "torchrun") return from_torchrun(env, port);
  if (launcher == "slurm") return from_slurm(env, port);
  if (launcher != "auto")
    throw Error("--launcher must be auto, none, torchrun or slurm (got \"" + launcher + "\")");
  for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"})
    if (find(env, name)) {
      // MASTER_ADDR/MASTER_PORT alone are also how Slurm scripts name the master.
      if ((std::strcmp(name, "MASTER_ADDR") == 0 || std::strcmp(name, "MASTER_PORT") == 0) &&
          find(env, "SLURM_PROCID"))
        continue;
      return from_torchrun(env, port);
    }
  if (find(env, "SLURM_PROCID")) {
    // A batch script's own shell (sbatch, salloc) has SLURM_PROCID too but is not a task of srun
    // (no SLURM_STEP_ID): one process, as when started by hand.
    if (!find(env, "SLURM_STEP_ID") && !find(env, "SLURM_STEPID")) return std::nullopt;
    return from_slurm(env, port);
  }
  return std::nullopt;
}

std::string first_slurm_host(const std::string& list) {
  // Grammar: host[,host...]; a host is text with [ranges] groups, ranges "a-b" or "a" separated
  // by commas, zero padding kept ("n[08-10]" -> n08).
  std::string host;
  size_t i = 0;
  while (i < list.size() && list[i] != ',') {
    if (list[i] == '[') {
      const size_t close = list.find(']', i);
      if (close == std::string::npos) throw Error("Slurm node list \"" + list + "\": no ']'");
      const std::string group = list.substr(i + 1, close - i - 1);
      size_t n = 0;
      while (n < group.size() && std::isdigit(static_cast<unsigned char>(group[n]))) ++n;
      if (n == 0) throw Error("Slurm node list \"" + list + "\": no number after '['");
      host += group.substr(0, n);
      i = close + 1;
    } else if (list[i] == ']') {
      throw Error("Slurm node list \"" + list + "\": ']' without '['");
    } else {
      host += list[i++];
    }
  }
  if (host.empty()) throw Error("Slurm node list \"" + list + "\" names no host");
  return host;
}

uint64_t rank_seed(uint64_t seed, int rank) {
  if (rank == 0) return seed;
  // splitmix64 of (seed, rank): neighbouring seeds and ranks give unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(rank + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// ---------------------------------------------------------------- process group

struct ProcessGroup::Impl {
  LaunchEnvironment where;
  ProcessGroupOptions options;
  c10::intrusive_ptr<c10d::Store> store;  // ours, under "denoise/"
#ifdef DENOISE_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef DENOISE_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::chrono::milliseconds timeout{0};

  std::string master() const { return where.master_addr + ":" + std::to_string(where.master_port); }
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const {
    throw Error(what + " failed: " + reason_of(e) +
                " (a rank stopped, or the network between the ranks failed; timeout " +
                seconds_text(options.timeout_seconds) + ")");
  }
  template <typename Run>
  void collective(const std::string& what, Run&& run) {
    try {
      auto work = run();
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

const LaunchEnvironment& ProcessGroup::where() const { return impl_->where; }
int ProcessGroup::rank() const { return impl_->where.rank; }
int ProcessGroup::world_size() const { return impl_->where.world_size; }
bool ProcessGroup::gloo_available() {
#ifdef DENOISE_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

std::string ProcessGroup::backend() const {
#ifdef DENOISE_WITH_NCCL
  if (impl_->nccl) return "nccl";
#endif
  return "gloo";
}

std::shared_ptr<ProcessGroup> ProcessGroup::join(const LaunchEnvironment& where,
                                                 const ProcessGroupOptions& options) {
  if (!(options.timeout_seconds > 0 && options.timeout_seconds <= 7 * 86400.0))
    throw Error("--dist-timeout must be within 0-604800 s");
  auto impl = std::make_unique<Impl>();
  impl->where = where;
  impl->options = options;
  impl->timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  const bool host_store = where.rank == 0 && !where.agent_store;
  const QuietLogging quiet;

  c10::intrusive_ptr<c10d::Store> base;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(where.master_port);
    so.isServer = host_store;
    so.waitWorkers = false;  // the join check below names the missing ranks
    so.timeout = impl->timeout;
    base = c10::make_intrusive<c10d::TCPStore>(where.master_addr, so);
  } catch (const std::exception& e) {
    const std::string reason = reason_of(e);
    if (host_store && reason.find("in use") != std::string::npos)
      throw Error("cannot host the job's rendezvous at " + impl->master() +
                  ": the port is in use (choose another with --master-port or MASTER_PORT)");
    if (host_store)
      throw Error("cannot host the job's rendezvous at " + impl->master() + ": " + reason);
    throw Error("cannot reach the job's master at " + impl->master() + " within " +
                seconds_text(options.timeout_seconds) + ": " + reason);
  }
  if (!where.store_prefix.empty())
    base = c10::make_intrusive<c10d::PrefixStore>(where.store_prefix, base);
  impl->store = c10::make_intrusive<c10d::PrefixStore>("denoise", base);
  auto& store = *impl->store;

  // Every rank once, all with one world size.
  const std::string me = std::to_string(where.rank);
  try {
    if (store.add("rank_count/" + me, 1) > 1)
      throw Error("two processes of this job have rank " + me + " (check the launcher's RANK)");
    store.set("world_size/" + me, bytes_of(std::to_string(where.world_size)));
    std::vector<std::string> keys;
    for (int r = 0; r < where.world_size; ++r) keys.push_back("world_size/" + std::to_string(r));
    auto check_world = [&](int r) {
      const std::string theirs = string_of(store.get(keys[r]));
      if (theirs != std::to_string(where.world_size)) {
        if (host_store) {
          // Rank r reads this rank's world size from the store this process hosts: let it do
          // so (it marks it) before exiting takes the store away, so that it, too, says why.
          try {
            store.wait({"world_read/" + std::to_string(r)}, std::chrono::seconds(5));
          } catch (const std::exception&) {
          }
        }
        throw Error("the ranks disagree on the world size: rank " + std::to_string(r) + " has " +
                    theirs + ", this rank " + std::to_string(where.world_size));
      }
    };
    try {
      // Rank 0's first, so that a rank that disagrees with it says so at once.
      store.wait({keys[0]}, impl->timeout);
      if (where.rank != 0) {
        const std::string theirs = string_of(store.get(keys[0]));
        store.set("world_read/" + me, bytes_of("1"));
        if (theirs != std::to_string(where.world_size))
          throw Error("the ranks disagree on the world size: rank 0 has " + theirs +
                      ", this rank " + std::to_string(where.world_size));
      }
      store.wait(keys, impl->timeout);
    } catch (const Error&) {
      throw;
    } catch (const std::exception&) {
      std::string missing;
      int count = 0;
      for (int r = 0; r < where.world_size; ++r)
        if (!store.check({keys[r]})) {
          if (count < 8) missing += (count ? ", " : "") + std::to_string(r);
          ++count;
        }
      if (count > 8) missing += ", ...";
      throw Error("rank" + std::string(count > 1 ? "s " : " ") + missing +
                  " did not join the job at " + impl->master() + " within " +
                  seconds_text(options.timeout_seconds) + " (world size " +
                  std::to_string(where.world_size) + ")");
    }
    for (int r = 1; r < where.world_size; ++r) check_world(r);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("the rendezvous at " + impl->master() + " failed: " + reason_of(e) +
                (host_store ? "" : " (did rank 0 stop?)"));
  }

  auto group_store = c10::make_intrusive<c10d::PrefixStore>("group", impl->store);
  try {
#ifdef DENOISE_WITH_NCCL
    if (options.device == "cuda") {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = impl->timeout;
      impl->nccl =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, where.rank, where.world_size, o);
    }
    if (!impl->nccl)
#endif
    {
#ifndef DENOISE_HAVE_GLOO
      throw Error(
          "this build of train has no Gloo process group (Gloo's headers were missing when it "
          "was built: install libgloo-dev and build again)");
#else
      auto o = c10d::ProcessGroupGloo::Options::create(impl->timeout);
      // GLOO_SOCKET_IFNAME as in PyTorch; on one machine the loopback device needs no name
      // lookup; else the address this host's name resolves to.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname)
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(where.master_addr))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl->gloo =
          c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, where.rank, where.world_size, o);
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("cannot form the process group at " + impl->master() + ": " + reason_of(e));
  }
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

void ProcessGroup::all_reduce_sum(torch::Tensor& tensor, const std::string& what) {
  std::vector<torch::Tensor> list;
#ifdef DENOISE_WITH_NCCL
  if (impl_->nccl) {
    list = {tensor};
    impl_->collective(what, [&] { return impl_->nccl->allreduce(list); });
    return;
  }
#endif
#ifdef DENOISE_HAVE_GLOO
  const bool host = tensor.device().is_cpu();
  list = {host ? tensor : tensor.to(torch::kCPU)};
  impl_->collective(what, [&] { return impl_->gloo->allreduce(list); });
  if (!host) tensor.copy_(list[0]);
#endif
}

void ProcessGroup::broadcast_from_root(torch::Tensor& tensor, const std::string& what) {
  std::vector<torch::Tensor> list;
#ifdef DENOISE_WITH_NCCL
  if (impl_->nccl) {
    list = {tensor};
    impl_->collective(what, [&] { return impl_->nccl->broadcast(list); });
    return;
  }
#endif
#ifdef DENOISE_HAVE_GLOO
  const bool host = tensor.device().is_cpu();
  list = {host ? tensor : tensor.to(torch::kCPU)};
  impl_->collective(what, [&] { return impl_->gloo->broadcast(list); });
  if (!host) tensor.copy_(list[0]);
#endif
}

void ProcessGroup::barrier(const std::string& what) {
  // An all-reduce rather than c10d's barrier: the same path, and the same timeout, as the steps.
  torch::Tensor one = torch::ones({1});
  all_reduce_sum(one, what);
}

std::string ProcessGroup::share_from_root(const std::string& key,
                                          const std::function<std::string()>& produce) {
  const std::string k = "shared/" + key;
  try {
    if (rank() == 0) {
      // "!" + the bytes, or "?" + the message of the error rank 0 met (which it throws too).
      std::string value;
      std::exception_ptr error;
      try {
        value = "!" + produce();
      } catch (const std::exception& e) {
        error = std::current_exception();
        value = std::string("?") + e.what();
      }
      impl_->store->set(k, bytes_of(value));
      if (error) std::rethrow_exception(error);
      return value.substr(1);
    }
    impl_->store->wait({k}, impl_->timeout);
    const std::string value = string_of(impl_->store->get(k));
    if (!value.empty() && value[0] == '!') return value.substr(1);
    throw Error("rank 0 failed: " + value.substr(1));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    if (rank() == 0) throw;
    impl_->fail("receiving " + key + " from rank 0", e);
  }
}

void broadcast_module(torch::nn::Module& module, ProcessGroup& group) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> all = module.parameters();
  for (const auto& b : module.buffers()) all.push_back(b);
  if (all.empty()) return;
  // One collective; doubles hold float32 weights and integer counters exactly.
  std::vector<torch::Tensor> flat;
  for (const auto& t : all) flat.push_back(t.detach().to(torch::kDouble).flatten());
  torch::Tensor joined = torch::cat(flat);
  group.broadcast_from_root(joined, "the initial weights from rank 0");
  int64_t offset = 0;
  for (auto& t : all) {
    const int64_t n = t.numel();
    t.copy_(joined.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

// ---------------------------------------------------------------- steps

StepSync::StepSync(torch::nn::Module& module, ProcessGroup* group, int local_shards,
                   int64_t first_step)
    : group_(group), local_shards_(local_shards), step_(first_step) {
  if (local_shards < 1) throw Error("StepSync: local_shards must be >= 1");
  params_ = module.parameters();
  for (const auto& b : module.buffers()) {
    all_buffers_.push_back(b);
    if (b.is_floating_point()) float_buffers_.push_back(b);
  }
}

void StepSync::begin_shard(int shard) {
  torch::NoGradGuard no_grad;
  if (shard == 0) {
    snapshot_.clear();
    for (const auto& b : all_buffers_) snapshot_.push_back(b.clone());
    buffer_sum_.clear();
    return;
  }
  // The previous batch's statistics into the sum; this batch starts from the step's buffers, as
  // the batch of another rank would.
  for (size_t i = 0; i < float_buffers_.size(); ++i) {
    if (buffer_sum_.size() < float_buffers_.size())
      buffer_sum_.push_back(float_buffers_[i].clone());
    else
      buffer_sum_[i].add_(float_buffers_[i]);
  }
  for (size_t i = 0; i < all_buffers_.size(); ++i) all_buffers_[i].copy_(snapshot_[i]);
}

StepAgreement StepSync::finish(double local_loss_sum, bool local_finite, bool local_stop) {
  torch::NoGradGuard no_grad;
  StepAgreement a;
  ++step_;
  const int shards = local_shards_ * (group_ ? group_->world_size() : 1);
  if (local_shards_ > 1)
    for (size_t i = 0; i < float_buffers_.size(); ++i)
      float_buffers_[i].add_(buffer_sum_[i]);  // the last batch's plus the others'
  if (group_) {
    // One all-reduce per step: gradients, buffers, then [loss, non-finite count, stop count].
    std::vector<torch::Tensor> parts;
    for (const auto& p : params_)
      parts.push_back(p.grad().defined() ? p.grad().flatten()
                                         : torch::zeros({p.numel()}, p.options()));
    for (const auto& b : float_buffers_) parts.push_back(b.flatten().to(torch::kFloat32));
    const auto options = torch::TensorOptions().dtype(torch::kFloat32);
    parts.push_back(torch::tensor({static_cast<float>(local_finite ? local_loss_sum : 0.0),
                                   local_finite ? 0.0f : 1.0f, local_stop ? 1.0f : 0.0f},
                                  options)
                        .to(params_.empty() ? torch::kCPU : params_.front().device()));
    torch::Tensor flat = torch::cat(parts);
    try {
      group_->all_reduce_sum(flat, "the all-reduce of step " + std::to_string(step_));
    } catch (const Error&) {
      for (size_t i = 0; i < all_buffers_.size() && i < snapshot_.size(); ++i)
        all_buffers_[i].copy_(snapshot_[i]);
      throw;
    }
    const torch::Tensor tail = flat.narrow(0, flat.size(0) - 3, 3).to(torch::kCPU);
    a.loss = tail[0].item<double>() / shards;
    a.finite = tail[1].item<float>() == 0;
    a.stop = tail[2].item<float>() > 0;
    int64_t offset = 0;
    if (a.finite) {
      flat.div_(static_cast<double>(shards));
      for (auto& p : params_) {
        const int64_t n = p.numel();
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        p.mutable_grad().copy_(flat.narrow(0, offset, n).view(p.sizes()));
        offset += n;
      }
      for (auto& b : float_buffers_) {
        const int64_t n = b.numel();
        b.copy_(flat.narrow(0, offset, n).view(b.sizes()));
        offset += n;
      }
    }
  } else {
    a.loss = local_loss_sum / shards;
    a.finite = local_finite;
    a.stop = local_stop;
    if (a.finite && shards > 1) {
      for (auto& p : params_)
        if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(shards));
      for (auto& b : float_buffers_) b.div_(static_cast<double>(shards));
    }
  }
  if (!a.finite)
    for (size_t i = 0; i < all_buffers_.size() && i < snapshot_.size(); ++i)
      all_buffers_[i].copy_(snapshot_[i]);
  return a;
}

void dump_module_weights(const torch::nn::Module& module, const std::string& path) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : module.parameters()) parts.push_back(p.detach().flatten());
  for (const auto& b : module.buffers())
    if (b.is_floating_point()) parts.push_back(b.detach().flatten());
  const torch::Tensor flat = torch::cat(parts).to(torch::kCPU, torch::kFloat32).contiguous();
  const std::string temp = path + ".partial";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(flat.data_ptr<float>()),
              static_cast<std::streamsize>(flat.numel() * sizeof(float)));
    if (!out) throw Error(path + ": cannot write the weight dump");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0)
    throw Error(path + ": cannot rename the weight dump into place");
}

}  // namespace denoise
