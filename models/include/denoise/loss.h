// The training objective of the masking U-Net.
//
// Not plain MSE on dB spectrograms: dB errors weigh a 40 dB-down bin like a loud one, and MSE on
// uncompressed magnitudes is dominated by a few loud low-frequency bins. What works for masking
// (Braun & Tashev 2021, "A consolidated view of loss functions for supervised deep
// learning-based speech enhancement"; Wilson et al. 2018) is:
//   * a power-law compressed spectral loss, |S|^c with c = 0.3: it balances loud and quiet bins
//     the way hearing does, and its complex part (compressed magnitude with the phase) penalises
//     what the kept noisy phase gets wrong;
//   * an asymmetric term on top that weighs speech removed (estimate below the clean magnitude)
//     more than noise left in: masking models trained on symmetric losses over-suppress and
//     lose intelligibility (STOI);
//   * a waveform SI-SDR term, which scores the output after overlap-add, as listeners and the
//     evaluation do.
// The compressed magnitude is (re^2 + im^2 + epsilon)^(c/2): the epsilon inside the root keeps
// the gradient finite at silent bins (without it, it is infinite at exactly zero).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace denoise {

struct LossOptions {
  double compression = 0.3;     // magnitude exponent c
  double complex_weight = 0.3;  // share of the compressed complex term (1 - share: magnitude)
  double under_weight = 0.5;    // extra weight on speech removed (estimate below clean)
  double si_sdr_weight = 0.01;  // per dB of (negative) SI-SDR
  double epsilon = 1e-8;        // inside the root of the compressed magnitude

  void validate() const;
};
void to_json(nlohmann::json& j, const LossOptions& o);
void from_json(const nlohmann::json& j, LossOptions& o);  // strict

struct LossTerms {
  torch::Tensor total;      // scalar, what is minimised
  torch::Tensor spectral;   // scalar, compressed spectral part (asymmetric term included)
  torch::Tensor si_sdr_db;  // [B], SI-SDR of each estimate against its clean signal
};

// estimate/clean spectra: complex [B, F, T]; waveforms [B, N].
LossTerms enhancement_loss(const torch::Tensor& estimate_spec, const torch::Tensor& clean_spec,
                           const torch::Tensor& estimate_wave, const torch::Tensor& clean_wave,
                           const LossOptions& options);

// Scale-invariant SDR in dB per row of [B, N] (Le Roux et al. 2019), zero-mean; `epsilon` keeps
// silent rows finite.
torch::Tensor si_sdr_db(const torch::Tensor& estimate, const torch::Tensor& reference,
                        double epsilon = 1e-8);

}  // namespace denoise
