#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <new>
#include <string>

#include "denoise/denoiser.h"
#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

constexpr const char* kPluginName = "libdenoise_model.so";
constexpr const char* kRegisterSymbol = "denoise_register_model_methods";

fs::path program_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

fs::path plugin_path() { return program_dir() / ".." / "lib" / kPluginName; }

}  // namespace

bool model_methods_available() {
  std::error_code ec;
  return fs::is_regular_file(plugin_path(), ec);
}

void load_model_methods() {
  static std::mutex mutex;
  static bool loaded = false;
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded) return;
  const fs::path path = plugin_path();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw Error("the unet method is not available: " + path.lexically_normal().string() +
                " is missing (a build without LibTorch?)");
  // RTLD_GLOBAL: the plugin shares this program's libdenoise_core (and its method registry).
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle) throw Error(std::string("cannot load the unet method: ") + dlerror());
  auto* register_methods = reinterpret_cast<void (*)()>(dlsym(handle, kRegisterSymbol));
  if (!register_methods)
    throw Error(path.string() + ": not a denoise model plugin (no " + kRegisterSymbol + ")");
  register_methods();
  loaded = true;  // never unloaded: registered factories point into it
}

std::string default_model_path() {
  if (const char* env = std::getenv("DENOISE_MODEL"); env && *env) return env;
  const fs::path bin = program_dir();
  if (bin.empty()) return "";
  std::error_code ec;
  for (const fs::path& candidate : {bin / ".." / "share" / "denoise" / "models" / "default.dnz",
                                    bin / ".." / ".." / "models" / "pretrained" / "default.dnz"}) {
    if (fs::is_regular_file(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
  }
  return "";
}

void prepare_model_method(MethodOptions& options) {
  load_model_methods();
  if (options.model_path.empty()) options.model_path = default_model_path();
  if (options.model_path.empty())
    throw Error(
        "no model for the unet method: give --model FILE (train one with `train`) or set "
        "DENOISE_MODEL");
  // Loads (and caches) the model, checking it. What LibTorch or the allocator throw becomes one
  // line naming the model file.
  try {
    make_denoiser("unet", options, 16000);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(options.model_path + ": out of memory while loading the model");
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw Error(options.model_path + ": cannot load the model: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace denoise
