#include "denoise/denoiser.h"

#include <utility>

#include "denoise/error.h"
#include "denoise/spectral_gate.h"
#include "denoise/spectral_subtract.h"

namespace denoise {
namespace {
std::vector<std::pair<std::string, DenoiserFactory>>& registry() {
  static std::vector<std::pair<std::string, DenoiserFactory>> methods;
  return methods;
}
}  // namespace

std::vector<std::string> classical_method_names() {
  return {"gate", "gate-nonstationary", "subtract"};
}

std::vector<std::string> method_names() {
  std::vector<std::string> names = classical_method_names();
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

void register_method(const std::string& name, DenoiserFactory factory) {
  for (auto& entry : registry()) {
    if (entry.first == name) {
      entry.second = std::move(factory);
      return;
    }
  }
  registry().emplace_back(name, std::move(factory));
}

std::unique_ptr<Denoiser> make_denoiser(const std::string& name, const MethodOptions& options,
                                        int sample_rate_hz) {
  if (name == "gate") return std::make_unique<StationaryGate>(options.gate, sample_rate_hz);
  if (name == "gate-nonstationary")
    return std::make_unique<NonStationaryGate>(options.gate, sample_rate_hz);
  if (name == "subtract")
    return std::make_unique<SpectralSubtraction>(options.subtract, sample_rate_hz);
  for (const auto& [registered, factory] : registry())
    if (registered == name) return factory(options, sample_rate_hz);
  std::string known;
  for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown method '" + name + "' (known: " + known + ")");
}

}  // namespace denoise
