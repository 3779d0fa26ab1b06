#include "denoise/loss.h"

#include <string>

#include "denoise/error.h"
#include "denoise/json_strict.h"

namespace denoise {

void LossOptions::validate() const {
  auto fail = [](const std::string& what) { throw Error("loss options: " + what); };
  if (!(compression > 0 && compression <= 1))
    fail("compression must be in (0, 1], got " + std::to_string(compression));
  if (!(complex_weight >= 0 && complex_weight <= 1))
    fail("complex_weight must be in [0, 1], got " + std::to_string(complex_weight));
  if (!(under_weight >= 0)) fail("under_weight must be >= 0");
  if (!(si_sdr_weight >= 0)) fail("si_sdr_weight must be >= 0");
  if (!(epsilon > 0)) fail("epsilon must be > 0 (it keeps gradients finite at silent bins)");
}

void to_json(nlohmann::json& j, const LossOptions& o) {
  j = nlohmann::json{{"compression", o.compression},
                     {"complex_weight", o.complex_weight},
                     {"under_weight", o.under_weight},
                     {"si_sdr_weight", o.si_sdr_weight},
                     {"epsilon", o.epsilon}};
}

void from_json(const nlohmann::json& j, LossOptions& o) {
  require_same_keys(j, LossOptions{}, "loss options");
  try {
    j.at("compression").get_to(o.compression);
    j.at("complex_weight").get_to(o.complex_weight);
    j.at("under_weight").get_to(o.under_weight);
    j.at("si_sdr_weight").get_to(o.si_sdr_weight);
    j.at("epsilon").get_to(o.epsilon);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("loss options: ") + e.what());
  }
  o.validate();
}

torch::Tensor si_sdr_db(const torch::Tensor& estimate, const torch::Tensor& reference,
                        double epsilon) {
  const torch::Tensor e = estimate - estimate.mean(-1, true);
  const torch::Tensor r = reference - reference.mean(-1, true);
  const torch::Tensor scale = (e * r).sum(-1, true) / ((r * r).sum(-1, true) + epsilon);
  const torch::Tensor target = scale * r;
  const torch::Tensor error = e - target;
  return 10.0 *
         torch::log10(((target * target).sum(-1) + epsilon) / ((error * error).sum(-1) + epsilon));
}

LossTerms enhancement_loss(const torch::Tensor& estimate_spec, const torch::Tensor& clean_spec,
                           const torch::Tensor& estimate_wave, const torch::Tensor& clean_wave,
                           const LossOptions& options) {
  const double half_c = options.compression / 2;
  // |X|^c with the epsilon inside the root, and the unit phasor X / |X| (same epsilon).
  auto compressed = [&](const torch::Tensor& spec, torch::Tensor& phase) {
    const torch::Tensor power = torch::real(spec).square() + torch::imag(spec).square();
    const torch::Tensor mag_c = (power + options.epsilon).pow(half_c);
    phase = spec / (power + options.epsilon).sqrt();
    return mag_c;
  };
  torch::Tensor est_phase, clean_phase;
  const torch::Tensor est_c = compressed(estimate_spec, est_phase);
  const torch::Tensor clean_c = compressed(clean_spec, clean_phase);
  const torch::Tensor diff = est_c - clean_c;
  const torch::Tensor magnitude = diff.square().mean();
  const torch::Tensor under = torch::relu(-diff).square().mean();
  // |a - b|^2 from the real and imaginary parts: abs() of a complex zero has no usable gradient.
  const torch::Tensor d = est_c * est_phase - clean_c * clean_phase;
  const torch::Tensor complex_term = (torch::real(d).square() + torch::imag(d).square()).mean();
  LossTerms t;
  t.spectral = (1 - options.complex_weight) * magnitude + options.complex_weight * complex_term +
               options.under_weight * under;
  t.si_sdr_db = si_sdr_db(estimate_wave, clean_wave);
  t.total = t.spectral - options.si_sdr_weight * t.si_sdr_db.mean();
  return t;
}

}  // namespace denoise
