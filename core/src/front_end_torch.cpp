#include "denoise/front_end_torch.h"

#include "denoise/error.h"

namespace denoise {

TensorFrontEnd::TensorFrontEnd(const FrontEndConfig& config) : config_(config) {
  config_.validate();
  FrontEnd frame_form(config_);  // the window is defined once, there
  window_ = torch::tensor(frame_form.window(), torch::kFloat32);
}

torch::Tensor TensorFrontEnd::window(const torch::Device& device) const {
  return window_.to(device);
}

torch::Tensor TensorFrontEnd::analyze(const torch::Tensor& signal) const {
  if (signal.dim() != 1 && signal.dim() != 2)
    throw Error("front end: analyze expects [T] or [B, T], got " + std::to_string(signal.dim()) +
                " dims");
  const torch::Tensor x = signal.dim() == 1 ? signal.unsqueeze(0) : signal;
  return torch::stft(x, config_.n_fft, config_.hop_length, config_.n_fft, window(x.device()),
                     config_.center, "constant", /*normalized=*/false, /*onesided=*/true,
                     /*return_complex=*/true);
}

torch::Tensor TensorFrontEnd::synthesize(const torch::Tensor& spec, int64_t length) const {
  const torch::Tensor s = spec.dim() == 2 ? spec.unsqueeze(0) : spec;
  return torch::istft(s, config_.n_fft, config_.hop_length, config_.n_fft, window(s.device()),
                      config_.center, /*normalized=*/false, /*onesided=*/true, length,
                      /*return_complex=*/false);
}

torch::Tensor TensorFrontEnd::features(const torch::Tensor& spec) const {
  const torch::Tensor power = torch::real(spec).square() + torch::imag(spec).square();
  switch (config_.compression) {
    case Compression::kNone:
      return torch::sqrt(power + config_.power_epsilon);
    case Compression::kLog:
      return torch::log(torch::sqrt(power) + config_.log_epsilon);
    case Compression::kPower:
      // Epsilon inside the root: d/dx x^(p/2) is infinite at 0, so silent bins would give NaN.
      return torch::pow(power + config_.power_epsilon, config_.power_exponent / 2.0);
  }
  throw Error("front end: unknown compression");
}

}  // namespace denoise
