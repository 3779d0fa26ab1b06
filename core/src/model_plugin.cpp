#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <new>
#include <string>
#include <vector>

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

// The folder of this library (libdenoise_core.so) wherever it was loaded from: a build's lib/, an
// install prefix's lib/, or beside a host program that is not ours (a LADSPA host, a program
// built against the C API).
fs::path library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&load_model_methods), &info) == 0 || !info.dli_fname)
    return {};
  std::error_code ec;
  const fs::path lib = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path() : lib.parent_path();
}

// The plugin sits beside this library (build and install trees alike); <bin>/../lib for a
// program whose library was found elsewhere.
fs::path plugin_path() {
  std::error_code ec;
  const fs::path lib = library_dir();
  if (!lib.empty() && fs::is_regular_file(lib / kPluginName, ec)) return lib / kPluginName;
  return program_dir() / ".." / "lib" / kPluginName;
}

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

std::vector<std::string> default_model_candidates() {
  std::vector<std::string> out;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    if (!p.empty()) out.push_back(p.lexically_normal().string());
  };
  const fs::path lib = library_dir();
  // Installed: <libdir>/<libdir-to-datadir>/denoise/models/default.dnz, the relative path recorded
  // at configure time, so an installed tree can move as a whole.
#ifdef DENOISE_LIB_TO_DATA_DIR
  if (!lib.empty()) add(lib / DENOISE_LIB_TO_DATA_DIR / "denoise" / "models" / "default.dnz");
#endif
  const fs::path bin = program_dir();
  if (!bin.empty()) {
    add(bin / ".." / "share" / "denoise" / "models" / "default.dnz");
    add(bin / ".." / ".." / "models" / "pretrained" / "default.dnz");  // a build in the checkout
  }
  // A build folder anywhere: the checkout it was configured from, for this build's own library
  // only (an installed or copied one never reaches back into the checkout).
#if defined(DENOISE_SOURCE_MODEL_DIR) && defined(DENOISE_BUILD_LIB_DIR)
  if (!lib.empty() && fs::equivalent(lib, DENOISE_BUILD_LIB_DIR, ec))
    add(fs::path(DENOISE_SOURCE_MODEL_DIR) / "default.dnz");
#endif
  return out;
}

std::string default_model_path() {
  if (const char* env = std::getenv("DENOISE_MODEL"); env && *env) return env;
  std::error_code ec;
  for (const std::string& candidate : default_model_candidates())
    if (fs::is_regular_file(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
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
