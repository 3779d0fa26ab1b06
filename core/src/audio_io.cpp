#include "denoise/audio_io.h"

#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

SNDFILE* as_sndfile(void* p) { return static_cast<SNDFILE*>(p); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

struct ExtensionFormat {
  const char* extension;
  int major;
};
constexpr ExtensionFormat kExtensions[] = {
    {".wav", SF_FORMAT_WAV},   {".wave", SF_FORMAT_WAV},  {".flac", SF_FORMAT_FLAC},
    {".ogg", SF_FORMAT_OGG},   {".oga", SF_FORMAT_OGG},   {".opus", SF_FORMAT_OGG},
    {".aiff", SF_FORMAT_AIFF}, {".aif", SF_FORMAT_AIFF},  {".aifc", SF_FORMAT_AIFF},
    {".au", SF_FORMAT_AU},     {".snd", SF_FORMAT_AU},    {".caf", SF_FORMAT_CAF},
    {".w64", SF_FORMAT_W64},   {".rf64", SF_FORMAT_RF64}, {".mp3", SF_FORMAT_MPEG},
};

// libsndfile's reason in words for the user: its public codes get ours; its internal messages
// ("Internal psf_fseek() failed.", "SF_INFO struct incomplete.", "Unspecified internal error.")
// say nothing about the file, so they become `generic`; a decoder's own words ("flac decoder
// lost sync") are kept.
std::string sndfile_reason(SNDFILE* file, const std::string& generic) {
  const int code = sf_error(file);
  switch (code) {
    case SF_ERR_NO_ERROR:
      return generic;
    case SF_ERR_UNRECOGNISED_FORMAT:
      return "not an audio format this program reads, or a damaged header";
    case SF_ERR_SYSTEM:
      return std::string("system error: ") + sf_strerror(file);
    case SF_ERR_MALFORMED_FILE:
      return "the header is malformed";
    case SF_ERR_UNSUPPORTED_ENCODING:
      return "the sample encoding is not supported";
    default:
      break;
  }
  std::string text = sf_strerror(file);
  for (const char* jargon : {"nternal", "struct", "psf_", "karma", "pointer", "Unspecified"})
    if (text.find(jargon) != std::string::npos) return generic;
  if (text.rfind("Error : ", 0) == 0) text.erase(0, 8);
  while (!text.empty() && text.back() == '.') text.pop_back();
  return generic + ": " + text;
}

}  // namespace

int sndfile_subtype(const std::string& bits, int major_format) {
  if (bits == "8")
    return major_format == SF_FORMAT_WAV || major_format == SF_FORMAT_RF64 ? SF_FORMAT_PCM_U8
                                                                           : SF_FORMAT_PCM_S8;
  if (bits == "16") return SF_FORMAT_PCM_16;
  if (bits == "24") return SF_FORMAT_PCM_24;
  if (bits == "32") return SF_FORMAT_PCM_32;
  if (bits == "f32") return SF_FORMAT_FLOAT;
  if (bits == "f64") return SF_FORMAT_DOUBLE;
  throw Error("--bits must be 8, 16, 24, 32, f32 or f64, got '" + bits + "'");
}

int major_format_for_extension(const std::string& extension) {
  const std::string e = lower(extension);
  for (const auto& f : kExtensions)
    if (e == f.extension) return f.major;
  return 0;
}

bool is_audio_extension(const std::string& extension) {
  return major_format_for_extension(extension) != 0;
}

std::string describe_format(int sf_format) {
  SF_FORMAT_INFO major{}, sub{};
  major.format = sf_format & SF_FORMAT_TYPEMASK;
  sub.format = sf_format & SF_FORMAT_SUBMASK;
  std::string text;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &major, sizeof(major)) == 0) text = major.name;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &sub, sizeof(sub)) == 0)
    text += std::string(", ") + sub.name;
  return text.empty() ? "unknown format" : text;
}

AudioReader::AudioReader(const std::string& path) : path_(path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error(path + ": no such file");
  if (fs::is_directory(status)) throw Error(path + ": is a directory, expected an audio file");
  if (fs::file_size(path, ec) == 0) throw Error(path + ": empty file (0 bytes)");

  SF_INFO sf{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &sf);
  if (!file) {
    throw Error(path + ": cannot read as audio (" +
                sndfile_reason(nullptr, "a damaged or unsupported file") + ")");
  }
  file_ = file;
  info_.frames = sf.frames;
  info_.sample_rate_hz = sf.samplerate;
  info_.channels = sf.channels;
  info_.format = sf.format;
  auto fail = [&](const std::string& why) {
    sf_close(file);
    file_ = nullptr;
    throw Error(path + ": " + why);
  };
  if (sf.channels < 1) fail("no channels in the file");
  // libsndfile quietly shortens a data chunk that the file cuts off, and notes it in its log
  // ("data : 64000 (should be 20000)"): a truncated file, not a short recording.
  char log[4096] = {0};
  sf_command(file, SFC_GET_LOG_INFO, log, sizeof(log));
  // Only a short data chunk (WAV "data", AIFF "SSND") means lost audio; a wrong RIFF/FORM size
  // alone, common in files from streaming recorders, does not.
  for (const char* cut = std::strstr(log, "(should be"); cut;
       cut = std::strstr(cut + 1, "(should be")) {
    const char* line = cut;
    while (line > log && line[-1] != '\n') --line;
    std::string what(line, std::strcspn(line, "\n"));
    what.erase(0, what.find_first_not_of(" \t"));
    if (what.rfind("data", 0) == 0 || what.rfind("SSND", 0) == 0)
      fail("truncated file: its header promises more data than it holds (" + what + ")");
  }
  if (sf.frames <= 0 || sf.frames == SF_COUNT_MAX)
    fail("no audio samples (zero-length or truncated file)");
  if (sf.samplerate < kMinSampleRateHz || sf.samplerate > kMaxSampleRateHz) {
    fail("sample rate " + std::to_string(sf.samplerate) + " Hz is outside the supported " +
         std::to_string(kMinSampleRateHz) + "-" + std::to_string(kMaxSampleRateHz) + " Hz");
  }
  // Integer files are read scaled to [-1, 1); writing floats to integer files clips instead of
  // wrapping (the limiter keeps peaks below full scale, this is the last safety net).
  sf_command(file, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);
}

AudioReader::~AudioReader() {
  if (file_) sf_close(as_sndfile(file_));
}

int64_t AudioReader::read(float* interleaved, int64_t frames) {
  const int64_t want = std::min<int64_t>(frames, info_.frames - position_);
  if (want <= 0) return 0;
  const sf_count_t got = sf_readf_float(as_sndfile(file_), interleaved, want);
  const int err = sf_error(as_sndfile(file_));
  if (got < want || err != SF_ERR_NO_ERROR) {
    const std::string why = err != SF_ERR_NO_ERROR
                                ? sndfile_reason(as_sndfile(file_), "the decoder failed")
                                : "the data ends early";
    throw Error(path_ + ": truncated or corrupt audio data at sample " +
                std::to_string(position_ + std::max<int64_t>(got, 0)) + " of " +
                std::to_string(info_.frames) + " (" + why + ")");
  }
  const int64_t n = got * info_.channels;
  for (int64_t i = 0; i < n; ++i) {
    if (std::fabs(interleaved[i]) <= kMaxSampleMagnitude) continue;
    const std::string at = std::to_string(position_ + i / info_.channels);
    if (!std::isfinite(interleaved[i]))
      throw Error(path_ + ": contains NaN or infinite samples (first at sample " + at + ")");
    char value[32];
    std::snprintf(value, sizeof value, "%g", static_cast<double>(interleaved[i]));
    throw Error(path_ + ": sample " + at + " is " + value +
                ", more than 120 dB above full scale (limit 1e6): not audio (a corrupt or "
                "mis-scaled float file)");
  }
  position_ += got;
  return got;
}

void AudioReader::seek(int64_t frame) {
  // Reads in order need no seek; decoders that cannot seek (a FLAC without usable seek points,
  // some damaged files) then still read from start to end, as the classical methods do.
  if (frame == position_) return;
  if (frame < 0 || frame > info_.frames)
    throw Error(path_ + ": cannot seek to sample " + std::to_string(frame) + " of " +
                std::to_string(info_.frames));
  if (sf_seek(as_sndfile(file_), frame, SEEK_SET) >= 0) {
    position_ = frame;
    return;
  }
  // The decoder cannot seek there: open the file again and decode up to the frame.
  sf_close(as_sndfile(file_));
  SF_INFO sf{};
  file_ = sf_open(path_.c_str(), SFM_READ, &sf);
  if (!file_) throw Error(path_ + ": cannot read the file again (it changed or went away)");
  sf_command(as_sndfile(file_), SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);
  position_ = 0;
  std::vector<float> skip(static_cast<size_t>(4096) * info_.channels);
  while (position_ < frame) {
    const int64_t n = read(skip.data(), std::min<int64_t>(4096, frame - position_));
    if (n <= 0)
      throw Error(path_ + ": truncated or corrupt audio data before sample " +
                  std::to_string(frame));
  }
}

AudioWriter::AudioWriter(const std::string& path, const AudioInfo& format)
    : path_(path), info_(format) {
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(path + ": output folder " + dir.string() + " does not exist");
  temp_path_ = temporary_path_for(path);
  registered_ = std::make_unique<ScopedTemporaryFile>(temp_path_);
  SF_INFO sf{};
  sf.samplerate = format.sample_rate_hz;
  sf.channels = format.channels;
  sf.format = format.format;
  if (!sf_format_check(&sf)) {
    throw Error(path + ": cannot write " + describe_format(format.format) + " with " +
                std::to_string(format.channels) + " channels at " +
                std::to_string(format.sample_rate_hz) + " Hz");
  }
  SNDFILE* file = sf_open(temp_path_.c_str(), SFM_WRITE, &sf);
  if (!file) {
    const int e = errno;
    std::string why = sf_strerror(nullptr);
    if (access(dir.c_str(), W_OK) != 0)
      why = "output folder " + dir.string() + " is not writable";
    else if (e != 0)
      why += std::string(" (") + std::strerror(e) + ")";
    throw Error(path + ": cannot create output: " + why);
  }
  file_ = file;
  sf_command(file, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  // Vorbis/Opus quality: libsndfile's default (0.4) is audibly lossy for denoised speech.
  double quality = 0.7;
  sf_command(file, SFC_SET_VBR_ENCODING_QUALITY, &quality, sizeof(quality));
}

AudioWriter::~AudioWriter() {
  if (file_) sf_close(as_sndfile(file_));
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

void AudioWriter::write(const float* interleaved, int64_t frames) {
  if (frames <= 0) return;
  const sf_count_t put = sf_writef_float(as_sndfile(file_), interleaved, frames);
  if (put != frames) {
    throw Error(path_ + ": write failed (" + std::string(sf_strerror(as_sndfile(file_))) + ")");
  }
}

void AudioWriter::commit() {
  if (committed_) return;
  sf_write_sync(as_sndfile(file_));
  const int rc = sf_close(as_sndfile(file_));
  file_ = nullptr;
  if (rc != 0)
    throw Error(path_ + ": finishing the output failed (" + std::string(sf_error_number(rc)) + ")");
  std::error_code ec;
  fs::rename(temp_path_, path_, ec);
  if (ec)
    throw Error(path_ + ": cannot move the finished output into place (" + ec.message() + ")");
  committed_ = true;
}

Audio read_audio(const std::string& path) {
  AudioReader reader(path);
  const AudioInfo& info = reader.info();
  Audio audio;
  audio.sample_rate_hz = info.sample_rate_hz;
  audio.channels.assign(info.channels, std::vector<float>(info.frames));
  constexpr int64_t kBlock = 65536;
  std::vector<float> buffer(kBlock * info.channels);
  int64_t pos = 0;
  while (pos < info.frames) {
    const int64_t got = reader.read(buffer.data(), kBlock);
    if (got == 0) break;
    for (int64_t i = 0; i < got; ++i)
      for (int c = 0; c < info.channels; ++c)
        audio.channels[c][pos + i] = buffer[i * info.channels + c];
    pos += got;
  }
  return audio;
}

void write_audio(const std::string& path, const Audio& audio, int sf_format) {
  AudioInfo info;
  info.sample_rate_hz = audio.sample_rate_hz;
  info.channels = static_cast<int>(audio.channels.size());
  info.frames = audio.frames();
  info.format = sf_format != 0 ? sf_format : (SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  AudioWriter writer(path, info);
  std::vector<float> inter(static_cast<size_t>(info.frames) * info.channels);
  for (int64_t i = 0; i < info.frames; ++i)
    for (int c = 0; c < info.channels; ++c) inter[i * info.channels + c] = audio.channels[c][i];
  writer.write(inter.data(), info.frames);
  writer.commit();
}

std::vector<float> mix_to_mono(const std::vector<std::vector<float>>& channels) {
  if (channels.size() == 1) return channels[0];
  if (channels.empty()) return {};
  std::vector<float> out(channels[0].size(), 0.f);
  for (const auto& c : channels)
    for (size_t i = 0; i < out.size() && i < c.size(); ++i) out[i] += c[i];
  const float scale = 1.f / static_cast<float>(channels.size());
  for (float& v : out) v *= scale;
  return out;
}

}  // namespace denoise
