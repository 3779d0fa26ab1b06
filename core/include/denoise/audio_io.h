// Audio files through libsndfile: block-wise reading and writing of interleaved float samples.
//
// Reading: any format libsndfile decodes (WAV, FLAC, OGG/Vorbis, Opus, AIFF, CAF, MP3, ...), any
// channel count, 8-96 kHz. Integer formats are scaled to [-1, 1); float files are passed as stored.
// NaN/Inf samples and samples beyond kMaxSampleMagnitude are reported as errors when read.
//
// Writing: AudioWriter writes into a hidden temporary file in the destination folder and renames it
// over the final name only in commit(); a writer destroyed without commit() removes its temporary
// file, so an error or a crash never leaves a partial file under the final name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "denoise/atomic_file.h"

namespace denoise {

struct AudioInfo {
  int64_t frames = 0;  // samples per channel
  int sample_rate_hz = 0;
  int channels = 0;
  int format = 0;  // libsndfile SF_FORMAT_* (major | subtype)
};

// "WAV 16-bit PCM" and the like, for messages.
std::string describe_format(int sf_format);

// Largest sample magnitude accepted on input (120 dB above full scale). Float files may hold
// values above 1 (some tools store integer-scaled floats, up to 32768), but a larger value is
// not a recording: squared in a spectrum it overflows single precision, so the methods would
// give NaN or silence. Such a file is refused with the sample's position.
inline constexpr float kMaxSampleMagnitude = 1e6f;

// Lowest and highest sample rates accepted on input.
inline constexpr int kMinSampleRateHz = 8000;
inline constexpr int kMaxSampleRateHz = 96000;

class AudioReader {
 public:
  // Opens and validates `path` (exists, is audio, has samples, rate within 8-96 kHz). Errors name the file and say what is wrong in this project's words.
  explicit AudioReader(const std::string& path);
  ~AudioReader();
  AudioReader(const AudioReader&) = delete;
  AudioReader& operator=(const AudioReader&) = delete;

  const AudioInfo& info() const { return info_; }
  const std::string& path() const { return path_; }

  // Reads up to `frames` frames (interleaved, channels() floats each) from the current position.
  // Returns the number of frames read: fewer only at the end of the file.
  int64_t read(float* interleaved, int64_t frames);
  // Moves to `frame` (0..frames). A no-op at the current position; where the decoder cannot
  // seek, the file is decoded again from its start up to `frame`.
  void seek(int64_t frame);

 private:
  std::string path_;
  AudioInfo info_;
  void* file_ = nullptr;  // SNDFILE*
  int64_t position_ = 0;
};

class AudioWriter {
 public:
  // `format` gives the rate, channels and libsndfile format of the output.
  AudioWriter(const std::string& path, const AudioInfo& format);
  ~AudioWriter();
  AudioWriter(const AudioWriter&) = delete;
  AudioWriter& operator=(const AudioWriter&) = delete;

  void write(const float* interleaved, int64_t frames);
  // Closes the temporary file and renames it to the final path.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  std::unique_ptr<ScopedTemporaryFile> registered_;  // removed on a fatal signal
  AudioInfo info_;
  void* file_ = nullptr;  // SNDFILE*
  bool committed_ = false;
};

// Whole-file helpers (tests, noise clips, small files). Samples are planar: [channel][frame].
struct Audio {
  int sample_rate_hz = 0;
  std::vector<std::vector<float>> channels;
  int64_t frames() const { return channels.empty() ? 0 : static_cast<int64_t>(channels[0].size()); }
};
Audio read_audio(const std::string& path);
// Mean of planar channels (a mono signal is returned as is; no channels: empty).
std::vector<float> mix_to_mono(const std::vector<std::vector<float>>& channels);
// Writes through AudioWriter (temporary file + rename). `format` 0 means WAV 32-bit float.
void write_audio(const std::string& path, const Audio& audio, int sf_format = 0);

// libsndfile major format for a file extension (".wav" -> SF_FORMAT_WAV); 0 if unknown.
int major_format_for_extension(const std::string& extension);
// libsndfile subtype for a sample format given as "8", "16", "24", "32" (PCM), "f32" or "f64"
// (float) in a file of `major_format`: 8-bit is unsigned in WAV and RF64, signed elsewhere. Throws
// denoise::Error for another value.
int sndfile_subtype(const std::string& bits, int major_format);
// True for extensions libsndfile can decode; used to pick audio files in folders.
bool is_audio_extension(const std::string& extension);

}  // namespace denoise
