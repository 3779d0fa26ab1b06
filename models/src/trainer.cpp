#include "denoise/trainer.h"

#include <dlfcn.h>

#include <ATen/Parallel.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "denoise/error.h"
#include "denoise/json_text.h"
#include "denoise/pesq.h"
#include "denoise/progress.h"
#include "denoise/resample.h"

namespace fs = std::filesystem;

namespace denoise {

FrontEndConfig default_model_front_end() {
  FrontEndConfig c;
  c.sample_rate_hz = 16000;
  c.n_fft = 320;
  c.hop_length = 160;
  c.window = WindowType::kSqrtHann;
  c.center = true;
  c.compression = Compression::kPower;
  c.power_exponent = 0.3;
  return c;
}

namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
T patched(const T& base, const nlohmann::json& patch, const std::string& section,
          const std::string& path) {
  if (!patch.is_object()) throw Error(path + ": \"" + section + "\" must be a JSON object");
  nlohmann::json j = base;
  for (auto it = patch.begin(); it != patch.end(); ++it)
    if (!j.contains(it.key()))
      throw Error(path + ": unknown key \"" + it.key() + "\" in \"" + section + "\"");
  j.merge_patch(patch);
  try {
    return j.get<T>();
  } catch (const std::exception& e) {
    throw Error(path + ": \"" + section + "\": " + e.what());
  }
}

std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

struct Paths {
  std::string model, log, resume;
};

Paths paths_for(const std::string& out) {
  fs::path base(out);
  base.replace_extension("");
  return {out, base.string() + ".log.jsonl", base.string() + ".resume.pt"};
}

torch::Tensor to_tensor(const std::vector<float>& v, int64_t rows, int64_t length,
                        const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(v.data()), {rows, length}, torch::kFloat32)
      .clone()
      .to(device);
}

// The threads of a step's batch parts: run(task) calls task(k) on thread k for every part, each
// thread with its own number of LibTorch threads, and returns when all are done, rethrowing the
// first part's error. The threads live as long as the run, so that LibTorch's per-thread state
// is made once.
class PartThreads {
 public:
  // Part k gets threads / parts LibTorch threads, one more for the first threads % parts.
  PartThreads(int parts, int threads) : errors_(static_cast<size_t>(parts)) {
    for (int k = 0; k < parts; ++k) {
      const int torch_threads = std::max(1, threads / parts + (k < threads % parts ? 1 : 0));
      threads_.emplace_back([this, k, torch_threads] { loop(k, torch_threads); });
    }
  }
  PartThreads(const PartThreads&) = delete;
  PartThreads& operator=(const PartThreads&) = delete;
  ~PartThreads() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(const std::function<void(int)>& task) {
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = &task;
    pending_ = static_cast<int>(threads_.size());
    ++generation_;
    wake_.notify_all();
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
    for (auto& e : errors_)
      if (e) {
        const std::exception_ptr first = e;
        for (auto& other : errors_) other = nullptr;
        std::rethrow_exception(first);
      }
  }

 private:
  void loop(int k, int torch_threads) {
    // This thread's own OpenMP team size (LibTorch's and OpenBLAS's operations read it per
    // calling thread); set after LibTorch's lazy per-thread set-up, which would overwrite it.
    at::get_num_threads();
    at::set_num_threads(torch_threads);
    int64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* task = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        task = task_;
      }
      try {
        (*task)(k);
      } catch (...) {
        errors_[static_cast<size_t>(k)] = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::vector<std::exception_ptr> errors_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  int64_t generation_ = 0;
  int pending_ = 0;
  bool quit_ = false;
};

// Forward pass shared by training and validation.
struct Forward {
  torch::Tensor estimate_spec, estimate_wave;
};

Forward run_network(UNet& net, const TensorFrontEnd& fe, const NetworkInput& in, int64_t length) {
  const torch::Tensor mask = net->mask(in.features).squeeze(1);  // [B, bins, frames]
  Forward f;
  f.estimate_spec = mask * in.spec;
  f.estimate_wave = fe.synthesize(f.estimate_spec, length);
  return f;
}

// Mean PESQ of rows of `estimate` against the same rows of `clean` ([B, N] at `rate`):
// wide-band at 16 kHz (other rates are resampled to it), narrow-band at 8 kHz. Rows PESQ cannot
// score (no speech found) are left out; `count` says how many were scored.
void add_pesq(const torch::Tensor& estimate, const torch::Tensor& clean, int rate, double& sum,
              int64_t& count) {
  const torch::Tensor e = estimate.detach().to(torch::kCPU).contiguous();
  const torch::Tensor c = clean.detach().to(torch::kCPU).contiguous();
  const int64_t n = e.size(1);
  const bool narrow = rate < 16000;
  const int pesq_rate = narrow ? 8000 : 16000;
  for (int64_t i = 0; i < e.size(0); ++i) {
    std::vector<float> deg(e[i].data_ptr<float>(), e[i].data_ptr<float>() + n);
    std::vector<float> ref(c[i].data_ptr<float>(), c[i].data_ptr<float>() + n);
    if (rate != pesq_rate) {
      deg = resample(deg, rate, pesq_rate);
      ref = resample(ref, rate, pesq_rate);
    }
    try {
      sum +=
          pesq_mos_lqo(ref, deg, pesq_rate, narrow ? PesqMode::narrow_band : PesqMode::wide_band);
      ++count;
    } catch (const Error&) {
      // Too quiet or too short for PESQ: the other rows still count.
    }
  }
}

ValidationResult validate(UNet& net, const TensorFrontEnd& fe, const torch::Tensor& noisy,
                          const torch::Tensor& clean, const LossOptions& loss_options,
                          int batch_size, bool with_pesq) {
  torch::NoGradGuard no_grad;
  net->eval();
  ValidationResult r;
  const int64_t n = noisy.size(0);
  double loss_sum = 0, sdr_sum = 0, noisy_sum = 0, pesq_sum = 0, pesq_noisy_sum = 0;
  int64_t pesq_count = 0, pesq_noisy_count = 0;
  const int rate = fe.config().sample_rate_hz;
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t m = std::min<int64_t>(batch_size, n - i);
    const torch::Tensor x = noisy.narrow(0, i, m), s = clean.narrow(0, i, m);
    const Forward f = run_network(net, fe, network_input(fe, x), x.size(1));
    const LossTerms t =
        enhancement_loss(f.estimate_spec, fe.analyze(s), f.estimate_wave, s, loss_options);
    loss_sum += t.total.item<double>() * static_cast<double>(m);
    sdr_sum += t.si_sdr_db.sum().item<double>();
    noisy_sum += si_sdr_db(x, s).sum().item<double>();
    if (with_pesq) {
      add_pesq(f.estimate_wave, s, rate, pesq_sum, pesq_count);
      add_pesq(x, s, rate, pesq_noisy_sum, pesq_noisy_count);
    }
  }
  if (pesq_count > 0) r.pesq = pesq_sum / static_cast<double>(pesq_count);
  if (pesq_noisy_count > 0) r.pesq_noisy = pesq_noisy_sum / static_cast<double>(pesq_noisy_count);
  r.loss = loss_sum / static_cast<double>(n);
  r.si_sdr_db = sdr_sum / static_cast<double>(n);
  r.si_sdr_noisy_db = noisy_sum / static_cast<double>(n);
  net->train();
  return r;
}

// ", PESQ 2.31 (noisy 1.80)" for messages, or nothing when PESQ was not measured.
std::string pesq_text(const ValidationResult& v) {
  if (std::isnan(v.pesq)) return "";
  return format(", PESQ %.2f (noisy %.2f)", v.pesq, v.pesq_noisy);
}

nlohmann::json to_json_result(const ValidationResult& v) {
  nlohmann::json j = {{"loss", v.loss},
                      {"si_sdr_db", v.si_sdr_db},
                      {"si_sdr_noisy_db", v.si_sdr_noisy_db},
                      {"si_sdri_db", v.si_sdri_db()}};
  if (!std::isnan(v.pesq)) {
    j["pesq"] = v.pesq;
    j["pesq_noisy"] = v.pesq_noisy;
  }
  return j;
}

// The options a resumed run must share with the run that wrote the state.
nlohmann::json architecture_json(const TrainOptions& o) {
  return {{"front_end", o.front_end}, {"model", o.model}, {"loss", o.loss}};
}

// What the validation set is drawn from: a resumed run whose validation data differ (a new stage
// with other mixing) cannot compare its losses with the stored best.
std::string validation_data_key(const TrainOptions& o) {
  // Tones off draw nothing: their keys stay out, so states written before they existed resume
  // with their best figure.
  nlohmann::json mix = o.data.mix;
  if (o.data.mix.tone_share == 0)
    for (const char* key :
         {"tone_share", "tone_min_hz", "tone_max_hz", "tone_min_db", "tone_max_db"})
      mix.erase(key);
  return dump_json(nlohmann::json{{"mix", mix},
                                  {"val_fraction", o.data.val_fraction},
                                  {"val_crop_seconds", o.data.val_crop_seconds},
                                  {"max_val_examples", o.data.max_val_examples},
                                  {"seed", o.data.seed},
                                  {"data_dirs", o.data.data_dirs},
                                  {"clean_dirs", o.data.clean_dirs},
                                  {"noise_dirs", o.data.noise_dirs}});
}

void save_state(const std::string& path, UNet& net, torch::optim::Adam& optimizer, int64_t step,
                const ValidationResult& best, bool have_best, const TrainOptions& options) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive net_archive, optimizer_archive;
  net->save(net_archive);
  optimizer.save(optimizer_archive);
  archive.write("net", net_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("step", torch::tensor(step, torch::kLong));
  archive.write("best", torch::tensor({best.loss, best.si_sdr_db, best.si_sdr_noisy_db,
                                       have_best ? 1.0 : 0.0},
                                      torch::kDouble));
  archive.write("architecture", c10::IValue(architecture_json(options).dump()));
  archive.write("validation_data", c10::IValue(validation_data_key(options)));
  const std::string temp = path + ".partial";
  try {
    archive.save_to(temp);
  } catch (const c10::Error& e) {
    std::remove(temp.c_str());
    throw Error(path + ": cannot write the resume state: " + e.what_without_backtrace());
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error(path + ": cannot rename the resume state into place");
  }
}

}  // namespace

void apply_config_file(const std::string& path, TrainOptions& options) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "front_end") {
      options.front_end = patched(options.front_end, v, key, path);
      options.front_end.validate();
    } else if (key == "model") {
      options.model = patched(options.model, v, key, path);
    } else if (key == "loss") {
      options.loss = patched(options.loss, v, key, path);
    } else if (key == "mix") {
      options.data.mix = patched(options.data.mix, v, key, path);
    } else if (key == "train") {
      if (!v.is_object()) throw Error(path + ": \"train\" must be a JSON object");
      try {
        for (auto t = v.begin(); t != v.end(); ++t) {
          const std::string& k = t.key();
          if (k == "batch_size")
            t.value().get_to(options.batch_size);
          else if (k == "learning_rate")
            t.value().get_to(options.learning_rate);
          else if (k == "lr_schedule")
            t.value().get_to(options.lr_schedule);
          else if (k == "lr_min_fraction")
            t.value().get_to(options.lr_min_fraction);
          else if (k == "warmup_steps")
            t.value().get_to(options.warmup_steps);
          else if (k == "grad_clip_norm")
            t.value().get_to(options.grad_clip_norm);
          else if (k == "crop_seconds")
            t.value().get_to(options.data.crop_seconds);
          else if (k == "val_fraction")
            t.value().get_to(options.data.val_fraction);
          else if (k == "val_crop_seconds")
            t.value().get_to(options.data.val_crop_seconds);
          else if (k == "max_val_examples")
            t.value().get_to(options.data.max_val_examples);
          else if (k == "epochs")
            t.value().get_to(options.epochs);
          else if (k == "steps")
            t.value().get_to(options.steps);
          else if (k == "val_every_steps")
            t.value().get_to(options.val_every_steps);
          else
            throw Error(path + ": unknown key \"" + k + "\" in \"train\"");
        }
      } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": \"train\": " + e.what());
      }
    } else {
      throw Error(path + ": unknown section \"" + key +
                  "\" (known: front_end, model, loss, mix, train)");
    }
  }
}

double learning_rate_at(const TrainOptions& options, int64_t step, int64_t total) {
  const double base = options.learning_rate;
  if (step < options.warmup_steps)
    return base * static_cast<double>(step + 1) / static_cast<double>(options.warmup_steps);
  if (options.lr_schedule != "cosine") return base;
  const double span = static_cast<double>(std::max<int64_t>(1, total - 1 - options.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - options.warmup_steps) / span);
  const double floor = base * options.lr_min_fraction;
  return floor + (base - floor) * 0.5 * (1 + std::cos(3.141592653589793 * progress));
}

std::string blas_description() {
  // The library whose sgemm_ the process resolves (LibTorch's matrix products call it), its
  // links resolved: Debian's alternatives (or LD_LIBRARY_PATH) decide which one that is.
  std::string path;
  Dl_info info{};
  if (void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
      sgemm && dladdr(sgemm, &info) && info.dli_fname) {
    char resolved[PATH_MAX];
    path = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
  }
  std::string d;
  if (path.empty()) {
    d = "no BLAS library loaded";
  } else if (path.find("openblas") != std::string::npos) {
    // OpenBLAS says its version, the kernel it chose and its threading itself.
    using ConfigFn = char* (*)();
    using ThreadsFn = int (*)();
    void* lib = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    auto config = lib ? reinterpret_cast<ConfigFn>(dlsym(lib, "openblas_get_config")) : nullptr;
    auto threads =
        lib ? reinterpret_cast<ThreadsFn>(dlsym(lib, "openblas_get_num_threads")) : nullptr;
    d = config ? config() : "OpenBLAS";
    if (threads) d += " threads=" + std::to_string(threads());
    if (lib) dlclose(lib);
  } else if (path.find("/blas/") != std::string::npos) {
    d = "reference BLAS (netlib, single-threaded)";
  } else {
    d = "BLAS";
  }
  if (!path.empty()) d += " (" + path + ")";
  if (const char* policy = std::getenv("OMP_WAIT_POLICY"))
    d += ", OMP_WAIT_POLICY=" + std::string(policy);
  return d;
}

NetworkInput network_input(const TensorFrontEnd& front_end, const torch::Tensor& noisy) {
  NetworkInput in;
  in.spec = front_end.analyze(noisy);
  in.features = front_end.features(in.spec).unsqueeze(1);
  return in;
}

TrainResult train(const TrainOptions& options_in,
                  const std::function<void(const std::string&)>& message,
                  const std::atomic<bool>* stop, bool progress_bar) {
  TrainOptions options = options_in;
  if (options.batch_size < 1) throw Error("the batch size (--batch) must be at least 1");
  if (!(options.learning_rate > 0)) throw Error("--lr must be > 0");
  if (options.lr_schedule != "constant" && options.lr_schedule != "cosine")
    throw Error("lr_schedule must be \"constant\" or \"cosine\" (got \"" + options.lr_schedule +
                "\")");
  if (!(options.lr_min_fraction >= 0 && options.lr_min_fraction <= 1))
    throw Error("lr_min_fraction must be within [0, 1]");
  if (options.warmup_steps < 0) throw Error("warmup_steps must be >= 0");
  if (options.epochs < 0 || options.steps < 0) throw Error("--epochs and --steps must be >= 0");
  if (options.epochs > 0 && options.steps > 0) throw Error("give --epochs or --steps, not both");
  if (!(options.data.crop_seconds >= 0.1 && options.data.crop_seconds <= 60))
    throw Error("--crop-seconds must be within 0.1-60");
  if (!(options.data.val_fraction >= 0 && options.data.val_fraction < 1))
    throw Error("--val-fraction must be in [0, 1)");
  options.front_end.validate();
  options.model.validate();
  options.loss.validate();
  ProcessGroup* const group = options.process_group.get();
  if (options.simulate_ranks < 0 || options.simulate_ranks > 64)
    throw Error("--simulate-ranks must be within 0-64");
  if (group && options.simulate_ranks > 1)
    throw Error("--simulate-ranks stands in for a job of several processes: not within one");
  // Rank 0 alone reads the resume state, validates and writes files.
  const bool writer = !group || group->rank() == 0;
  const int ranks = group ? group->world_size() : std::max(1, options.simulate_ranks);

  torch::Device device(torch::kCPU);
  if (options.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error(
          "--device cuda: this LibTorch has no CUDA support or sees no GPU (build against a "
          "CUDA LibTorch, or use --device cpu)");
    device = torch::Device(torch::kCUDA);
    if (group)  // one GPU per process of a machine
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                               group->where().local_rank %
                                               std::max<int64_t>(1, torch::cuda::device_count())));
  } else if (options.device != "cpu") {
    throw Error("--device must be cpu or cuda, got '" + options.device + "'");
  }
  // This thread's LibTorch threads, set explicitly: the part threads below set their own.
  const int threads = options.threads > 0 ? options.threads : torch::get_num_threads();
  torch::set_num_threads(threads);
  if (options.batch_parts < 0) throw Error("--batch-parts must be >= 0");
  if (options.batch_parts > options.batch_size)
    throw Error("--batch-parts " + std::to_string(options.batch_parts) +
                " is more than the examples of a batch (--batch " +
                std::to_string(options.batch_size) + ")");
  if (options.batch_parts > 1 && !device.is_cpu())
    throw Error("--batch-parts is for training on the CPU (on CUDA, give 0 or 1)");
  // Automatic: a part per thread, with at least 4 examples in each (BatchNorm's statistics).
  const int parts =
      options.batch_parts > 0
          ? options.batch_parts
          : (device.is_cpu() ? std::max(1, std::min(threads, options.batch_size / 4)) : 1);

  const Paths paths = paths_for(options.out_path);
  {
    const fs::path parent = fs::path(paths.model).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw Error(paths.model + ": the output folder " + parent.string() + " does not exist");
  }

  // A resumed run continues the architecture it started with.
  std::unique_ptr<torch::serialize::InputArchive> state;
  if (options.resume) {
    // In a job, rank 0 reads the state and hands it to the others: only its machine need hold it.
    std::string shared_state;
    if (group)
      shared_state = group->share_from_root("resume state", [&] {
        if (!fs::exists(paths.resume)) return std::string();
        std::ifstream in(paths.resume, std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        if (!in) throw Error(paths.resume + ": cannot read the resume state");
        return bytes.str();
      });
    if (group ? !shared_state.empty() : fs::exists(paths.resume)) {
      state = std::make_unique<torch::serialize::InputArchive>();
      try {
        if (group)
          state->load_from(shared_state.data(), shared_state.size(), device);
        else
          state->load_from(paths.resume, device);
        c10::IValue arch;
        state->read("architecture", arch);
        const auto j = nlohmann::json::parse(arch.toStringRef());
        options.front_end = j.at("front_end").get<FrontEndConfig>();
        options.model = j.at("model").get<UNetOptions>();
        options.loss = j.at("loss").get<LossOptions>();
      } catch (const std::exception& e) {
        throw Error(paths.resume + ": cannot resume from this state: " + e.what());
      }
    } else {
      message("no resume state at " + paths.resume + "; starting from the beginning");
    }
  }

  torch::manual_seed(options.data.seed);
  const TensorFrontEnd fe(options.front_end);
  UNet net(options.model, options.front_end.n_bins(), options.front_end.sample_rate_hz);
  net->to(device);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(options.learning_rate));
  int64_t step = 0;
  ValidationResult best;
  bool have_best = false;
  bool validation_changed = false;  // resumed with other validation data: no stored figure fits
  if (state) {
    try {
      torch::serialize::InputArchive net_archive, optimizer_archive;
      state->read("net", net_archive);
      net->load(net_archive);
      state->read("optimizer", optimizer_archive);
      optimizer.load(optimizer_archive);
      // Each value into a fresh tensor: read() into a defined tensor copies into its storage.
      torch::Tensor stored_step, t;
      state->read("step", stored_step);
      step = stored_step.item<int64_t>();
      state->read("best", t);
      t = t.to(torch::kCPU);
      best.loss = t[0].item<double>();
      best.si_sdr_db = t[1].item<double>();
      best.si_sdr_noisy_db = t[2].item<double>();
      have_best = t[3].item<double>() > 0;
      c10::IValue stored_data;
      const bool known = state->try_read("validation_data", stored_data);
      if (have_best && (!known || stored_data.toStringRef() != validation_data_key(options))) {
        have_best = false;
        validation_changed = true;
        message(
            "validation data differ from the resumed run's (data or mixing options changed): "
            "the best model is chosen afresh from here on");
      }
    } catch (const c10::Error& e) {
      throw Error(paths.resume + ": cannot resume from this state: " + e.what_without_backtrace());
    }
    for (auto& g : optimizer.param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(options.learning_rate);
    state.reset();
  }

  if (!options.init_path.empty()) {
    if (step > 0) {
      message("resuming at step " + std::to_string(step) + ": --init " + options.init_path +
              " is not used");
    } else {
      const auto init = load_checkpoint(options.init_path);  // the Error names the file
      torch::NoGradGuard no_grad;
      auto copy = [&](auto&& to, auto&& from) {
        for (auto& t : to) {
          const torch::Tensor* source = from.find(t.key());
          if (!source || source->sizes() != t.value().sizes())
            throw Error(options.init_path +
                        ": its weights do not fit the network being trained "
                        "(tensor '" +
                        t.key() + "'); change only what keeps the shapes");
          t.value().copy_(*source);
        }
      };
      copy(net->named_parameters(), init->net->named_parameters());
      copy(net->named_buffers(), init->net->named_buffers());
      message("starting from the weights of " + options.init_path);
    }
  }

  // Every rank starts from rank 0's weights (the same by seed, or rank 0's --init).
  if (group) broadcast_module(*net, *group);

  // The data after the network, so that weights that do not fit are refused before a long scan
  // (the data library draws nothing from LibTorch's generator: the initial weights are the same).
  DataOptions data_options = options.data;
  data_options.sample_rate_hz = options.front_end.sample_rate_hz;
  TrainingData data(data_options);
  const DataSummary& summary = data.summary();
  for (const auto& w : summary.warnings) message("warning: " + w);
  message(format("data: %.0f s of training speech, %.0f validation examples of %.1f s",
                 summary.train_seconds, static_cast<double>(data.validation().size()),
                 data_options.val_crop_seconds));
  int64_t n_parameters = 0;
  for (const auto& p : net->parameters()) n_parameters += p.numel();
  message(format("model: %.0f trainable parameters (%.0f KiB as float32)",
                 static_cast<double>(n_parameters),
                 4.0 * static_cast<double>(n_parameters) / 1024));

  const int64_t crop = data.crop_samples();
  // Of all ranks: an epoch takes fewer steps in a larger job.
  const double seconds_per_step = static_cast<double>(options.batch_size) * ranks *
                                  static_cast<double>(crop) / options.front_end.sample_rate_hz;
  const int64_t steps_per_epoch = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(data.epoch_seconds() / seconds_per_step)));
  const int64_t total = options.steps > 0
                            ? options.steps
                            : (options.epochs > 0 ? options.epochs : 20) * steps_per_epoch;
  const int64_t val_every = options.val_every_steps > 0 ? options.val_every_steps : steps_per_epoch;
  if (step > 0)
    message(format("resuming at step %.0f of %.0f", static_cast<double>(step),
                   static_cast<double>(total)));

  // Fixed validation tensors.
  const auto& val = data.validation();
  const int64_t val_len = static_cast<int64_t>(val.front().noisy.size());
  std::vector<float> vn, vc;
  for (const auto& e : val) {
    vn.insert(vn.end(), e.noisy.begin(), e.noisy.end());
    vc.insert(vc.end(), e.clean.begin(), e.clean.end());
  }
  const auto val_count = static_cast<int64_t>(val.size());
  const torch::Tensor val_noisy = to_tensor(vn, val_count, val_len, device);
  const torch::Tensor val_clean = to_tensor(vc, val_count, val_len, device);

  std::ofstream log;
  if (writer) {
    log.open(paths.log, step > 0 ? std::ios::app : std::ios::trunc);
    if (!log) throw Error(paths.log + ": cannot write the training log");
  }

  TrainResult result;
  result.model_path = paths.model;
  result.log_path = paths.log;
  result.resume_path = paths.resume;
  const auto run_start = std::chrono::steady_clock::now();
  double train_seconds = 0;  // time in training steps (not validation)
  int64_t trained_steps = 0;

  bool hook_ok = true;
  auto log_validation = [&](const ValidationResult& v, double train_loss, bool is_best) {
    nlohmann::json line = to_json_result(v);
    line["step"] = step;
    line["epoch"] = static_cast<double>(step) / static_cast<double>(steps_per_epoch);
    line["train_loss"] = train_loss;
    line["learning_rate"] = learning_rate_at(options, std::max<int64_t>(0, step - 1), total);
    line["elapsed_s"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    line["best"] = is_best;
    log << dump_json(line) << "\n";
    log.flush();
    if (hook_ok && options.after_validation) {
      try {
        options.after_validation(paths.log);
      } catch (const std::exception& e) {
        hook_ok = false;
        message(std::string("warning: ") + e.what());
      }
    }
  };
  auto save_model = [&](const ValidationResult& v) {
    ModelMetadata meta;
    meta.front_end = options.front_end;
    meta.model = options.model;
    nlohmann::json data_json = summary;
    meta.training = {{"data", data_json},
                     {"steps", step},
                     {"epochs", static_cast<double>(step) / static_cast<double>(steps_per_epoch)},
                     {"batch_size", options.batch_size},
                     {"ranks", ranks},
                     {"batch_parts", parts},
                     {"crop_seconds", options.data.crop_seconds},
                     {"learning_rate", options.learning_rate},
                     {"lr_schedule", options.lr_schedule},
                     {"lr_min_fraction", options.lr_min_fraction},
                     {"warmup_steps", options.warmup_steps},
                     {"seed", options.data.seed},
                     {"device", options.device},
                     {"loss", options.loss},
                     {"mix", options.data.mix}};
    if (!options.init_path.empty()) meta.training["init"] = options.init_path;
    meta.validation = to_json_result(v);
    meta.validation["step"] = step;
    meta.validation["examples"] = val_count;
    UNet cpu_copy(options.model, options.front_end.n_bins(), options.front_end.sample_rate_hz);
    {
      torch::NoGradGuard no_grad;
      auto src = net->named_parameters();
      for (auto& p : cpu_copy->named_parameters()) p.value().copy_(src[p.key()]);
      auto src_b = net->named_buffers();
      for (auto& b : cpu_copy->named_buffers()) b.value().copy_(src_b[b.key()]);
    }
    save_checkpoint(paths.model, cpu_copy, meta);
  };

  net->train();
  if (!writer) {
    // Validation is rank 0's.
  } else if (step == 0) {
    result.first =
        validate(net, fe, val_noisy, val_clean, options.loss, options.batch_size, options.val_pesq);
    log_validation(result.first, std::nan(""), false);
    message(format("step 0: validation loss %.4f, SI-SDR %.2f dB (noisy %.2f dB)",
                   result.first.loss, result.first.si_sdr_db, result.first.si_sdr_noisy_db) +
            pesq_text(result.first));
  } else if (validation_changed) {
    // Not logged (the step's line from before the change is in the log); only for the summary's
    // "before" figure, which the stored best no longer gives.
    result.first =
        validate(net, fe, val_noisy, val_clean, options.loss, options.batch_size, options.val_pesq);
    message(format(
        "step %.0f on the changed validation data: loss %.4f, SI-SDR %.2f dB (noisy %.2f dB)",
        static_cast<double>(step), result.first.loss, result.first.si_sdr_db,
        result.first.si_sdr_noisy_db));
  } else {
    result.first = best;
  }

  // Each rank its own batches: rank r draws batch `step` of the stream rank_seed(seed, r), so a
  // resumed job of another size continues every stream it still has.
  const int shards = group ? 1 : ranks;
  std::vector<std::unique_ptr<BatchLoader>> loaders;
  for (int k = 0; k < shards; ++k)
    loaders.push_back(std::make_unique<BatchLoader>(
        data, options.batch_size, std::max(1, options.loader_workers),
        rank_seed(options.data.seed, group ? group->rank() : k), step));
  StepSync sync(*net, group, shards, step);
  const std::string dump_name =
      options.debug_weights_dir.empty()
          ? std::string()
          : (fs::path(options.debug_weights_dir) /
             ("rank" + (options.simulate_ranks > 1 ? std::string("sim")
                                                   : std::to_string(group ? group->rank() : 0))))
                .string();
  auto dump_weights = [&] {
    if (!dump_name.empty())
      dump_module_weights(*net, dump_name + ".step" + std::to_string(step) + ".f32");
  };
  dump_weights();
  ProgressBar bar("train", total, progress_bar, step);
  // Notices during training go above the progress bar, or through `message` without one.
  auto say = [&](const std::string& line) {
    if (progress_bar)
      bar.print_line(line);
    else
      message(line);
  };
  double loss_avg = std::nan(""), loss_sum = 0;
  int64_t loss_count = 0, bad_steps = 0;
  auto last_state = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> params = net->parameters();
  // Batch parts: part 0 on the network itself, part k > 0 on replica k - 1, which starts every
  // batch from the network's weights and buffers.
  std::vector<UNet> replicas;
  std::vector<std::vector<torch::Tensor>> replica_params, replica_buffers;
  const std::vector<torch::Tensor> net_buffers = net->buffers();
  std::unique_ptr<PartThreads> part_threads;
  if (parts > 1) {
    for (int k = 1; k < parts; ++k) {
      replicas.emplace_back(options.model, options.front_end.n_bins(),
                            options.front_end.sample_rate_hz);
      replicas.back()->to(device);
      replicas.back()->train();
      replica_params.push_back(replicas.back()->parameters());
      replica_buffers.push_back(replicas.back()->buffers());
    }
    part_threads = std::make_unique<PartThreads>(parts, threads);
  }
  struct PartResult {
    double loss = 0;
    bool finite = true;
    double features_s = 0, forward_s = 0, loss_s = 0, backward_s = 0;
  };
  std::vector<PartResult> part_results(static_cast<size_t>(parts));
  bool stop_agreed = false;  // in a job, a stop request ends every rank after the same step
  while (step < total) {
    if ((group ? stop_agreed : stop && stop->load()) ||
        (options.stop_at_step > 0 && step >= options.stop_at_step)) {
      if (writer) save_state(paths.resume, net, optimizer, step, best, have_best, options);
      message(format("stopped at step %.0f; continue with --resume", static_cast<double>(step)));
      result.interrupted = group ? stop_agreed : stop && stop->load();
      break;
    }
    const auto t0 = Clock::now();
    auto lap = [last = t0](double& into) mutable {
      const auto t = Clock::now();
      into += std::chrono::duration<double>(t - last).count();
      last = t;
    };
    StepBreakdown& b = result.breakdown;
    const double lr = learning_rate_at(options, step, total);
    for (auto& g : optimizer.param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
    optimizer.zero_grad();
    // This process's batches (one; or those of every simulated rank), gradients accumulated;
    // then the ranks agree on the mean gradient, loss and whether to take the step (StepSync).
    double local_loss = 0;
    bool local_finite = true;
    for (int k = 0; k < shards; ++k) {
      sync.begin_shard(k);
      Batch batch = loaders[k]->next();
      lap(b.data_wait_s);
      const torch::Tensor noisy = to_tensor(batch.noisy, batch.batch_size, batch.length, device);
      const torch::Tensor clean = to_tensor(batch.clean, batch.batch_size, batch.length, device);
      lap(b.to_device_s);
      {
        torch::NoGradGuard no_grad;
        for (size_t r = 0; r < replicas.size(); ++r) {
          for (size_t i = 0; i < params.size(); ++i) {
            replica_params[r][i].copy_(params[i]);
            if (replica_params[r][i].grad().defined()) replica_params[r][i].mutable_grad().zero_();
          }
          for (size_t i = 0; i < net_buffers.size(); ++i)
            replica_buffers[r][i].copy_(net_buffers[i]);
        }
      }
      // Part p: rows [B p / parts, B (p + 1) / parts) of the batch. Each part's loss is the mean
      // over its rows, weighted by its share of the batch: the parts' gradients add up to the
      // whole batch's.
      const int64_t rows = noisy.size(0);
      auto compute_part = [&](int part) {
        PartResult& r = part_results[static_cast<size_t>(part)];
        r = PartResult{};
        auto part_lap = [last = Clock::now()](double& into) mutable {
          const auto t = Clock::now();
          into += std::chrono::duration<double>(t - last).count();
          last = t;
        };
        UNet& model = part == 0 ? net : replicas[static_cast<size_t>(part - 1)];
        const int64_t begin = rows * part / parts, end = rows * (part + 1) / parts;
        const torch::Tensor x = parts == 1 ? noisy : noisy.narrow(0, begin, end - begin);
        const torch::Tensor s = parts == 1 ? clean : clean.narrow(0, begin, end - begin);
        const NetworkInput in = network_input(fe, x);
        part_lap(r.features_s);
        const Forward f = run_network(model, fe, in, x.size(1));
        part_lap(r.forward_s);
        const LossTerms t =
            enhancement_loss(f.estimate_spec, fe.analyze(s), f.estimate_wave, s, options.loss);
        const torch::Tensor weighted =
            parts == 1 ? t.total
                       : t.total * (static_cast<double>(end - begin) / static_cast<double>(rows));
        r.loss = weighted.item<double>();
        r.finite = std::isfinite(r.loss);
        part_lap(r.loss_s);
        if (r.finite) {
          weighted.backward();
          part_lap(r.backward_s);
        }
      };
      if (part_threads)
        part_threads->run(compute_part);
      else
        compute_part(0);
      const PartResult& first = part_results.front();
      b.features_s += first.features_s;
      b.forward_s += first.forward_s;
      b.loss_s += first.loss_s;
      b.backward_s += first.backward_s;
      double v = 0;
      bool finite = true;
      for (const auto& r : part_results) {
        v += r.loss;
        finite = finite && r.finite;
      }
      local_loss += v;
      local_finite = local_finite && finite;
      if (!replicas.empty()) {
        // In part order, whatever the threads' timing: the same sums every run.
        torch::NoGradGuard no_grad;
        for (size_t r = 0; r < replicas.size(); ++r) {
          for (size_t i = 0; i < params.size(); ++i) {
            const torch::Tensor& g = replica_params[r][i].grad();
            if (!g.defined()) continue;
            if (params[i].grad().defined())
              params[i].mutable_grad().add_(g);
            else
              params[i].mutable_grad() = g.clone();
          }
          for (size_t i = 0; i < net_buffers.size(); ++i)
            if (net_buffers[i].is_floating_point()) net_buffers[i].add_(replica_buffers[r][i]);
        }
        for (auto& buf : net_buffers)
          if (buf.is_floating_point()) buf.div_(static_cast<double>(parts));
      }
      double busy = 0;
      lap(busy);
      b.parts_wait_s +=
          busy - first.features_s - first.forward_s - first.loss_s - first.backward_s;
    }
    StepAgreement agreed;
    try {
      agreed = sync.finish(local_loss, local_finite, stop && stop->load());
    } catch (const Error& e) {
      // A rank is gone: rank 0 keeps the state of the last step, so that no work is lost.
      if (!writer) throw;
      save_state(paths.resume, net, optimizer, step, best, have_best, options);
      throw Error(std::string(e.what()) + "; resume state of step " + std::to_string(step) +
                  " saved");
    }
    lap(b.all_reduce_s);
    stop_agreed = agreed.stop;
    const double loss_value = agreed.loss;
    if (!agreed.finite) {
      // A non-finite loss would poison the weights: skip the update, and give up if it persists.
      if (++bad_steps >= 20)
        throw Error("training diverged: 20 steps in a row gave a non-finite loss (lower --lr)");
    } else {
      bad_steps = 0;
      torch::nn::utils::clip_grad_norm_(params, options.grad_clip_norm);
      optimizer.step();
      lap(b.optimizer_s);
      loss_avg = std::isnan(loss_avg) ? loss_value : 0.98 * loss_avg + 0.02 * loss_value;
      loss_sum += loss_value;
      ++loss_count;
    }
    ++step;
    ++trained_steps;
    ++result.breakdown.steps;
    dump_weights();
    train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    const double steps_per_s = static_cast<double>(trained_steps) / std::max(1e-9, train_seconds);
    bar.update(step, format("loss %.4f  %.2f steps/s  %.1fx real time", loss_avg, steps_per_s,
                            steps_per_s * seconds_per_step));

    const auto v0 = Clock::now();
    if (!writer) {
      // Rank 0 validates and saves while the others wait at the next step's all-reduce.
    } else if (step % val_every == 0 || step == total) {
      const ValidationResult v = validate(net, fe, val_noisy, val_clean, options.loss,
                                          options.batch_size, options.val_pesq);
      const bool is_best = !have_best || v.loss < best.loss;
      const double train_loss = loss_count ? loss_sum / static_cast<double>(loss_count) : NAN;
      loss_sum = 0;
      loss_count = 0;
      if (is_best) {
        best = v;
        have_best = true;
        save_model(v);
      }
      log_validation(v, train_loss, is_best);
      save_state(paths.resume, net, optimizer, step, best, have_best, options);
      last_state = std::chrono::steady_clock::now();
      say(format("step %.0f: train loss %.4f, validation loss %.4f, SI-SDR "
                 "improvement %+.2f dB",
                 static_cast<double>(step), train_loss, v.loss, v.si_sdri_db()) +
          pesq_text(v) + (is_best ? " (best, saved)" : ""));
    } else if (std::chrono::duration<double>(std::chrono::steady_clock::now() - last_state)
                   .count() > options.state_every_seconds) {
      save_state(paths.resume, net, optimizer, step, best, have_best, options);
      last_state = std::chrono::steady_clock::now();
    }
    result.breakdown.validation_s += std::chrono::duration<double>(Clock::now() - v0).count();
  }
  bar.finish();
  result.breakdown.data = data.profile();
  result.blas = blas_description();
  // The ranks end together: one whose rank 0 failed in the last validation or save fails too.
  if (group) group->barrier("the end of training");
  result.steps = step;
  result.ranks = ranks;
  result.global_batch_size = static_cast<int64_t>(options.batch_size) * ranks;
  result.batch_parts = parts;
  result.threads = threads;
  result.best = best;
  result.audio_seconds_per_second =
      trained_steps > 0 ? static_cast<double>(trained_steps) * seconds_per_step / train_seconds : 0;
  return result;
}

}  // namespace denoise
