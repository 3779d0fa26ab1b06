#include "denoise/denoiser.h"

#include "denoise/error.h"
#include "denoise/spectral_gate.h"
#include "denoise/spectral_subtract.h"

namespace denoise {

std::vector<std::string> classical_method_names() {
  return {"gate", "gate-nonstationary", "subtract"};
}

std::unique_ptr<Denoiser> make_denoiser(const std::string& name, const MethodOptions& options,
                                        int sample_rate_hz) {
  if (name == "gate") return std::make_unique<StationaryGate>(options.gate, sample_rate_hz);
  if (name == "gate-nonstationary")
    return std::make_unique<NonStationaryGate>(options.gate, sample_rate_hz);
  if (name == "subtract")
    return std::make_unique<SpectralSubtraction>(options.subtract, sample_rate_hz);
  std::string known;
  for (const auto& n : classical_method_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown method '" + name + "' (known: " + known + ")");
}

}  // namespace denoise
