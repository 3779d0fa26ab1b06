#include "denoise/dataset.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "denoise/audio_io.h"
#include "denoise/error.h"
#include "denoise/json_strict.h"
#include "denoise/resample.h"
#include "random_util.h"
#include "sources.h"

namespace denoise {
namespace {

using detail::FileItem;
using detail::PairItem;

// Crops whose clean side is below this RMS (-60 dBFS) are redrawn, at most kSilenceTries times.
constexpr double kSilentRms = 1e-3;
constexpr int kSilenceTries = 10;
// Draws that hit a file which fails to decode are retried this often before giving up (then the
// example is silence rather than an exception in a worker thread).
constexpr int kMaxDraws = 200;
constexpr double kPeakLimit = 0.99;

// ---------------------------------------------------------------------------------------------
// Profiling (DataProfile): nanoseconds per part, summed over the loader threads. Decoding is
// counted on its own and taken out of the part it happened in (a crop or a babble talker that
// first touches a file), so the parts add up to the whole.

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

thread_local int64_t t_decode_ns = 0;  // this thread's decoding so far

class Timed {
 public:
  explicit Timed(std::atomic<int64_t>& total)
      : total_(total), start_(now_ns()), decode_(t_decode_ns) {}
  ~Timed() { total_ += now_ns() - start_ - (t_decode_ns - decode_); }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  std::atomic<int64_t>& total_;
  int64_t start_, decode_;
};

struct ProfileCounters {
  std::atomic<int64_t> examples{0}, total{0}, decode{0}, crop{0}, noise{0}, babble{0}, rumble{0},
      reverb{0}, bandlimit{0}, mix{0};
  void reset() {
    for (auto* c :
         {&examples, &total, &decode, &crop, &noise, &babble, &rumble, &reverb, &bandlimit, &mix})
      *c = 0;
  }
};

double db_to_gain(double db) { return std::pow(10.0, db / 20.0); }

// ---------------------------------------------------------------------------------------------
// Augmentation

// A synthetic room: the direct path plus kReflections reflections at random delays up to the
// RT60 (at most 0.5 s), each with a random sign and an amplitude on the 60 dB-per-RT60 decay,
// their total energy 0-10 dB below the direct path. Sparse, so that convolving a 2 s crop costs
// a few milliseconds on a loader thread.
constexpr int kReflections = 256;

void reverberate(std::vector<float>& x, double rt60_s, int rate, std::mt19937_64& rng) {
  const auto length = static_cast<int64_t>(std::min(rt60_s, 0.5) * rate);
  if (length < 2 || x.empty()) return;
  std::vector<int64_t> delay(kReflections);
  std::vector<double> gain(kReflections);
  double energy = 0;
  for (int k = 0; k < kReflections; ++k) {
    // Delays from 2.5 ms on (the first reflections), denser late as in a real room tail.
    const double u = std::sqrt(detail::uniform01(rng));
    delay[k] =
        std::max<int64_t>(static_cast<int64_t>(0.0025 * rate), static_cast<int64_t>(u * length));
    const double t = static_cast<double>(delay[k]) / rate;
    gain[k] = (detail::uniform01(rng) < 0.5 ? -1 : 1) * std::exp(-6.9078 * t / rt60_s);
    energy += gain[k] * gain[k];
  }
  const double ratio_db = detail::uniform(rng, 0, 10);  // direct-to-reverberant ratio
  const double scale = std::sqrt(std::pow(10.0, -ratio_db / 10) / std::max(energy, 1e-12));
  const std::vector<float> dry = x;
  const auto n = static_cast<int64_t>(x.size());
  for (int k = 0; k < kReflections; ++k) {
    const auto g = static_cast<float>(gain[k] * scale);
    for (int64_t i = delay[k]; i < n; ++i) x[i] += g * dry[i - delay[k]];
  }
}

// 4th-order Butterworth low-pass: two biquads (bilinear transform, Q of each Butterworth pair).
void low_pass(std::vector<float>& x, double cutoff_hz, int rate) {
  constexpr double kPi = 3.141592653589793;
  for (const double q : {0.5411961, 1.3065630}) {
    const double w = 2 * kPi * cutoff_hz / rate;
    const double alpha = std::sin(w) / (2 * q), c = std::cos(w);
    const double a0 = 1 + alpha;
    const double b0 = (1 - c) / 2 / a0, b1 = (1 - c) / a0, b2 = b0;
    const double a1 = -2 * c / a0, a2 = (1 - alpha) / a0;
    double s1 = 0, s2 = 0;  // transposed direct form II
    for (auto& v : x) {
      const double in = v;
      const double out = b0 * in + s1;
      s1 = b1 * in - a1 * out + s2;
      s2 = b2 * in - a2 * out;
      v = static_cast<float>(out);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Split: FNV-1a 64 over (seed, key), finished with the splitmix64 mixer so that keys differing
// only in their last characters (p001_001.wav, p001_002.wav) still spread over [0, 1). Both are
// fixed, portable functions, unlike std::hash.

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double split_uniform(const std::string& key, uint64_t seed) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(seed >> (8 * i));
  const uint64_t h = fnv1a64(key.data(), key.size(), fnv1a64(bytes, 8));
  return static_cast<double>(splitmix64_mix(h) >> 11) * 0x1.0p-53;
}

const std::string& order_path(const FileItem& f) { return f.path; }
const std::string& order_path(const PairItem& p) { return p.noisy; }

// Splits items by the hash of their key: val when below `fraction`. Items sharing a key (the
// noisy versions of one clean utterance) stay together. Both outputs are ordered by hash, a
// pseudo-random order that does not depend on how the files were listed.
template <class Item>
void split(const std::vector<Item>& items, uint64_t seed, double fraction, std::vector<Item>& train,
           std::vector<Item>& val) {
  std::vector<std::pair<double, const Item*>> ranked;
  for (const auto& item : items) ranked.emplace_back(split_uniform(item.key, seed), &item);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.second->key != b.second->key) return a.second->key < b.second->key;
    return order_path(*a.second) < order_path(*b.second);
  });
  const size_t n = ranked.size();
  size_t val_count = 0;
  while (val_count < n && ranked[val_count].first < fraction) ++val_count;
  auto group_end = [&](size_t begin) {  // one past the last item with ranked[begin]'s key
    size_t e = begin;
    while (e < n && ranked[e].second->key == ranked[begin].second->key) ++e;
    return e;
  };
  if (val_count == n && n > 0) {
    // Everything fell into validation: give the last key group back to training.
    size_t last = n - 1;
    while (last > 0 && ranked[last - 1].second->key == ranked[n - 1].second->key) --last;
    val_count = last;
  } else if (val_count == 0 && fraction > 0 && n >= 2 && group_end(0) < n) {
    // Nothing in validation although two keys exist: hold out the lowest-ranked key.
    val_count = group_end(0);
  }
  for (size_t i = 0; i < n; ++i) (i < val_count ? val : train).push_back(*ranked[i].second);
}

// ---------------------------------------------------------------------------------------------

// Decoded audio at the model rate, shared by all threads. Decoding happens outside the lock, so
// two threads may decode the same file at once; the first to finish fills the entry.
class AudioCache {
 public:
  AudioCache(int rate_hz, int64_t capacity_bytes, std::atomic<int64_t>& decode_ns)
      : rate_hz_(rate_hz), capacity_(capacity_bytes), decode_ns_(decode_ns) {}

  // Null when the file cannot be decoded (then it is marked bad and never tried again).
  std::shared_ptr<const std::vector<float>> get(const std::string& path) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bad_.count(path)) return nullptr;
      const auto it = cache_.find(path);
      if (it != cache_.end()) return it->second;
    }
    std::shared_ptr<const std::vector<float>> audio;
    std::string why;
    const int64_t start = now_ns();
    try {
      audio = std::make_shared<const std::vector<float>>(decode(path));
    } catch (const std::exception& e) {
      why = e.what();
    }
    const int64_t spent = now_ns() - start;
    t_decode_ns += spent;
    decode_ns_ += spent;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!audio) {
      if (bad_.insert(path).second) {
        // Training goes on without the file; say so once, since it was fine at the header scan.
        std::cerr << "denoise: training data: dropped a file that failed to decode: " << why
                  << "\n";
      }
      return nullptr;
    }
    const auto it = cache_.find(path);
    if (it != cache_.end()) return it->second;
    const auto bytes = static_cast<int64_t>(audio->size() * sizeof(float));
    if (bytes_ + bytes <= capacity_) {
      cache_.emplace(path, audio);
      bytes_ += bytes;
    }
    return audio;
  }

 private:
  std::vector<float> decode(const std::string& path) const {
    const Audio audio = read_audio(path);
    std::vector<float> mono;
    if (audio.channels.size() == 1) {
      mono = audio.channels[0];
    } else {
      mono.assign(audio.frames(), 0.f);
      const float scale = 1.0f / static_cast<float>(audio.channels.size());
      for (const auto& ch : audio.channels)
        for (size_t i = 0; i < mono.size(); ++i) mono[i] += ch[i] * scale;
    }
    return resample(mono, audio.sample_rate_hz, rate_hz_);
  }

  int rate_hz_;
  int64_t capacity_;
  std::atomic<int64_t>& decode_ns_;

 public:
  int64_t capacity_bytes() const { return capacity_; }

 private:
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::shared_ptr<const std::vector<float>>> cache_;
  mutable std::unordered_set<std::string> bad_;
  mutable int64_t bytes_ = 0;
};

struct Pool {
  std::vector<PairItem> pairs;
  std::vector<FileItem> clean, noise;
  std::vector<double> pair_cumulative, clean_cumulative;  // running sums of lengths
  double pair_samples = 0, clean_samples = 0;

  void finish() {
    for (const auto& p : pairs) pair_cumulative.push_back(pair_samples += p.length);
    for (const auto& c : clean) clean_cumulative.push_back(clean_samples += c.length);
  }
  bool empty() const { return pairs.empty() && clean.empty(); }
};

// Index drawn with probability proportional to the item's length: every second of audio is
// equally likely to be cropped, so long files are not under-used.
size_t pick_weighted(const std::vector<double>& cumulative, std::mt19937_64& rng) {
  const double x = detail::uniform01(rng) * cumulative.back();
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), x);
  return std::min(static_cast<size_t>(it - cumulative.begin()), cumulative.size() - 1);
}

struct Crop {
  std::vector<float> clean, noisy;  // noisy: paired sources only
  bool paired = false;
  int64_t begin = 0, end = 0;  // samples that come from the file (the rest is zero padding)
};

// `n` samples of `x` from a random offset; zero-padded at a random offset when `x` is shorter.
void random_crop(const float* x, int64_t length, int64_t n, int64_t offset_or_pad,
                 std::vector<float>& out) {
  out.assign(n, 0.f);
  if (length >= n) {
    std::copy(x + offset_or_pad, x + offset_or_pad + n, out.begin());
  } else {
    std::copy(x, x + length, out.begin() + offset_or_pad);
  }
}

int64_t draw_offset(int64_t length, int64_t n, std::mt19937_64& rng) {
  return detail::uniform_index(rng, std::abs(length - n) + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct TrainingData::Impl {
  DataOptions options;
  Pool train, val;
  mutable ProfileCounters profile;
  AudioCache cache;

  explicit Impl(const DataOptions& o)
      : options(o),
        cache(o.sample_rate_hz, std::max<int64_t>(0, o.cache_mib) << 20, profile.decode) {}

  bool crop_pair(const PairItem& item, int64_t n, std::mt19937_64& rng, Crop& crop) const {
    const auto clean = cache.get(item.clean);
    if (!clean) return false;
    const auto noisy = item.identity ? clean : cache.get(item.noisy);
    if (!noisy) return false;
    const auto length = static_cast<int64_t>(std::min(clean->size(), noisy->size()));
    if (length == 0) return false;
    const int64_t offset = draw_offset(length, n, rng);
    random_crop(clean->data(), length, n, offset, crop.clean);
    random_crop(noisy->data(), length, n, offset, crop.noisy);
    crop.paired = true;
    crop.begin = length >= n ? 0 : offset;
    crop.end = length >= n ? n : offset + length;
    return true;
  }

  bool crop_clean(const FileItem& item, int64_t n, std::mt19937_64& rng, Crop& crop) const {
    const auto clean = cache.get(item.path);
    if (!clean || clean->empty()) return false;
    const auto length = static_cast<int64_t>(clean->size());
    const int64_t offset = draw_offset(length, n, rng);
    random_crop(clean->data(), length, n, offset, crop.clean);
    crop.paired = false;
    crop.begin = length >= n ? 0 : offset;
    crop.end = length >= n ? n : offset + length;
    return true;
  }

  // `n` samples of noise: generated, or from a noise file of the pool (picked uniformly, so a
  // short noise recording counts as much as a long one), looped when shorter than `n`.
  std::vector<float> noise_for(const Pool& pool, int64_t n, std::mt19937_64& rng) const {
    const Timed timed(profile.noise);
    const double generated_share = pool.noise.empty() ? 1.0 : options.mix.generated_noise_share;
    if (detail::uniform01(rng) >= generated_share) {
      const FileItem& item = pool.noise[detail::uniform_index(rng, pool.noise.size())];
      const auto audio = cache.get(item.path);
      if (audio && !audio->empty()) {
        const auto length = static_cast<int64_t>(audio->size());
        std::vector<float> out(n);
        int64_t pos = detail::uniform_index(rng, length);
        for (int64_t i = 0; i < n; ++i, ++pos) out[i] = (*audio)[pos % length];
        return out;
      }
    }
    static const std::vector<std::string> kinds = generated_noise_kinds();
    const std::string& kind = kinds[detail::uniform_index(rng, kinds.size())];
    return generate_noise(kind, n, options.sample_rate_hz, rng);
  }

  // Babble (see MixOptions): false when the pool has fewer than two clean files or every
  // crop drawn was silent.
  bool babble_for(const Pool& pool, int64_t n, std::mt19937_64& rng,
                  std::vector<float>& out) const {
    const Timed timed(profile.babble);
    const MixOptions& mix = options.mix;
    if (pool.clean.size() < 2) return false;
    const int talkers =
        mix.babble_min_talkers + static_cast<int>(detail::uniform_index(
                                     rng, mix.babble_max_talkers - mix.babble_min_talkers + 1));
    out.assign(n, 0.f);
    int voiced = 0;
    for (int t = 0; t < talkers; ++t) {
      Crop talker;
      if (!crop_clean(pool.clean[pick_weighted(pool.clean_cumulative, rng)], n, rng, talker))
        continue;
      const double level =
          detail::rms(talker.clean.data() + talker.begin, talker.end - talker.begin);
      const double gain_db = detail::uniform(rng, -3, 3);
      if (!(level > kSilentRms)) continue;
      const auto g = static_cast<float>(db_to_gain(gain_db) / level);
      for (int64_t i = 0; i < n; ++i) out[i] += g * talker.clean[i];
      ++voiced;
    }
    return voiced > 0;
  }

  Example finish(Crop& crop, const Pool& pool, std::mt19937_64& rng, bool allow_identity) const {
    const MixOptions& mix = options.mix;
    Example ex;
    const bool identity = detail::uniform01(rng) < (allow_identity ? mix.identity_share : 0.0);
    if (identity) {
      ex.noisy = crop.clean;
    } else if (crop.paired) {
      ex.noisy = std::move(crop.noisy);
    } else {
      const auto n = static_cast<int64_t>(crop.clean.size());
      std::vector<float> noise;
      // Babble and rumble are drawn only when enabled, so that a mix without them keeps the
      // random sequence (and the examples) it had before they existed.
      if (!(mix.babble_share > 0 && detail::uniform01(rng) < mix.babble_share &&
            babble_for(pool, n, rng, noise)))
        noise = noise_for(pool, n, rng);
      if (mix.rumble_share > 0 && detail::uniform01(rng) < mix.rumble_share) {
        const Timed timed(profile.rumble);
        // Only noise with energy down there: a high band (birds, band-limited noise) low-passed
        // would leave a filter residue that the SNR scaling then blows up.
        std::vector<float> low = noise;
        low_pass(low,
                 std::min(detail::uniform(rng, mix.rumble_min_hz, mix.rumble_max_hz),
                          0.45 * options.sample_rate_hz),
                 options.sample_rate_hz);
        if (detail::rms(low) > 0.1 * detail::rms(noise)) noise = std::move(low);
      }
      if (mix.tone_share > 0 && detail::uniform01(rng) < mix.tone_share) {
        const Timed timed(profile.noise);
        const double hz =
            mix.tone_min_hz * std::pow(mix.tone_max_hz / mix.tone_min_hz, detail::uniform01(rng));
        const double level_db = detail::uniform(rng, mix.tone_min_db, mix.tone_max_db);
        const auto tone = generate_tone(n, options.sample_rate_hz, hz, rng);
        const auto g = static_cast<float>(detail::rms(noise) * db_to_gain(level_db));
        for (int64_t i = 0; i < n; ++i) noise[i] += g * tone[i];
      }
      if (detail::uniform01(rng) < mix.reverb_share) {
        const Timed timed(profile.reverb);
        reverberate(crop.clean, detail::uniform(rng, mix.rt60_min_s, mix.rt60_max_s),
                    options.sample_rate_hz, rng);
      }
      if (detail::uniform01(rng) < mix.bandlimit_share) {
        const Timed timed(profile.bandlimit);
        // Both parts alike, so the mixture is the band-limited mixture and the SNR below is
        // the SNR within the band.
        const double cutoff =
            std::min(detail::uniform(rng, mix.bandlimit_min_hz, mix.bandlimit_max_hz),
                     0.45 * options.sample_rate_hz);
        low_pass(crop.clean, cutoff, options.sample_rate_hz);
        low_pass(noise, cutoff, options.sample_rate_hz);
      }
      const Timed timed(profile.mix);
      const double snr_db = detail::uniform(rng, mix.snr_min_db, mix.snr_max_db);
      // Speech level over the part of the crop that holds the file, not the zero padding, so a
      // padded crop gets the same SNR as a full one.
      const double speech = detail::rms(crop.clean.data() + crop.begin, crop.end - crop.begin);
      const double noise_rms = detail::rms(noise);
      const double gain = noise_rms > 0 ? speech / (noise_rms * db_to_gain(snr_db)) : 0.0;
      ex.noisy.resize(n);
      for (int64_t i = 0; i < n; ++i)
        ex.noisy[i] = crop.clean[i] + static_cast<float>(gain * noise[i]);
    }
    ex.clean = std::move(crop.clean);
    const Timed timed(profile.mix);
    // Level: the mixture's RMS uniform in dBFS, the target scaled alike so that the model learns
    // a mapping that does not depend on the input level.
    const double level_dbfs = detail::uniform(rng, mix.level_min_dbfs, mix.level_max_dbfs);
    const double noisy_rms = detail::rms(ex.noisy);
    double gain = noisy_rms > 0 ? db_to_gain(level_dbfs) / noisy_rms : 1.0;
    double peak = 0;
    for (size_t i = 0; i < ex.noisy.size(); ++i)
      peak = std::max({peak, std::abs(ex.noisy[i] * gain), std::abs(ex.clean[i] * gain)});
    if (peak > kPeakLimit) gain *= kPeakLimit / peak;
    const auto g = static_cast<float>(gain);
    for (auto& v : ex.noisy) v *= g;
    for (auto& v : ex.clean) v *= g;
    return ex;
  }

  // A random example of `n` samples from `pool`: source weighted by its seconds, item by length.
  Example draw(const Pool& pool, int64_t n, std::mt19937_64& rng, bool allow_identity) const {
    int silent = 0;
    for (int attempt = 0; attempt < kMaxDraws; ++attempt) {
      const bool use_pairs =
          pool.clean.empty() ||
          (!pool.pairs.empty() &&
           detail::uniform01(rng) * (pool.pair_samples + pool.clean_samples) < pool.pair_samples);
      Crop crop;
      std::optional<Timed> timed(std::in_place, profile.crop);
      const bool ok =
          use_pairs
              ? crop_pair(pool.pairs[pick_weighted(pool.pair_cumulative, rng)], n, rng, crop)
              : crop_clean(pool.clean[pick_weighted(pool.clean_cumulative, rng)], n, rng, crop);
      if (!ok) continue;
      if (detail::rms(crop.clean) < kSilentRms && ++silent < kSilenceTries) continue;
      timed.reset();
      return finish(crop, pool, rng, allow_identity);
    }
    return Example{std::vector<float>(n, 0.f), std::vector<float>(n, 0.f)};
  }

  // Decodes every file of both pools into the cache on `threads` threads, when they all fit:
  // the first epoch then reads nothing, instead of decoding on the loader threads while the
  // trainer waits, and the steps cost the same from the first on. Files that fail are marked bad
  // (and reported) as on first use.
  void preload(int threads) const {
    std::vector<std::string> paths;
    double samples = 0;
    for (const Pool* pool : {&train, &val}) {
      for (const auto& p : pool->pairs) {
        paths.push_back(p.clean);
        if (!p.identity) paths.push_back(p.noisy);
        samples += (p.identity ? 1 : 2) * static_cast<double>(p.length);
      }
      for (const auto* items : {&pool->clean, &pool->noise})
        for (const auto& f : *items) {
          paths.push_back(f.path);
          samples += static_cast<double>(f.length);
        }
    }
    // Headers give lengths at the model rate; noise files are usually shorter than looped.
    if (samples * sizeof(float) > 0.9 * static_cast<double>(cache.capacity_bytes())) return;
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next++) < paths.size();) cache.get(paths[i]);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }

  // A validation example from one given item (new offsets while the crop is silent); false when
  // the item's files fail to decode.
  template <class Item>
  bool draw_item(const Item& item, int64_t n, std::mt19937_64& rng, Example& out) const {
    for (int attempt = 1;; ++attempt) {
      Crop crop;
      bool ok;
      if constexpr (std::is_same_v<Item, PairItem>) {
        ok = crop_pair(item, n, rng, crop);
      } else {
        ok = crop_clean(item, n, rng, crop);
      }
      if (!ok) return false;
      if (detail::rms(crop.clean) < kSilentRms && attempt < kSilenceTries) continue;
      out = finish(crop, val, rng, /*allow_identity=*/false);
      return true;
    }
  }
};

namespace {

void check_options(const DataOptions& o) {
  auto fail = [](const std::string& what) { throw Error("training data options: " + what); };
  if (o.data_dirs.empty() && o.clean_dirs.empty())
    fail("no data given: name paired folders (data_dirs) or clean speech folders (clean_dirs)");
  if (o.sample_rate_hz < kMinSampleRateHz || o.sample_rate_hz > kMaxSampleRateHz)
    fail("sample_rate_hz must be within 8000-96000 (got " + std::to_string(o.sample_rate_hz) + ")");
  if (!(o.crop_seconds > 0) || !(o.val_crop_seconds > 0))
    fail("crop_seconds and val_crop_seconds must be > 0 (got " + std::to_string(o.crop_seconds) +
         ", " + std::to_string(o.val_crop_seconds) + ")");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1))
    fail("val_fraction must be within [0, 1) (got " + std::to_string(o.val_fraction) + ")");
  if (o.max_val_examples < 1)
    fail("max_val_examples must be >= 1 (got " + std::to_string(o.max_val_examples) + ")");
  const MixOptions& m = o.mix;
  if (!(m.snr_min_db <= m.snr_max_db))
    fail("snr_min_db must be <= snr_max_db (got " + std::to_string(m.snr_min_db) + " > " +
         std::to_string(m.snr_max_db) + ")");
  if (!(m.level_min_dbfs <= m.level_max_dbfs) || m.level_max_dbfs > 0)
    fail("need level_min_dbfs <= level_max_dbfs <= 0 (got " + std::to_string(m.level_min_dbfs) +
         ", " + std::to_string(m.level_max_dbfs) + ")");
  for (const auto& [name, v] :
       {std::pair<const char*, double>{"generated_noise_share", m.generated_noise_share},
        {"identity_share", m.identity_share},
        {"reverb_share", m.reverb_share},
        {"bandlimit_share", m.bandlimit_share},
        {"rumble_share", m.rumble_share}})
    if (!(v >= 0 && v <= 1))
      fail(std::string(name) + " must be within [0, 1] (got " + std::to_string(v) + ")");
  if (!(m.rt60_min_s > 0 && m.rt60_min_s <= m.rt60_max_s && m.rt60_max_s <= 2))
    fail("need 0 < rt60_min_s <= rt60_max_s <= 2 (got " + std::to_string(m.rt60_min_s) + ", " +
         std::to_string(m.rt60_max_s) + ")");
  if (!(m.rumble_min_hz >= 20 && m.rumble_min_hz <= m.rumble_max_hz))
    fail("need 20 <= rumble_min_hz <= rumble_max_hz (got " + std::to_string(m.rumble_min_hz) +
         ", " + std::to_string(m.rumble_max_hz) + ")");
  if (!(m.babble_share >= 0 && m.babble_share <= 1))
    fail("babble_share must be within [0, 1] (got " + std::to_string(m.babble_share) + ")");
  if (!(m.babble_min_talkers >= 1 && m.babble_min_talkers <= m.babble_max_talkers &&
        m.babble_max_talkers <= 64))
    fail("need 1 <= babble_min_talkers <= babble_max_talkers <= 64 (got " +
         std::to_string(m.babble_min_talkers) + ", " + std::to_string(m.babble_max_talkers) + ")");
  if (!(m.tone_share >= 0 && m.tone_share <= 1))
    fail("tone_share must be within [0, 1] (got " + std::to_string(m.tone_share) + ")");
  if (!(m.tone_min_hz >= 20 && m.tone_min_hz <= m.tone_max_hz &&
        m.tone_max_hz < 0.45 * o.sample_rate_hz))
    fail("need 20 <= tone_min_hz <= tone_max_hz < 0.45 x the sample rate (got " +
         std::to_string(m.tone_min_hz) + ", " + std::to_string(m.tone_max_hz) + " Hz)");
  if (!(m.tone_min_db >= -60 && m.tone_min_db <= m.tone_max_db && m.tone_max_db <= 40))
    fail("need -60 <= tone_min_db <= tone_max_db <= 40 (got " + std::to_string(m.tone_min_db) +
         ", " + std::to_string(m.tone_max_db) + ")");
  if (!(m.bandlimit_min_hz >= 500 && m.bandlimit_min_hz <= m.bandlimit_max_hz))
    fail("need 500 <= bandlimit_min_hz <= bandlimit_max_hz (got " +
         std::to_string(m.bandlimit_min_hz) + ", " + std::to_string(m.bandlimit_max_hz) + ")");
}

}  // namespace

TrainingData::TrainingData(const DataOptions& options) : options_(options) {
  check_options(options_);
  impl_ = std::make_unique<Impl>(options_);
  detail::Found found;
  detail::Problems problems;
  detail::find_sources(options_, found, summary_, problems);

  const double val_fraction = options_.val_fraction;
  split(found.pairs, options_.seed, val_fraction, impl_->train.pairs, impl_->val.pairs);
  split(found.clean, options_.seed, val_fraction, impl_->train.clean, impl_->val.clean);
  split(found.noise, options_.seed, val_fraction, impl_->train.noise, impl_->val.noise);
  impl_->train.finish();
  impl_->val.finish();

  const double rate = options_.sample_rate_hz;
  summary_.train_pairs = static_cast<int64_t>(impl_->train.pairs.size());
  summary_.val_pairs = static_cast<int64_t>(impl_->val.pairs.size());
  summary_.train_clean = static_cast<int64_t>(impl_->train.clean.size());
  summary_.val_clean = static_cast<int64_t>(impl_->val.clean.size());
  summary_.train_noise = static_cast<int64_t>(impl_->train.noise.size());
  summary_.val_noise = static_cast<int64_t>(impl_->val.noise.size());
  summary_.train_seconds = (impl_->train.pair_samples + impl_->train.clean_samples) / rate;
  summary_.val_seconds = (impl_->val.pair_samples + impl_->val.clean_samples) / rate;

  if (impl_->train.empty()) {
    std::string where;
    for (const auto& s : summary_.sources) where += (where.empty() ? "" : ", ") + s;
    std::string why = std::to_string(summary_.skipped_missing) + " missing, " +
                      std::to_string(summary_.skipped_unreadable) + " unreadable, " +
                      std::to_string(summary_.skipped_too_short) + " too short";
    const auto lines = problems.lines();
    if (!lines.empty()) why += "; " + lines.front();
    throw Error("no usable training data in " + where + " (" + why + ")");
  }

  impl_->preload(static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));

  // Validation: fixed crops of the held-out files, drawn with an RNG that depends on the seed
  // only. Files are cycled in hash order, so a capped set is a pseudo-random subset of them.
  std::seed_seq seq{static_cast<uint32_t>(options_.seed),
                    static_cast<uint32_t>(options_.seed >> 32), 0x76616c69u};
  std::mt19937_64 rng(seq);
  const auto n = static_cast<int64_t>(std::llround(options_.val_crop_seconds * rate));
  const Pool& val = impl_->val;
  if (!val.empty()) {
    const auto items = static_cast<int64_t>(val.pairs.size() + val.clean.size());
    const auto cover =
        static_cast<int64_t>(std::ceil(summary_.val_seconds / options_.val_crop_seconds));
    const int64_t count = std::min<int64_t>(options_.max_val_examples, std::max(items, cover));
    // Paired and mixed examples in proportion to their seconds, at least one of each present.
    int64_t pair_count = val.clean.empty() ? count : 0;
    if (!val.pairs.empty() && !val.clean.empty()) {
      pair_count = std::llround(count * val.pair_samples / (val.pair_samples + val.clean_samples));
      pair_count = std::clamp<int64_t>(pair_count, 1, std::max<int64_t>(1, count - 1));
    }
    Example ex;
    for (int64_t i = 0; i < pair_count; ++i)
      if (impl_->draw_item(val.pairs[i % val.pairs.size()], n, rng, ex))
        validation_.push_back(std::move(ex));
    for (int64_t i = 0; i < count - pair_count && !val.clean.empty(); ++i)
      if (impl_->draw_item(val.clean[i % val.clean.size()], n, rng, ex))
        validation_.push_back(std::move(ex));
  }
  if (validation_.empty()) {
    const auto count = std::min<int64_t>(
        options_.max_val_examples,
        std::max<int64_t>(1, std::ceil(summary_.train_seconds / options_.val_crop_seconds)));
    problems.note("no validation files (val_fraction " + std::to_string(val_fraction) + "); " +
                  std::to_string(count) +
                  " validation crops are drawn from the training files, so validation loss "
                  "measures fit, not generalisation");
    for (int64_t i = 0; i < count; ++i)
      validation_.push_back(impl_->draw(impl_->train, n, rng, /*allow_identity=*/false));
  }
  summary_.warnings = problems.lines();
  impl_->profile.reset();  // the profile is of training examples only
}

TrainingData::~TrainingData() = default;

int64_t TrainingData::crop_samples() const {
  return static_cast<int64_t>(std::llround(options_.crop_seconds * options_.sample_rate_hz));
}

Example TrainingData::sample(std::mt19937_64& rng) const {
  ProfileCounters& p = impl_->profile;
  const int64_t start = now_ns();
  Example ex = impl_->draw(impl_->train, crop_samples(), rng, /*allow_identity=*/true);
  p.total += now_ns() - start;
  ++p.examples;
  return ex;
}

DataProfile TrainingData::profile() const {
  const ProfileCounters& p = impl_->profile;
  auto s = [](const std::atomic<int64_t>& ns) { return static_cast<double>(ns.load()) * 1e-9; };
  DataProfile d;
  d.examples = p.examples.load();
  d.total_s = s(p.total);
  d.decode_s = s(p.decode);
  d.crop_s = s(p.crop);
  d.noise_s = s(p.noise);
  d.babble_s = s(p.babble);
  d.rumble_s = s(p.rumble);
  d.reverb_s = s(p.reverb);
  d.bandlimit_s = s(p.bandlimit);
  d.mix_s = s(p.mix);
  return d;
}

// ---------------------------------------------------------------------------------------------
// JSON

void to_json(nlohmann::json& j, const MixOptions& o) {
  j = nlohmann::json{{"snr_min_db", o.snr_min_db},
                     {"snr_max_db", o.snr_max_db},
                     {"level_min_dbfs", o.level_min_dbfs},
                     {"level_max_dbfs", o.level_max_dbfs},
                     {"generated_noise_share", o.generated_noise_share},
                     {"identity_share", o.identity_share},
                     {"reverb_share", o.reverb_share},
                     {"rt60_min_s", o.rt60_min_s},
                     {"rt60_max_s", o.rt60_max_s},
                     {"bandlimit_share", o.bandlimit_share},
                     {"bandlimit_min_hz", o.bandlimit_min_hz},
                     {"bandlimit_max_hz", o.bandlimit_max_hz},
                     {"rumble_share", o.rumble_share},
                     {"rumble_min_hz", o.rumble_min_hz},
                     {"rumble_max_hz", o.rumble_max_hz},
                     {"babble_share", o.babble_share},
                     {"babble_min_talkers", o.babble_min_talkers},
                     {"babble_max_talkers", o.babble_max_talkers},
                     {"tone_share", o.tone_share},
                     {"tone_min_hz", o.tone_min_hz},
                     {"tone_max_hz", o.tone_max_hz},
                     {"tone_min_db", o.tone_min_db},
                     {"tone_max_db", o.tone_max_db}};
}

void from_json(const nlohmann::json& j, MixOptions& o) {
  require_same_keys(j, MixOptions{}, "MixOptions");
  auto get = [&](const char* key) {
    const auto& v = j.at(key);
    if (!v.is_number())
      throw Error(std::string("MixOptions: key '") + key + "' must be a number, got " +
                  v.type_name());
    return v.get<double>();
  };
  MixOptions r;
  r.snr_min_db = get("snr_min_db");
  r.snr_max_db = get("snr_max_db");
  r.level_min_dbfs = get("level_min_dbfs");
  r.level_max_dbfs = get("level_max_dbfs");
  r.generated_noise_share = get("generated_noise_share");
  r.identity_share = get("identity_share");
  r.reverb_share = get("reverb_share");
  r.rt60_min_s = get("rt60_min_s");
  r.rt60_max_s = get("rt60_max_s");
  r.bandlimit_share = get("bandlimit_share");
  r.bandlimit_min_hz = get("bandlimit_min_hz");
  r.bandlimit_max_hz = get("bandlimit_max_hz");
  r.rumble_share = get("rumble_share");
  r.rumble_min_hz = get("rumble_min_hz");
  r.rumble_max_hz = get("rumble_max_hz");
  r.babble_share = get("babble_share");
  r.tone_share = get("tone_share");
  r.tone_min_hz = get("tone_min_hz");
  r.tone_max_hz = get("tone_max_hz");
  r.tone_min_db = get("tone_min_db");
  r.tone_max_db = get("tone_max_db");
  for (const auto& [key, field] :
       {std::pair<const char*, int*>{"babble_min_talkers", &r.babble_min_talkers},
        {"babble_max_talkers", &r.babble_max_talkers}}) {
    const double v = get(key);
    if (v != std::floor(v) || std::abs(v) > 1e6)
      throw Error(std::string("MixOptions: key '") + key + "' must be a whole number");
    *field = static_cast<int>(v);
  }
  o = r;
}

void to_json(nlohmann::json& j, const DataSummary& s) {
  j = nlohmann::json{{"sources", s.sources},
                     {"train_pairs", s.train_pairs},
                     {"val_pairs", s.val_pairs},
                     {"train_clean", s.train_clean},
                     {"val_clean", s.val_clean},
                     {"train_noise", s.train_noise},
                     {"val_noise", s.val_noise},
                     {"identity_pairs", s.identity_pairs},
                     {"train_seconds", s.train_seconds},
                     {"val_seconds", s.val_seconds},
                     {"skipped_missing", s.skipped_missing},
                     {"skipped_unreadable", s.skipped_unreadable},
                     {"skipped_too_short", s.skipped_too_short},
                     {"trimmed_mismatched", s.trimmed_mismatched},
                     {"warnings", s.warnings}};
}

}  // namespace denoise
