// PESQ: Perceptual Evaluation of Speech Quality, ITU-T P.862 (narrow-band) with the P.862.1
// mapping to MOS-LQO, and P.862.2 (wide-band).
//
//   double wb = denoise::pesq_mos_lqo(clean.data(), denoised.data(), clean.size(), 16000,
//                                     denoise::PesqMode::wide_band);   // -0.5..4.64, higher is
//                                     better
//
// The reference (clean) and degraded signals are compared through the recommendation's chain:
// both are brought to one power level (measured over 350 Hz to 3.25 kHz), filtered as a handset
// would (the IRS receive characteristic for narrow-band; P.862.2's 100 Hz high-pass for
// wide-band), time-aligned utterance by utterance (a crude alignment on speech envelopes, a fine
// one on 64 ms frames, utterances split where the delay changes inside them), mapped to a Bark
// spectrum and to loudness with the reference's frequency response and the degraded signal's
// gain adapted to each other, and the loudness differences (with an asymmetry factor for added
// components) aggregated over 20-frame syllables (L6) and over time (L2). The raw score
// 4.5 - 0.1 d - 0.0309 a is mapped to MOS-LQO: P.862.1 (narrow-band) or P.862.2 (wide-band).
// Identical signals score about 4.55 narrow-band and 4.64 wide-band.
//
// Contract:
//   * `reference` and `degraded` are mono, in any common amplitude unit (PESQ normalises the
//     level of each), at `sample_rate_hz`, which must be 8000 or 16000 (narrow-band accepts both,
//     wide-band needs 16000: resample first). They need not have the same length nor be aligned:
//     delays, also changing ones, are found by the algorithm.
//   * Throws denoise::Error for another rate, a signal shorter than 1/4 s, non-finite samples, a
//     silent reference or degraded signal, or a reference in which no utterance is found.
//   * Pure; calls may run in parallel threads (FFTW plans are made under the library-wide
//     planner lock, like every FFTW plan of the library). Double precision except the FFTs and the
//     filtered signals (single precision, like the reference implementation). About 0.2 s of one
//     core per minute of 16 kHz audio.
#pragma once

#include <cstddef>
#include <vector>

namespace denoise {

enum class PesqMode { narrow_band, wide_band };

struct PesqResult {
  double raw_mos = 0.0;  // P.862 raw score, 4.5 - 0.1 d_sym - 0.0309 d_asym (-0.5..4.5)
  double mos_lqo = 0.0;  // after the P.862.1 (narrow-band) or P.862.2 (wide-band) mapping
  double symmetric_disturbance = 0.0;   // d_sym, the aggregated disturbance
  double asymmetric_disturbance = 0.0;  // d_asym, the aggregated asymmetric disturbance
  // The utterances found in the reference and the delay of each in the degraded signal, in
  // samples at sample_rate_hz (positive: the degraded signal lags).
  std::vector<long> utterance_delays_samples;
};

PesqResult pesq(const float* reference, size_t reference_samples, const float* degraded,
                size_t degraded_samples, int sample_rate_hz, PesqMode mode);

// MOS-LQO of two signals of the same length `n`.
double pesq_mos_lqo(const float* reference, const float* degraded, size_t n, int sample_rate_hz,
                    PesqMode mode);
double pesq_mos_lqo(const std::vector<float>& reference, const std::vector<float>& degraded,
                    int sample_rate_hz, PesqMode mode);

// "nb" / "wb" for messages and reports.
const char* pesq_mode_name(PesqMode mode);

}  // namespace denoise
