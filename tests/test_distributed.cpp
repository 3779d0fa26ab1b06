// Data-parallel training's parts (models/include/denoise/distributed.h): the launcher variables,
// Slurm host lists, the per-rank seeds, and a real Gloo process group of two ranks (two threads of
// this process on the loopback device) whose averaged steps match one process standing in for
// both. The end-to-end runs of `train` as several processes are in cli/test_train_dist_cli.sh.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "denoise/distributed.h"
#include "denoise/error.h"

namespace denoise {
namespace {

using Env = std::map<std::string, std::string>;

const Env kTorchrun = {{"RANK", "1"},
                       {"WORLD_SIZE", "4"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "10.0.0.5"},
                       {"MASTER_PORT", "29400"}};

std::string error_of(const Env& env, const std::string& launcher = "auto", int port = 0) {
  try {
    launch_environment(env, launcher, port);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnvironment, NoLauncherIsOneProcess) {
  EXPECT_FALSE(launch_environment({}, "auto", 0));
  EXPECT_FALSE(launch_environment({{"HOME", "/root"}}, "auto", 0));
  EXPECT_FALSE(launch_environment(kTorchrun, "none", 0));  // told to ignore it
}

TEST(LaunchEnvironment, Torchrun) {
  const auto w = launch_environment(kTorchrun, "auto", 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->launcher, "torchrun");
  EXPECT_EQ(w->rank, 1);
  EXPECT_EQ(w->world_size, 4);
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->local_world_size, 2);
  EXPECT_EQ(w->master_addr, "10.0.0.5");
  EXPECT_EQ(w->master_port, 29400);
  EXPECT_FALSE(w->agent_store);
  EXPECT_EQ(w->rank_text(), "rank 1 of 4");
  EXPECT_EQ(launch_environment(kTorchrun, "torchrun", 29999)->master_port, 29999);
  // torchrun's agent hosts the store for its workers.
  Env agent = kTorchrun;
  agent["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  agent["TORCHELASTIC_RESTART_COUNT"] = "2";
  const auto a = launch_environment(agent, "auto", 0);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->agent_store);
  EXPECT_EQ(a->store_prefix, "/worker/attempt_2");
  // A job of one is a single process.
  Env one = kTorchrun;
  one["WORLD_SIZE"] = "1";
  one["RANK"] = "0";
  EXPECT_FALSE(launch_environment(one, "auto", 0));
}

TEST(LaunchEnvironment, BadTorchrunVariablesAreOneLineErrors) {
  Env e = kTorchrun;
  e.erase("WORLD_SIZE");
  EXPECT_EQ(error_of(e), "launcher environment: WORLD_SIZE is not set");
  e = kTorchrun;
  e["RANK"] = "4";
  EXPECT_EQ(error_of(e), "launcher environment: RANK=4 is not below WORLD_SIZE=4");
  e["RANK"] = "one";
  EXPECT_NE(error_of(e).find("RANK=one is not a whole number"), std::string::npos);
  e = kTorchrun;
  e["MASTER_PORT"] = "70000";
  EXPECT_NE(error_of(e).find("MASTER_PORT=70000"), std::string::npos);
  e.erase("MASTER_PORT");
  EXPECT_EQ(error_of(e), "launcher environment: MASTER_PORT is not set");
  e = kTorchrun;
  e.erase("MASTER_ADDR");
  EXPECT_EQ(error_of(e), "launcher environment: MASTER_ADDR is not set");
  EXPECT_NE(error_of({}, "torchrun").find("WORLD_SIZE is not set"), std::string::npos);
  EXPECT_NE(error_of({}, "slurm").find("SLURM_NTASKS is not set"), std::string::npos);
  EXPECT_NE(error_of({}, "mpi").find("--launcher must be"), std::string::npos);
}

TEST(LaunchEnvironment, Slurm) {
  Env e = {{"SLURM_PROCID", "3"},  {"SLURM_NTASKS", "8"},  {"SLURM_STEP_NUM_TASKS", "4"},
           {"SLURM_LOCALID", "1"}, {"SLURM_STEP_ID", "0"}, {"SLURM_JOB_NODELIST", "gpu[07-08]"}};
  auto w = launch_environment(e, "auto", 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->launcher, "slurm");
  EXPECT_EQ(w->rank, 3);
  EXPECT_EQ(w->world_size, 4);  // the step's tasks, not the allocation's
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->master_addr, "gpu07");
  EXPECT_EQ(w->master_port, 29500);
  EXPECT_EQ(launch_environment(e, "auto", 31000)->master_port, 31000);
  // A batch script that names the master (MASTER_ADDR/PORT) stays a Slurm job.
  e["MASTER_ADDR"] = "login1";
  e["MASTER_PORT"] = "31001";
  w = launch_environment(e, "auto", 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->launcher, "slurm");
  EXPECT_EQ(w->master_addr, "login1");
  EXPECT_EQ(w->master_port, 31001);
  // The batch script's own shell is not a task of srun.
  e.erase("SLURM_STEP_ID");
  EXPECT_FALSE(launch_environment(e, "auto", 0));
  e["SLURM_STEP_ID"] = "0";
  e.erase("MASTER_ADDR");
  e.erase("SLURM_JOB_NODELIST");
  EXPECT_NE(error_of(e).find("no node list"), std::string::npos);
  e["SLURM_NODELIST"] = "node1";
  e["SLURM_PROCID"] = "4";
  EXPECT_NE(error_of(e).find("SLURM_PROCID=4 is not below the task count 4"), std::string::npos);
}

TEST(SlurmHostList, FirstHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("gpu1,gpu2"), "gpu1");
  EXPECT_EQ(first_slurm_host("node[03-05,9],gpu1"), "node03");
  EXPECT_EQ(first_slurm_host("n[8-10]"), "n8");
  EXPECT_EQ(first_slurm_host("rack[2-3]-node[010-012]"), "rack2-node010");
  EXPECT_EQ(first_slurm_host("a-b.example.org"), "a-b.example.org");
  for (const char* bad : {"", ",x", "n[", "n[]", "n]1"}) {
    EXPECT_THROW(first_slurm_host(bad), Error) << bad;
  }
}

TEST(RankSeed, RankZeroKeepsTheSeedOthersDiffer) {
  EXPECT_EQ(rank_seed(7, 0), 7u);
  EXPECT_NE(rank_seed(7, 1), 7u);
  EXPECT_NE(rank_seed(7, 1), rank_seed(7, 2));
  EXPECT_NE(rank_seed(7, 1), rank_seed(8, 1));
  EXPECT_EQ(rank_seed(7, 3), rank_seed(7, 3));
}

// ---------------------------------------------------------------- a real group of two threads

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t n = sizeof a;
  if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &n) != 0)
    throw std::runtime_error("no free port");
  close(s);
  return ntohs(a.sin_port);
}

LaunchEnvironment local_rank_of(int rank, int world, int port) {
  LaunchEnvironment w;
  w.launcher = "torchrun";
  w.rank = rank;
  w.world_size = world;
  w.master_addr = "127.0.0.1";
  w.master_port = port;
  return w;
}

// A module with a BatchNorm, so that its running statistics take part.
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(1, 3, 3)));
    norm = register_module("norm", torch::nn::BatchNorm1d(3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(conv(x)).square().mean(); }
  torch::nn::Conv1d conv{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(Tiny);

// Batch (rank, step), made before any thread starts (the global generator is not for threads).
const std::vector<std::vector<torch::Tensor>>& batches() {
  static const auto table = [] {
    torch::manual_seed(11);
    std::vector<std::vector<torch::Tensor>> t(3);
    for (auto& step : t)
      for (int rank = 0; rank < 2; ++rank) step.push_back(torch::randn({4, 1, 16}));
    return t;
  }();
  return table;
}
torch::Tensor batch_of(int rank, int step) { return batches()[step][rank]; }

// Three Adam steps of `module` on batches (rank, step); returns all weights and buffers.
torch::Tensor train_tiny(Tiny module, ProcessGroup* group, int local_shards, int rank,
                         bool nan_at_step_1 = false) {
  torch::optim::Adam adam(module->parameters(), torch::optim::AdamOptions(0.01));
  StepSync sync(*module, group, local_shards);
  for (int step = 0; step < 3; ++step) {
    adam.zero_grad();
    double loss = 0;
    bool finite = true;
    for (int k = 0; k < local_shards; ++k) {
      sync.begin_shard(k);
      torch::Tensor l = module->forward(batch_of(group ? rank : k, step));
      if (nan_at_step_1 && step == 1 && (group ? rank : k) == 1) l = l * NAN;
      const double v = l.item<double>();
      loss += v;
      if (!std::isfinite(v))
        finite = false;
      else if (finite)
        l.backward();
    }
    const StepAgreement a = sync.finish(loss, finite, false);
    EXPECT_EQ(a.finite, !(nan_at_step_1 && step == 1));
    if (a.finite) adam.step();
  }
  std::vector<torch::Tensor> all;
  for (const auto& p : module->parameters()) all.push_back(p.detach().flatten().clone());
  for (const auto& b : module->buffers())
    if (b.is_floating_point()) all.push_back(b.detach().flatten().clone());
  return torch::cat(all);
}

// Runs `body(rank, group)` on two threads, each rank of a real two-rank Gloo group.
template <typename Body>
std::vector<torch::Tensor> on_two_ranks(Body body) {
  const int port = free_port();
  auto run = [&](int rank) {
    auto group = ProcessGroup::join(local_rank_of(rank, 2, port), {});
    return body(rank, *group);
  };
  auto r1 = std::async(std::launch::async, run, 1);
  torch::Tensor t0 = run(0);
  return {t0, r1.get()};
}

TEST(ProcessGroup, CollectivesOnTwoRanks) {
  if (!ProcessGroup::gloo_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  const auto out = on_two_ranks([](int rank, ProcessGroup& g) {
    EXPECT_EQ(g.world_size(), 2);
    EXPECT_EQ(g.backend(), "gloo");
    torch::Tensor t = torch::full({3}, static_cast<float>(rank + 1));
    g.all_reduce_sum(t, "a test sum");
    torch::Tensor b = torch::full({2}, static_cast<float>(10 * (rank + 1)));
    g.broadcast_from_root(b, "a test broadcast");
    const std::string shared = g.share_from_root("text", [] { return std::string("from 0"); });
    EXPECT_EQ(shared, "from 0");
    g.barrier("a test barrier");
    return torch::cat({t, b});
  });
  for (const auto& t : out)
    EXPECT_TRUE(torch::equal(t, torch::tensor({3.f, 3.f, 3.f, 10.f, 10.f})));
}

TEST(StepSync, TwoRanksMatchOneProcessStandingInForBoth) {
  if (!ProcessGroup::gloo_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  batches();
  torch::manual_seed(3);
  Tiny start;
  auto copy_of = [&] {
    Tiny m;
    torch::NoGradGuard no_grad;
    auto src = start->named_parameters();
    for (auto& p : m->named_parameters()) p.value().copy_(src[p.key()]);
    return m;
  };
  for (const bool nan : {false, true}) {
    SCOPED_TRACE(nan ? "with a skipped step" : "");
    const auto ranks = on_two_ranks([&](int rank, ProcessGroup& g) {
      Tiny m = copy_of();
      if (rank == 1) {  // another start, which the broadcast replaces
        torch::NoGradGuard no_grad;
        for (auto& p : m->parameters()) p.add_(1.0);
      }
      broadcast_module(*m, g);
      return train_tiny(m, &g, 1, rank, nan);
    });
    const torch::Tensor alone = train_tiny(copy_of(), nullptr, 2, 0, nan);
    EXPECT_TRUE(torch::equal(ranks[0], ranks[1]));
    EXPECT_LE((ranks[0] - alone).abs().max().item<double>(), 1e-6);
    // One batch per step is not the same training: the check above can fail.
    const torch::Tensor one = train_tiny(copy_of(), nullptr, 1, 0, false);
    EXPECT_GT((ranks[0] - one).abs().max().item<double>(), 1e-4);
  }
}

TEST(ProcessGroup, MissingRankTimesOutWithOneLine) {
  if (!ProcessGroup::gloo_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  const int port = free_port();
  ProcessGroupOptions o;
  o.timeout_seconds = 1;
  try {
    ProcessGroup::join(local_rank_of(0, 2, port), o);
    FAIL() << "joined without rank 1";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rank 1 did not join the job at 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace denoise
