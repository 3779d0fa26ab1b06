// Speech-quality and intelligibility metrics: SI-SDR, SNR, segmental SNR, STOI and ESTOI.
//
//   double d = denoise::stoi(clean, denoised, 16000);      // 0..1, higher is more intelligible
//   double s = denoise::si_sdr_db(clean, denoised);        // dB, higher is better
//
// Common contract:
//   * `reference` / `clean` is the clean speech, `estimate` / `processed` the signal under test,
//     both mono, in the same (arbitrary) amplitude unit, sampled at the same rate and already
//     time-aligned. The two must have the same length: a mismatch throws denoise::Error naming
//     both lengths (these functions never trim or pad; align the signals first).
//   * Empty inputs and non-finite samples (NaN, Inf) throw denoise::Error.
//   * All arithmetic is in double precision. Functions are pure and thread-safe.
#pragma once

#include <vector>

namespace denoise {

// Scale-invariant signal-to-distortion ratio in dB (Le Roux, Wisdom, Erdogan, Hershey, "SDR -
// half-baked or well done?", ICASSP 2019). Both signals are made zero-mean, then
//   target = (<est, ref> / <ref, ref>) ref,   SI-SDR = 10 log10(|target|^2 / |est - target|^2).
// Invariant to the scale of `estimate` (and of `reference`). Silence: a reference that is
// constant (zero energy after removing its mean) throws. A perfect estimate (an exact scaled copy)
// has zero error energy; the error energy is floored at 1e-20 of the target energy, so the value
// is at most 200 dB and always finite (averaging over a data set with identity pairs stays
// meaningful). An estimate orthogonal to the reference (or constant) gives -200 dB.
double si_sdr_db(const std::vector<float>& reference, const std::vector<float>& estimate);

// Plain signal-to-noise ratio in dB: 10 log10(|ref|^2 / |ref - est|^2), no mean removal and no
// scaling, so a gain error on `estimate` counts as noise. A silent (all-zero) reference throws;
// the error energy is floored at 1e-20 of the reference energy (at most 200 dB).
double snr_db(const std::vector<float>& reference, const std::vector<float>& estimate);

// Segmental SNR in dB, the convention of Hansen & Pellom ("An effective quality evaluation
// protocol for speech enhancement algorithms", ICSLP 1998) as implemented in Loizou's
// comp_snr.m ("Speech Enhancement: Theory and Practice", 2nd ed., 2013) and pysepm's SNRseg:
//   * frames of L = round(0.030 * sample_rate_hz) samples (30 ms), hop floor(L / 4) (75% overlap),
//     floor((n - L) / hop) frames starting at sample 0 (the references' count: a partial frame is
//     not used, nor the last whole one when n - L is a multiple of the hop);
//   * both frames multiplied by the Hann window w[i] = 0.5 (1 - cos(2 pi (i + 1) / (L + 1))),
//     i = 0..L-1 (MATLAB's hanning(L));
//   * per frame SNR_k = 10 log10(S / (E + eps) + eps), S = sum of the windowed clean frame
//     squared, E = sum of the windowed (clean - processed) frame squared, eps = 2^-52 (MATLAB's
//     eps), clamped to [-10, 35] dB;
//   * the result is the mean of SNR_k over all frames.
// Silence is not removed: a frame where the clean signal is silent counts as -10 dB (even when
// the estimate is silent too), as in the references above. No scaling: like snr_db, a gain error
// counts as noise. Throws when the signals are shorter than one window plus one hop (no frame) or
// when sample_rate_hz is too low for a hop of at least one sample.
double segmental_snr_db(const std::vector<float>& reference, const std::vector<float>& estimate,
                        int sample_rate_hz);

// Short-Time Objective Intelligibility (Taal, Hendriks, Heusdens, Jensen, IEEE TASLP 2011), and
// extended STOI (Jensen & Taal, IEEE TASLP 2016). Both follow pystoi 0.4.1 step by step:
//   1. Signals at another rate than 10 kHz are resampled to 10 kHz with denoise::resample
//      (libsamplerate; pystoi uses an Octave-compatible polyphase filter, which differs from it
//      only near 5 kHz, above the highest band: STOI and ESTOI agree with pystoi within 1e-4 on
//      the 16 kHz reference pairs of tests/test_metrics.cpp).
//   2. Silent frames are removed, decided on `clean` alone: Hann frames of 256 samples every 128
//      (w[i] = 0.5 (1 - cos(2 pi (i + 1) / 257)), the frames that start before n - 256); a frame
//      is kept when its energy is within 40 dB of the loudest frame; the kept windowed frames of
//      both signals are overlap-added back to back (hop 128).
//   3. STFT with the same window, 256-sample frames every 128 samples zero-padded to 512; 15
//      one-third-octave bands from 150 Hz (band edges at the nearest FFT bin) give band envelopes.
//   4. Segments of N = 30 frames (384 ms). STOI: per band, the processed envelope is scaled to the
//      clean one's energy and clipped at 15 dB above it (beta = -15 dB), and correlated with the
//      clean envelope. ESTOI: each segment's matrix of envelopes is normalised to zero mean and
//      unit norm over time per band, then over bands per frame, and the columns are correlated.
//   5. The result is the mean over bands and segments (STOI) or over frames and segments (ESTOI).
// Output in [-1, 1], about 0..1 for speech; identical signals give 1. Invariant to the scale of
// either signal. `sample_rate_hz` is the rate of both signals.
// Throws when the signals differ in length, or when fewer than 30 STFT frames (about 0.4 s of
// non-silent speech) remain after silence removal. pystoi 0.4.1 warns and returns 1e-5 there
// instead; a number that looks like a score would silently corrupt averages.
double stoi(const std::vector<float>& clean, const std::vector<float>& processed,
            int sample_rate_hz);
double estoi(const std::vector<float>& clean, const std::vector<float>& processed,
             int sample_rate_hz);

}  // namespace denoise
