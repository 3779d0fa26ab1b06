// The streaming engine (live mode) on the classical methods: equality with the offline causal
// path, latency, reset, and no heap allocation per hop.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <random>

#include "denoise/error.h"
#include "denoise/file_pipeline.h"
#include "denoise/stream.h"
#include "denoise/stream_chain.h"
#include "test_util.h"

// Counts heap allocations while g_counting is set (this test binary's operator new).
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// GCC 12 takes the free() below for a mismatch with the operator new it inlines (it is not: both
// replacements use malloc/free).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace denoise {
namespace {

std::vector<float> noisy_speech(int64_t n, int rate) {
  auto x = test::voiced_bursts(n, rate);
  const auto noise = test::white_noise(n, 0.03, 4);
  for (int64_t i = 0; i < n; ++i) x[i] += noise[i];
  return x;
}

// Runs `engine` hop by hop over x followed by enough zeros, and returns the output realigned
// to x (the first delay_samples() dropped).
std::vector<float> stream(StreamEngine& engine, const std::vector<float>& x) {
  const int hop = engine.hop(), delay = engine.delay_samples();
  std::vector<float> in = x, out, hop_out(hop);
  in.resize(((x.size() + delay) / hop + 1) * hop, 0.f);
  for (size_t i = 0; i < in.size(); i += hop) {
    engine.process_hop(in.data() + i, hop_out.data());
    out.insert(out.end(), hop_out.begin(), hop_out.end());
  }
  return std::vector<float>(out.begin() + delay, out.begin() + delay + x.size());
}

TEST(StreamEngine, LiveGatingSettingsKeepLatencyWithin30ms) {
  for (int rate : {16000, 44100, 48000}) {
    const MethodOptions o = live_method_options({}, rate);
    EXPECT_TRUE(o.gate.causal);
    EXPECT_EQ(o.gate.padding_samples, 0);
    for (const char* m : {"gate", "gate-nonstationary"}) {
      auto e = make_stream_engine(m, {}, rate);
      EXPECT_EQ(e->sample_rate_hz(), rate);
      EXPECT_LE(e->latency_ms(), 30.0) << m << " at " << rate;
      EXPECT_GE(e->latency_ms(), 19.0) << m << " at " << rate;
    }
  }
  auto e = make_stream_engine("gate-nonstationary", {}, 16000);
  EXPECT_EQ(e->hop(), 80);
  EXPECT_EQ(e->latency_samples(), 320);
  EXPECT_EQ(e->delay_samples(), 240);
  EXPECT_THROW(make_stream_engine("subtract", {}, 16000), Error);  // needs a noise estimate
}

// Fed a signal hop by hop, the causal non-stationary gate gives the offline causal output.
TEST(StreamEngine, NonStationaryGateEqualsOfflineCausalPath) {
  for (int rate : {16000, 22050, 44100, 48000}) {
    const std::vector<float> x = noisy_speech(3 * rate, rate);
    PipelineOptions po;
    po.method = "gate-nonstationary";
    po.method_options = live_method_options({}, rate);
    const std::vector<float> offline = denoise_channels({x}, rate, po)[0];
    auto engine = make_stream_engine("gate-nonstationary", {}, rate);
    const std::vector<float> streamed = stream(*engine, x);
    // Up to the last window: there the offline path stops at the signal's end while the stream
    // goes on into the silence after it (frames past the end overlap the last samples).
    const size_t n_fft = engine->latency_samples();
    const std::vector<float> a(streamed.begin(), streamed.end() - n_fft),
        b(offline.begin(), offline.end() - n_fft);
    EXPECT_LT(test::max_abs_diff(a, b), 1e-4) << rate << " Hz";
    // And it is not the input: the gate did act.
    EXPECT_GT(test::max_abs_diff(streamed, x), 0.01);
    engine->reset();
    EXPECT_EQ(stream(*engine, x), streamed) << "reset() starts over";
  }
}

// The stationary gate learns the noise from the first second (passing it unchanged), then gates.
TEST(StreamEngine, StationaryGateLearnsTheFirstSecondThenReducesNoise) {
  const int rate = 16000;
  const auto noise = test::white_noise(3 * rate, 0.05, 11);
  std::vector<float> x = noise;
  const auto speech = test::voiced_bursts(rate, rate);
  for (int i = 0; i < rate; ++i) x[2 * rate + i] += speech[i];  // speech in the third second
  auto engine = make_stream_engine("gate", {}, rate);
  const std::vector<float> y = stream(*engine, x);
  auto energy = [](const std::vector<float>& v, int64_t a, int64_t b) {
    double e = 0;
    for (int64_t i = a; i < b; ++i) e += double(v[i]) * v[i];
    return e;
  };
  // First 0.9 s: unchanged (learning).
  EXPECT_LT(test::max_abs_diff(std::vector<float>(y.begin() + 400, y.begin() + rate * 9 / 10),
                               std::vector<float>(x.begin() + 400, x.begin() + rate * 9 / 10)),
            1e-4);
  // Second 1.2-2 s (noise only): at least 10 dB quieter.
  EXPECT_LT(10 * std::log10(energy(y, rate * 6 / 5, 2 * rate) / energy(x, rate * 6 / 5, 2 * rate)),
            -10);
  // Speech second: most of its energy kept (within 6 dB of the noisy input's, against the
  // 10 dB or more taken from the noise).
  EXPECT_GT(10 * std::log10(energy(y, 2 * rate, 3 * rate) / energy(x, 2 * rate, 3 * rate)), -6);
}

// The classical engines do not touch the heap per hop (the U-Net's LibTorch calls do; live mode
// runs engines in a worker thread, never in the audio callback).
TEST(StreamEngine, ClassicalMethodsDoNotAllocatePerHop) {
  for (const char* m : {"gate", "gate-nonstationary"}) {
    auto engine = make_stream_engine(m, {}, 16000);
    const std::vector<float> x = noisy_speech(16000 * 3, 16000);
    std::vector<float> out(engine->hop());
    // Past the stationary gate's one-off threshold computation at 1 s.
    const size_t warm = 16000 + 8 * engine->hop();
    for (size_t i = 0; i + engine->hop() <= warm; i += engine->hop())
      engine->process_hop(x.data() + i, out.data());
    g_allocations = 0;
    g_counting = true;
    for (size_t i = warm; i + engine->hop() <= x.size(); i += engine->hop())
      engine->process_hop(x.data() + i, out.data());
    g_counting = false;
    EXPECT_EQ(g_allocations.load(), 0) << m;
  }
}

// ---------------------------------------------------------------- FixedLatencyStream (C API)

// Runs `s` over x followed by latency zeros in pieces of random sizes; returns the output
// realigned to x.
std::vector<float> fixed_latency(FixedLatencyStream& s, const std::vector<float>& x,
                                 uint32_t seed) {
  const size_t latency = static_cast<size_t>(s.latency_samples());
  std::vector<float> in = x, out(x.size() + latency);
  in.resize(out.size(), 0.f);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < in.size();) {
    const size_t m = std::min<size_t>(in.size() - i, 1 + rng() % 3000);
    s.process(in.data() + i, out.data() + i, m);
    i += m;
  }
  return std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(latency), out.end());
}

// n in, n out, in pieces of any size: at the engine's rate the output is the engine's hop-by-hop
// output, shifted by exactly the latency it reports (the engine's delay plus one hop less one
// sample); resampled, pieces do not matter either.
TEST(FixedLatencyStream, AnyPieceSizesGiveTheEngineOutputAfterTheLatency) {
  const int rate = 16000;
  const std::vector<float> x = noisy_speech(2 * rate, rate);
  auto engine = make_stream_engine("gate-nonstationary", {}, rate);
  const std::vector<float> hop_by_hop = stream(*engine, x);
  FixedLatencyStream s(make_stream_engine("gate-nonstationary", {}, rate), rate);
  EXPECT_EQ(s.latency_samples(), engine->delay_samples() + engine->hop() - 1);
  EXPECT_LT(test::max_abs_diff(fixed_latency(s, x, 1), hop_by_hop), 1e-6);
  s.reset();
  EXPECT_LT(test::max_abs_diff(fixed_latency(s, x, 2), hop_by_hop), 1e-6) << "after reset()";

  for (int device_rate : {44100, 48000}) {
    const std::vector<float> y = noisy_speech(2 * device_rate, device_rate);
    // The engine at 16 kHz, the caller at device_rate: the resampling chain.
    FixedLatencyStream a(make_stream_engine("gate-nonstationary", {}, rate), device_rate);
    FixedLatencyStream b(make_stream_engine("gate-nonstationary", {}, rate), device_rate);
    EXPECT_GT(a.latency_samples(), a.chain().delay_samples()) << device_rate;
    const std::vector<float> ya = fixed_latency(a, y, 3), yb = fixed_latency(b, y, 4);
    EXPECT_LT(test::max_abs_diff(ya, yb), 1e-6) << device_rate;
    EXPECT_GT(test::max_abs_diff(ya, y), 0.01) << "the gate acted";
  }
}

TEST(FixedLatencyStream, ClassicalMethodsDoNotAllocateInSteadyState) {
  for (int device_rate : {16000, 48000}) {
    FixedLatencyStream s(make_stream_engine("gate-nonstationary", {}, 16000), device_rate);
    const std::vector<float> x = noisy_speech(device_rate, device_rate);
    std::vector<float> out(x.size());
    const size_t block = static_cast<size_t>(device_rate / 100);
    for (size_t i = 0; i + block <= x.size() / 2; i += block)
      s.process(x.data() + i, out.data() + i, block);
    g_allocations = 0;
    g_counting = true;
    for (size_t i = x.size() / 2; i + block <= x.size(); i += block)
      s.process(x.data() + i, out.data() + i, block);
    g_counting = false;
    EXPECT_EQ(g_allocations.load(), 0) << device_rate;
  }
}

// The rule live mode and the LADSPA plugin share.
TEST(FallbackRule, SlowComputeBacklogOrLostInputHandOverOnce) {
  auto engine = make_stream_engine("gate", {}, 16000);  // hop 80 = 5 ms
  ComputeStats fast(10), slow(10);
  for (int i = 0; i < 10; ++i) fast.add(1.0), slow.add(4.5);
  EXPECT_EQ(fallback_reason(*engine, fast, 0.0, nullptr), "");
  EXPECT_NE(fallback_reason(*engine, slow, 0.0, nullptr).find("4.50 ms of compute per 5.0 ms hop"),
            std::string::npos);
  ComputeStats partial(10);
  for (int i = 0; i < 5; ++i) partial.add(4.5);
  EXPECT_EQ(fallback_reason(*engine, partial, 0.0, nullptr), "") << "needs a full window";
  EXPECT_NE(fallback_reason(*engine, fast, 0.25, nullptr).find("250 ms of input waiting"),
            std::string::npos);
  EXPECT_EQ(fallback_reason(*engine, fast, 0.0, "the input overflowed"), "the input overflowed");
  auto fallback = make_stream_engine(kFallbackMethod, {}, 16000);
  EXPECT_EQ(fallback_reason(*fallback, slow, 1.0, "lost"), "") << "the fall-back stays";
}

// A build folder anywhere finds the checkout's model (recorded at configure time).
TEST(DefaultModel, TheConfiguredCheckoutIsACandidate) {
  const std::string want = std::string(DENOISE_PROJECT_DIR) + "/models/pretrained/default.dnz";
  bool found = false;
  for (const std::string& c : default_model_candidates()) {
    std::error_code ec;
    found = found || std::filesystem::equivalent(c, want, ec);
  }
  EXPECT_TRUE(found) << want;
}

}  // namespace
}  // namespace denoise
