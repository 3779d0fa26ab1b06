// Training data: noisy/clean pairs from folders on disk, or clean speech mixed with noise on the
// fly, cut into fixed-length crops at the model's rate and served in batches by worker threads.
//
// Sources (any combination; DataOptions):
//   * paired folders given with data_dirs: the Kaggle "noisyandcleanaudios" layout
//     (speaker_audios_new/{noisy_audios,clean_audios}/ + audios_meta_data.csv with columns
//     noisy_audio,clean_audio; a row whose two names are equal is a clean->clean identity pair),
//     found whether the folder given is the unzipped folder, speaker_audios_new or its parent; or
//     noisy/ + clean/ with matching file names (also VoiceBank+DEMAND's noisy_trainset_wav /
//     clean_trainset_wav);
//   * clean_dirs + noise_dirs: clean speech mixed with noise files and generated noises
//     (white, pink, brown, mains hum, band-limited) at a random SNR, level and crop.
//
// Every file is decoded with libsndfile, mixed to mono and resampled to sample_rate_hz with
// libsamplerate. Files are split into training and validation by a seeded hash of their path
// (deterministic, independent of the order files are listed in). Missing, unreadable or
// too-short files are counted and reported once in DataSummary, then skipped; a pair whose two
// sides differ in length is trimmed to the shorter with a warning. Nothing here throws in the
// middle of training: a file that fails to decode later is dropped and counted.
//
// No LibTorch: batches are plain float vectors; the trainer turns them into tensors.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace denoise {

struct MixOptions {
  double snr_min_db = -5;
  double snr_max_db = 20;
  // RMS level of the mixture (noisy side), uniform in dBFS; the clean target is scaled alike.
  double level_min_dbfs = -40;
  double level_max_dbfs = -15;
  // Share of mixed examples whose noise is generated (white/pink/brown/hum/band-limited) rather
  // than taken from noise_dirs; 1 when no noise_dirs are given.
  double generated_noise_share = 0.3;
  // Share of examples that are clean -> clean (teaches the model to leave clean speech alone).
  double identity_share = 0.05;
  // Room: share of mixed examples whose speech is reverberated by a synthetic room response
  // (direct path + decaying random reflections, RT60 uniform in [rt60_min_s, rt60_max_s]). The
  // target is the reverberant speech: the model learns to remove noise, not the room.
  double reverb_share = 0.2;
  double rt60_min_s = 0.1;
  double rt60_max_s = 0.6;
  // Microphone/codec bandwidth: share of mixed examples low-passed (4th-order Butterworth, speech
  // and noise alike, so the target is band-limited too) at a cut-off uniform in
  // [bandlimit_min_hz, bandlimit_max_hz] (kept below Nyquist).
  double bandlimit_share = 0.15;
  double bandlimit_min_hz = 3000;
  double bandlimit_max_hz = 7000;
  // Rumble: share of mixed examples whose noise alone is low-passed (4th-order Butterworth at a
  // cut-off uniform in [rumble_min_hz, rumble_max_hz]) before the SNR is set, so that the noise
  // sits under the speech as traffic, engines, ventilation and rooms do. Without it most noise
  // recordings and generated noises are broadband, and a model learns to leave low frequencies
  // alone.
  double rumble_share = 0.2;
  double rumble_min_hz = 150;
  double rumble_max_hz = 1500;
  // Babble: share of mixed examples whose noise is other people talking -- crops of
  // babble_min_talkers..babble_max_talkers other speech files of the same split (training or
  // validation), each at its own level within +-3 dB, summed -- as in cafes, meetings and
  // VoiceBank+DEMAND's babble. Without it no noise source sounds like speech and the model
  // passes babble through. Needs two or more clean files; drawn from the rest otherwise.
  double babble_share = 0.2;
  int babble_min_talkers = 3;
  int babble_max_talkers = 8;
  // Tones: share of mixed examples whose noise (drawn as above) gets a steady tone on top -- a
  // bare sine or a harmonic series (generate_tone) on a fundamental log-uniform in
  // [tone_min_hz, tone_max_hz], at tone_min_db..tone_max_db relative to that noise's RMS --
  // before the SNR is set: mains hum, transformers, fans and power supplies over room noise.
  // Training that draws one noise per example shows hum only alone, and a model trained so
  // lets a tone over broadband noise pass. 0 (off) keeps older recipes' examples.
  double tone_share = 0;
  double tone_min_hz = 40;
  double tone_max_hz = 400;
  double tone_min_db = -10;
  double tone_max_db = 6;
};
void to_json(nlohmann::json& j, const MixOptions& o);
void from_json(const nlohmann::json& j, MixOptions& o);  // strict

struct DataOptions {
  std::vector<std::string> data_dirs;   // paired layouts (Kaggle or noisy/ + clean/)
  std::vector<std::string> clean_dirs;  // clean speech, searched recursively
  std::vector<std::string> noise_dirs;  // noise recordings, searched recursively
  int sample_rate_hz = 16000;
  double crop_seconds = 2.0;      // training example length
  double val_crop_seconds = 4.0;  // validation example length
  double val_fraction = 0.1;      // share of files held out for validation
  int max_val_examples = 64;      // validation set size cap
  uint64_t seed = 1;
  MixOptions mix;
  // Decoded audio kept in memory (MiB); files beyond the cap are decoded again when used.
  int64_t cache_mib = 4096;
};

// What was found; written into checkpoints. Counts are of files (pairs for paired sources).
struct DataSummary {
  std::vector<std::string> sources;  // "kaggle:/path", "pairs:/path", "clean:/path", "noise:/path"
  int64_t train_pairs = 0, val_pairs = 0;     // paired sources
  int64_t train_clean = 0, val_clean = 0;     // mixing: clean speech files
  int64_t train_noise = 0, val_noise = 0;     // mixing: noise files
  int64_t identity_pairs = 0;                 // Kaggle rows with equal names
  double train_seconds = 0, val_seconds = 0;  // speech duration at the model rate
  int64_t skipped_missing = 0, skipped_unreadable = 0, skipped_too_short = 0;
  int64_t trimmed_mismatched = 0;
  // One line per problem kind, with a count and the first few file names, printed once by train.
  std::vector<std::string> warnings;
};
void to_json(nlohmann::json& j, const DataSummary& s);

// One example: equal-length mono signals at the model rate.
struct Example {
  std::vector<float> noisy;
  std::vector<float> clean;
};

// A batch, row-major: row b is samples [b*length, (b+1)*length).
struct Batch {
  int batch_size = 0;
  int64_t length = 0;
  std::vector<float> noisy;
  std::vector<float> clean;
};

// Where the loader threads' time goes (train prints it in its step breakdown). Seconds summed
// over all threads since the data were built; the validation set's drawing is not counted.
struct DataProfile {
  int64_t examples = 0;
  double total_s = 0;      // sample() as a whole
  double decode_s = 0;     // reading and resampling files on their first use (then cached)
  double crop_s = 0;       // picking files and offsets, copying the crops
  double noise_s = 0;      // noise files looped, or generated noise
  double babble_s = 0;     // babble: other talkers' crops summed
  double rumble_s = 0;     // low-passing the noise
  double reverb_s = 0;     // synthetic rooms
  double bandlimit_s = 0;  // microphone band-limiting
  double mix_s = 0;        // SNR scaling, mixing, level and peak limiting
};

class TrainingData {
 public:
  // Scans the sources, pairs and checks files (headers only), splits train/validation and builds
  // the fixed validation set. Throws denoise::Error (naming the folder and what is missing) when
  // no usable training data is found or a folder does not exist.
  explicit TrainingData(const DataOptions& options);
  ~TrainingData();

  const DataOptions& options() const { return options_; }
  const DataSummary& summary() const { return summary_; }
  int64_t crop_samples() const;
  // Seconds of training speech; the trainer's epoch is this much audio.
  double epoch_seconds() const { return summary_.train_seconds; }

  // A random training example of crop_samples() drawn with `rng`. Thread-safe (the decoded-audio
  // cache is shared). Crops whose clean side is silent (below -60 dBFS RMS) are redrawn.
  Example sample(std::mt19937_64& rng) const;
  // Time spent in sample() so far, by part. Thread-safe.
  DataProfile profile() const;

  // The validation examples (val_crop_seconds each), the same for a given seed and file set.
  const std::vector<Example>& validation() const { return validation_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DataOptions options_;
  DataSummary summary_;
  std::vector<Example> validation_;
};

// Worker threads that fill batches ahead of the trainer. Batch i is drawn from an RNG seeded
// with (seed, i), so the sequence of batches depends only on the seed and the start index, not on
// thread timing: a resumed run sees the batches it would have seen.
class BatchLoader {
 public:
  BatchLoader(const TrainingData& data, int batch_size, int workers, uint64_t seed,
              int64_t first_batch = 0, int queue_depth = 4);
  ~BatchLoader();  // stops and joins the workers
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Batches first_batch, first_batch + 1, ... in order; blocks until the next one is ready.
  Batch next();

 private:
  void work();
  const TrainingData& data_;
  int batch_size_;
  uint64_t seed_;
  int queue_depth_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::map<int64_t, Batch> done_;
  int64_t next_to_make_, next_to_give_;
  bool stop_ = false;
  std::exception_ptr error_;  // first exception of a worker, rethrown by next()
  std::vector<std::thread> workers_;
};

// Generated noises used for augmentation, at `rate_hz`, unit RMS. kind: "white", "pink",
// "brown", "hum" (50 or 60 Hz with harmonics and a little noise), "band" (white noise through a
// random band-pass). Throws denoise::Error for an unknown kind.
std::vector<float> generate_noise(const std::string& kind, int64_t samples, int rate_hz,
                                  std::mt19937_64& rng);
std::vector<std::string> generated_noise_kinds();
// A steady tone at `rate_hz`, unit RMS: a bare sine on `fundamental_hz` (a third of draws) or a
// series of up to 12 harmonics below 2 kHz falling off at a random rate. Throws
// denoise::Error unless 0 < fundamental_hz < 0.45 * rate_hz.
std::vector<float> generate_tone(int64_t samples, int rate_hz, double fundamental_hz,
                                 std::mt19937_64& rng);

// Pairing without training: the noisy/clean pairs of one folder in any layout `data_dirs` takes
// (the trainer's own discovery), for evaluation. No file is opened: checking that the files are
// audio, of one rate and of matching lengths is the caller's (evaluate reports each per file).
struct FilePair {
  std::string noisy, clean;  // equal for a Kaggle identity row (clean -> clean)
  bool identity = false;
};
struct UnpairedFile {
  std::string path;    // the file, or the path a CSV row named
  std::string reason;  // "no file of the same name in the other folder", ...
};
struct PairListing {
  std::vector<std::string> sources;  // as DataSummary::sources ("kaggle:/path", "pairs:/path")
  std::vector<FilePair> pairs;       // CSV row order, or sorted by file name
  std::vector<UnpairedFile> unpaired;
  std::vector<std::string> notes;  // ignored CSV rows, pairing fallbacks; one line each
};
// Throws denoise::Error when `dir` does not exist or holds no known layout.
PairListing find_pairs(const std::string& dir);

// Writes a tiny dataset in the Kaggle layout under `dir`:
//   dir/speaker_audios_new/{noisy_audios,clean_audios}/*.wav and dir/audios_meta_data.csv,
// `pairs` noisy/clean pairs of `seconds` each at `rate_hz` (16-bit WAV), plus one identity row
// (clean -> clean) and, when `missing_row` is set, one row naming a file that does not exist.
// Speech comes from `speech_dir` when given (files cut to length), otherwise it is generated
// (harmonic syllables with a moving pitch); noise is generated. Deterministic for a seed.
void write_tiny_kaggle_dataset(const std::string& dir, int pairs, double seconds, int rate_hz,
                               uint64_t seed, const std::string& speech_dir = "",
                               bool missing_row = true);

}  // namespace denoise
