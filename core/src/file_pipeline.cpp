#include "denoise/file_pipeline.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <utility>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/limiter.h"
#include "denoise/resample.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

// Reads planar samples [start, start + count) of the input, zeros outside [0, frames).
using SourceFn =
    std::function<void(int64_t start, int64_t count, std::vector<std::vector<float>>&)>;
// Receives each block of denoised planar samples, in order.
using SinkFn = std::function<void(const std::vector<std::vector<float>>&, int64_t count)>;

// Presents a source at one rate as a source at another, through a streaming libsamplerate
// converter, for methods that run at a fixed rate (trained models). The block engine asks for
// ranges whose starts never decrease, so only the samples from the latest start on are kept; an
// earlier start (a second pass) restarts the conversion from the beginning.
class ResampledSource {
 public:
  ResampledSource(SourceFn inner, int64_t n_in, int channels, int from_rate_hz, int to_rate_hz)
      : inner_(std::move(inner)),
        n_in_(n_in),
        channels_(channels),
        from_(from_rate_hz),
        to_(to_rate_hz),
        n_out_(static_cast<int64_t>(
            std::llround(static_cast<double>(n_in) * to_rate_hz / from_rate_hz))) {
    restart();
  }
  int64_t size() const { return n_out_; }

  void operator()(int64_t start, int64_t count, std::vector<std::vector<float>>& out) {
    const int64_t lo = std::max<int64_t>(0, start), hi = std::min(n_out_, start + count);
    if (lo < kept_start_ && hi > lo) restart();
    while (kept_start_ + kept_size() < hi) pull();
    if (lo > kept_start_) {  // drop what no later request needs
      for (auto& k : kept_) k.erase(k.begin(), k.begin() + (lo - kept_start_));
      kept_start_ = lo;
    }
    for (int c = 0; c < channels_; ++c) {
      out[c].assign(count, 0.f);
      for (int64_t i = lo; i < hi; ++i) out[c][i - start] = kept_[c][i - kept_start_];
    }
  }

 private:
  static constexpr int64_t kChunk = 16384;
  int64_t kept_size() const { return static_cast<int64_t>(kept_[0].size()); }
  void restart() {
    resampler_ = std::make_unique<Resampler>(channels_, from_, to_);
    kept_.assign(channels_, {});
    kept_start_ = 0;
    read_ = 0;
  }
  // Converts the next chunk of input; past the end, pads the output with zeros.
  void pull() {
    if (read_ >= n_in_) {
      for (auto& k : kept_) k.resize(k.size() + kChunk, 0.f);
      return;
    }
    const int64_t count = std::min(kChunk, n_in_ - read_);
    inner_(read_, count, planar_);
    read_ += count;
    inter_.resize(static_cast<size_t>(count) * channels_);
    for (int64_t i = 0; i < count; ++i)
      for (int c = 0; c < channels_; ++c) inter_[i * channels_ + c] = planar_[c][i];
    converted_.clear();
    resampler_->process(inter_.data(), count, read_ >= n_in_, converted_);
    const int64_t frames = static_cast<int64_t>(converted_.size()) / channels_;
    for (int c = 0; c < channels_; ++c)
      for (int64_t i = 0; i < frames; ++i) kept_[c].push_back(converted_[i * channels_ + c]);
    // The converter's last output may fall a few samples short of the exact length: zeros.
    if (read_ >= n_in_ && kept_start_ + kept_size() < n_out_)
      for (auto& k : kept_) k.resize(n_out_ - kept_start_, 0.f);
  }

  SourceFn inner_;
  int64_t n_in_;
  int channels_, from_, to_;
  int64_t n_out_;
  std::unique_ptr<Resampler> resampler_;
  std::vector<std::vector<float>> kept_, planar_{std::vector<std::vector<float>>(channels_)};
  std::vector<float> inter_, converted_;
  int64_t kept_start_ = 0, read_ = 0;
};

// Frames per block for methods with short context: the block's spectrogram and gains stay in
// cache (256 frames of 513 bins is 1.5 MB), which is several times faster than whole-signal
// buffers. Methods with long context get blocks of at least four times their context.
constexpr int64_t kBlockFrames = 256;

// The block engine shared by files and in-memory audio. Each block of output samples is computed
// from the frames that overlap it plus the method's context frames on each side, so the result
// equals processing the whole signal at once (see Denoiser::context_frames).
void run_blocks(const SourceFn& source, int64_t n_samples, int channels,
                std::vector<std::unique_ptr<Denoiser>>& denoisers, int64_t block_samples,
                const SinkFn& sink, const std::function<void()>& restart,
                const std::function<void(int64_t, int64_t)>& progress, int64_t* blocks_out) {
  Denoiser& first = *denoisers[0];
  FrontEnd fe(first.front_end());
  const int64_t hop = fe.hop(), n_fft = fe.n_fft();
  const int64_t half = fe.config().center ? n_fft / 2 : 0;
  const int64_t pad = first.padding_samples();
  // Virtual signal: `pad` zeros, the input, `pad` zeros, then zeros to a whole number of hops
  // (scipy.signal.stft's padded=True), so every sample has a full set of frames.
  const int64_t virtual_len = ((n_samples + 2 * pad + hop - 1) / hop) * hop;
  const int64_t total_frames = fe.num_frames(virtual_len);
  const int64_t context = first.context_frames();
  if (block_samples <= 0) block_samples = std::max(kBlockFrames, 4 * context) * hop;
  const int64_t n_blocks = (n_samples + block_samples - 1) / block_samples;
  if (blocks_out) *blocks_out = n_blocks;

  // Padded coordinate q of original sample i: q = i + pad + half. Frame k spans [k*hop,
  // k*hop+n_fft).
  std::vector<std::vector<float>> raw(channels);
  auto read_frames = [&](int64_t k0, int64_t k1) {
    const int64_t q0 = k0 * hop, q1 = (k1 - 1) * hop + n_fft;
    source(q0 - pad - half, q1 - q0, raw);
  };
  Spectrogram spec;
  std::vector<float> gains;

  std::vector<std::vector<float>> out(channels);
  // A second pass only when a method's whole-signal statistics changed its gains (see
  // Denoiser::end_signal); the sink is restarted first.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass > 0) restart();
    for (auto& d : denoisers) d->begin_signal();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t s = b * block_samples;
      const int64_t count = std::min(block_samples, n_samples - s);
      const int64_t qa = s + pad + half, qb = qa + count;
      // Frames overlapping [qa, qb), then the context around them.
      const int64_t k_first = std::max<int64_t>(0, (qa - n_fft) / hop + 1);
      const int64_t k_last = std::min<int64_t>(total_frames - 1, (qb - 1) / hop);
      const int64_t k0 = std::max<int64_t>(0, k_first - context);
      const int64_t k1 = std::min<int64_t>(total_frames, k_last + 1 + context);
      read_frames(k0, k1);
      for (int c = 0; c < channels; ++c) {
        fe.analyze_range(raw[c].data(), k0, k1 - k0, spec);
        denoisers[c]->gains(spec, gains);
        denoisers[c]->accumulate_signal_statistics(spec);
        for (size_t i = 0; i < spec.bins.size(); ++i) spec.bins[i] *= gains[i];
        out[c].resize(count);
        fe.synthesize_range(spec, k0, total_frames, qa, qb, out[c].data());
      }
      sink(out, count);
      if (progress) progress(s + count, n_samples);
    }
    bool again = false;
    for (auto& d : denoisers) again = d->end_signal() || again;
    if (!again) break;
  }
}

std::string extension_of(const std::string& path) { return fs::path(path).extension().string(); }

int output_format(const AudioInfo& in, const std::string& out_path, const std::string& bits) {
  std::string ext = extension_of(out_path);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const int major = major_format_for_extension(ext);
  if (major == 0)
    throw Error(out_path + ": unknown output format '" + ext + "' (use .wav, .flac, .ogg, ...)");
  const int in_major = in.format & SF_FORMAT_TYPEMASK;
  int sub = in.format & SF_FORMAT_SUBMASK;
  if (ext == ".opus")
    sub = SF_FORMAT_OPUS;
  else if (major == SF_FORMAT_OGG && sub != SF_FORMAT_VORBIS && sub != SF_FORMAT_OPUS)
    sub = SF_FORMAT_VORBIS;
  else if (major == SF_FORMAT_MPEG)
    sub = SF_FORMAT_MPEG_LAYER_III;
  const bool lossy = sub == SF_FORMAT_VORBIS || sub == SF_FORMAT_OPUS ||
                     sub == SF_FORMAT_MPEG_LAYER_III || sub == SF_FORMAT_MPEG_LAYER_I ||
                     sub == SF_FORMAT_MPEG_LAYER_II;
  if (major != in_major && major != SF_FORMAT_OGG && major != SF_FORMAT_MPEG && lossy)
    sub = SF_FORMAT_PCM_16;
  if (!bits.empty()) {
    if (major == SF_FORMAT_OGG || major == SF_FORMAT_MPEG)
      throw Error(out_path + ": --bits does not apply to a lossy format");
    sub = sndfile_subtype(bits, major);
  }
  SF_INFO check{};
  check.samplerate = in.sample_rate_hz;
  check.channels = in.channels;
  check.format = major | sub;
  if (!sf_format_check(&check)) {
    // The input's sample format does not exist in the output container (e.g. float in FLAC).
    if (!bits.empty())
      throw Error(out_path + ": " + describe_format(major | sub) + " is not a valid combination");
    check.format = major | SF_FORMAT_PCM_24;
    if (!sf_format_check(&check)) check.format = major | SF_FORMAT_PCM_16;
    if (!sf_format_check(&check)) throw Error(out_path + ": cannot write this format");
  }
  return check.format;
}

// Reads planar in-memory audio as a source (zeros outside it).
SourceFn memory_source(const std::vector<std::vector<float>>& input) {
  return [&input](int64_t start, int64_t count, std::vector<std::vector<float>>& out) {
    const auto n = static_cast<int64_t>(input.empty() ? 0 : input[0].size());
    for (size_t c = 0; c < input.size(); ++c) {
      out[c].assign(count, 0.f);
      const int64_t lo = std::max<int64_t>(0, start), hi = std::min<int64_t>(n, start + count);
      for (int64_t i = lo; i < hi; ++i) out[c][i - start] = input[c][i];
    }
  };
}

// Per-channel noise sample for methods with a noise profile.
std::vector<std::vector<float>> noise_samples(const Denoiser& d, const PipelineOptions& options,
                                              const SourceFn& source, int64_t n_samples,
                                              int channels, int rate, const std::string& label) {
  std::vector<std::vector<float>> noise(channels);
  if (!options.noise_clip_path.empty()) {
    Audio clip = read_audio(options.noise_clip_path);
    std::vector<std::vector<float>> per_channel;
    if (static_cast<int>(clip.channels.size()) == channels)
      per_channel = clip.channels;
    else
      per_channel.assign(channels, mix_to_mono(clip.channels));
    for (int c = 0; c < channels; ++c)
      noise[c] = resample(per_channel[c], clip.sample_rate_hz, rate);
    return noise;
  }
  const double seconds =
      options.noise_seconds >= 0 ? options.noise_seconds : d.default_noise_seconds();
  int64_t count = n_samples;
  if (seconds >= 0) {
    count = static_cast<int64_t>(std::llround(seconds * rate));
    if (count < 1) throw Error("--noise-seconds must be > 0");
    if (count > n_samples) {
      throw Error(label + ": --noise-seconds " + std::to_string(seconds) +
                  " is longer than the file (" +
                  std::to_string(static_cast<double>(n_samples) / rate) + " s)");
    }
  }
  // Read no more than the method uses, and never more than 10 minutes.
  count = std::min<int64_t>(count, int64_t{600} * rate);
  if (d.max_noise_samples() > 0) count = std::min(count, d.max_noise_samples());
  source(0, count, noise);
  return noise;
}

std::vector<std::unique_ptr<Denoiser>> make_denoisers(const PipelineOptions& options, int channels,
                                                      int rate) {
  std::vector<std::unique_ptr<Denoiser>> ds;
  for (int c = 0; c < channels; ++c)
    ds.push_back(make_denoiser(options.method, options.method_options, rate));
  return ds;
}

void check_length(const Denoiser& d, int64_t n_samples, const std::string& label) {
  const int n_fft = d.front_end().n_fft;
  if (n_samples < n_fft) {
    throw Error(label + ": too short to denoise (" + std::to_string(n_samples) + " samples, the " +
                d.name() + " method needs at least one " + std::to_string(n_fft) +
                "-sample analysis frame)");
  }
}

}  // namespace

std::vector<std::vector<float>> noise_profile(const Denoiser& method,
                                              const PipelineOptions& options,
                                              const std::vector<std::vector<float>>& channels,
                                              int sample_rate_hz, const std::string& label) {
  const auto n = static_cast<int64_t>(channels.empty() ? 0 : channels[0].size());
  return noise_samples(method, options, memory_source(channels), n,
                       static_cast<int>(channels.size()), sample_rate_hz, label);
}

std::vector<std::vector<float>> denoise_channels(const std::vector<std::vector<float>>& channels,
                                                 int sample_rate_hz, const PipelineOptions& options,
                                                 const std::vector<float>* noise) {
  const int n_ch = static_cast<int>(channels.size());
  if (n_ch == 0) return {};
  auto denoisers = make_denoisers(options, n_ch, sample_rate_hz);
  // Methods with their own rate (models) get the audio converted to it and back.
  const int rate = denoisers[0]->front_end().sample_rate_hz;
  std::vector<std::vector<float>> converted;
  if (rate != sample_rate_hz)
    for (const auto& c : channels) converted.push_back(resample(c, sample_rate_hz, rate));
  const auto& input = rate != sample_rate_hz ? converted : channels;
  const int64_t n = static_cast<int64_t>(input[0].size());
  check_length(*denoisers[0], n, "input");
  const SourceFn source = memory_source(input);
  if (denoisers[0]->uses_noise_profile()) {
    if (noise) {
      const std::vector<float> profile =
          rate != sample_rate_hz ? resample(*noise, sample_rate_hz, rate) : *noise;
      for (auto& d : denoisers) d->set_noise(profile);
    } else {
      auto ns = noise_samples(*denoisers[0], options, source, n, n_ch, rate, "input");
      for (int c = 0; c < n_ch; ++c) denoisers[c]->set_noise(ns[c]);
    }
  }
  std::vector<std::vector<float>> result(n_ch);
  for (auto& r : result) r.reserve(n);
  SinkFn sink = [&](const std::vector<std::vector<float>>& block, int64_t count) {
    for (int c = 0; c < n_ch; ++c)
      result[c].insert(result[c].end(), block[c].begin(), block[c].begin() + count);
  };
  auto restart = [&] {
    for (auto& r : result) r.clear();
  };
  run_blocks(source, n, n_ch, denoisers, options.block_samples, sink, restart, {}, nullptr);
  if (rate != sample_rate_hz) {
    const size_t n_in = channels[0].size();
    for (auto& r : result) {
      r = resample(r, rate, sample_rate_hz);
      r.resize(n_in, 0.f);
    }
  }
  return result;
}

FileReport denoise_file(const std::string& input, const std::string& output,
                        const PipelineOptions& options,
                        const std::function<void(int64_t, int64_t)>& progress) {
  if (!std::isfinite(options.gain_db) || options.gain_db < -100 || options.gain_db > 60)
    throw Error("--gain-db must be a number in [-100, 60] dB");
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    throw Error(input + ": output " + output + " is the input file; refusing to overwrite it");

  AudioReader reader(input);
  const AudioInfo info = reader.info();
  const int ch = info.channels;
  const int64_t n_in = info.frames;
  auto denoisers = make_denoisers(options, ch, info.sample_rate_hz);
  // The rate the method runs at: the input's for classical methods, a model's own rate otherwise.
  const int rate = denoisers[0]->front_end().sample_rate_hz;

  const int out_rate = options.output_rate_hz > 0 ? options.output_rate_hz : info.sample_rate_hz;
  if (out_rate < kMinSampleRateHz || out_rate > kMaxSampleRateHz)
    throw Error("--rate " + std::to_string(out_rate) + " Hz is outside 8000-96000 Hz");
  if (ch > kMaxResampleChannels && (rate != info.sample_rate_hz || out_rate != rate))
    throw Error(input + ": " + std::to_string(ch) + " channels; converting the sample rate (" +
                std::to_string(info.sample_rate_hz) + " Hz to " +
                std::to_string(rate != info.sample_rate_hz ? rate : out_rate) +
                " Hz) takes at most " + std::to_string(kMaxResampleChannels));
  AudioInfo out_info = info;
  out_info.sample_rate_hz = out_rate;
  out_info.format = output_format(info, output, options.output_bits);

  std::vector<float> inter;
  SourceFn file_source = [&](int64_t start, int64_t count, std::vector<std::vector<float>>& out) {
    for (int c = 0; c < ch; ++c) out[c].assign(count, 0.f);
    const int64_t lo = std::max<int64_t>(0, start), hi = std::min<int64_t>(n_in, start + count);
    if (hi <= lo) return;
    inter.resize(static_cast<size_t>(hi - lo) * ch);
    reader.seek(lo);
    const int64_t got = reader.read(inter.data(), hi - lo);
    for (int64_t i = 0; i < got; ++i)
      for (int c = 0; c < ch; ++c) out[c][lo - start + i] = inter[i * ch + c];
  };
  SourceFn source = file_source;
  int64_t n = n_in;  // samples at the processing rate
  if (rate != info.sample_rate_hz) {
    auto converted =
        std::make_shared<ResampledSource>(file_source, n_in, ch, info.sample_rate_hz, rate);
    n = converted->size();
    source = [converted](int64_t start, int64_t count, std::vector<std::vector<float>>& out) {
      (*converted)(start, count, out);
    };
  }
  check_length(*denoisers[0], n, input);

  if (denoisers[0]->uses_noise_profile()) {
    auto ns = noise_samples(*denoisers[0], options, source, n, ch, rate, input);
    for (int c = 0; c < ch; ++c) denoisers[c]->set_noise(ns[c]);
  }

  // The output chain; rebuilt (new temporary file) if the pass has to be redone.
  std::unique_ptr<AudioWriter> writer;
  std::unique_ptr<Resampler> resampler;
  std::unique_ptr<PeakLimiter> limiter;
  int64_t written = 0, consumed = 0;
  auto start_output = [&] {
    writer.reset();  // removes an earlier temporary file
    writer = std::make_unique<AudioWriter>(output, out_info);
    if (out_rate != rate) resampler = std::make_unique<Resampler>(ch, rate, out_rate);
    limiter = std::make_unique<PeakLimiter>(ch, out_rate);
    written = consumed = 0;
  };
  start_output();
  const float gain = static_cast<float>(std::pow(10.0, options.gain_db / 20.0));
  // The output lasts as long as the input, whatever rate the method ran at.
  const int64_t out_total = static_cast<int64_t>(
      std::llround(static_cast<double>(n_in) * out_rate / info.sample_rate_hz));
  std::vector<float> block_inter, resampled, limited;

  auto emit = [&](const float* data, int64_t frames) {
    frames = std::min(frames, out_total - written);  // the resampler may overshoot by a few frames
    if (frames <= 0) return;
    writer->write(data, frames);
    written += frames;
  };
  SinkFn sink = [&](const std::vector<std::vector<float>>& block, int64_t count) {
    block_inter.resize(static_cast<size_t>(count) * ch);
    for (int64_t i = 0; i < count; ++i)
      for (int c = 0; c < ch; ++c) {
        const float v = block[c][i] * gain;
        // Last line of defence: a method must never write NaN or infinity into a file.
        if (!std::isfinite(v))
          throw Error(input + ": the " + options.method + " method produced a non-finite sample " +
                      "(at sample " + std::to_string(consumed + i) + " of " + std::to_string(n) +
                      " at " + std::to_string(rate) + " Hz); nothing written");
        block_inter[i * ch + c] = v;
      }
    consumed += count;
    const float* data = block_inter.data();
    int64_t frames = count;
    if (resampler) {
      resampled.clear();
      resampler->process(block_inter.data(), count, consumed == n, resampled);
      data = resampled.data();
      frames = static_cast<int64_t>(resampled.size()) / ch;
    }
    limited.clear();
    limiter->process(data, frames, limited);
    emit(limited.data(), static_cast<int64_t>(limited.size()) / ch);
  };

  FileReport report;
  const int64_t block_samples =
      options.block_seconds > 0 ? std::max<int64_t>(1, std::llround(options.block_seconds * rate))
                                : options.block_samples;
  run_blocks(source, n, ch, denoisers, block_samples, sink, start_output, progress, &report.blocks);
  limited.clear();
  limiter->flush(limited);
  emit(limited.data(), static_cast<int64_t>(limited.size()) / ch);
  if (written < out_total) {  // the resampler produced a few frames fewer than the exact ratio
    std::vector<float> zeros(static_cast<size_t>(out_total - written) * ch, 0.f);
    emit(zeros.data(), out_total - written);
  }
  writer->commit();
  report.frames = written;
  report.sample_rate_hz = out_rate;
  report.channels = ch;
  report.limiter_reduction_db = limiter->max_reduction_db();
  return report;
}

}  // namespace denoise
