// The C API (denoise.h) over the streaming engine: every entry point catches what the C++ side
// throws and turns it into a status plus a per-thread message.
#include "denoise/denoise.h"

#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "denoise/audio_io.h"
#include "denoise/denoiser.h"
#include "denoise/error.h"
#include "denoise/stream.h"
#include "denoise/stream_chain.h"

struct DenoiseModel {
  std::string path;
  std::shared_ptr<denoise::Denoiser> denoiser;  // "unet": its weights, shared by the streams
};

struct DenoiseStream {
  std::unique_ptr<denoise::FixedLatencyStream> stream;
  std::string method;
  int sample_rate_hz = 0;
  float dry_mix = 0.f;           // a in (1 - a) x denoised + a x input
  std::vector<float> dry_delay;  // the input, latency samples ago (ring)
  size_t dry_pos = 0;
  std::vector<float> scratch;
};

namespace {

thread_local std::string g_last_error;

DenoiseStatus fail(DenoiseStatus status, std::string message) {
  g_last_error = std::move(message);
  return status;
}

// Runs `body`, mapping exceptions to statuses; `what` names the call in the message.
template <typename Body>
DenoiseStatus guarded(const char* what, DenoiseStatus on_error, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(DENOISE_ERROR_RUNTIME, std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(on_error, std::string(what) + ": " + e.what());
  } catch (...) {
    return fail(DENOISE_ERROR_RUNTIME, std::string(what) + ": unknown failure");
  }
}

constexpr double kNoLimitDb = 100.0;

}  // namespace

extern "C" {

const char* denoise_version(void) { return DENOISE_VERSION; }

const char* denoise_last_error(void) { return g_last_error.c_str(); }

DenoiseStatus denoise_model_load(const char* path, DenoiseModel** model) {
  if (!model) return fail(DENOISE_ERROR_ARGUMENT, "denoise_model_load: model is NULL");
  *model = nullptr;
  try {
    denoise::load_model_methods();
  } catch (const std::exception& e) {
    return fail(DENOISE_ERROR_UNAVAILABLE, std::string("denoise_model_load: ") + e.what());
  }
  std::string file = path && *path ? path : denoise::default_model_path();
  if (file.empty())
    return fail(DENOISE_ERROR_UNAVAILABLE,
                "denoise_model_load: no default model (set DENOISE_MODEL or give a path)");
  return guarded("denoise_model_load", DENOISE_ERROR_MODEL, [&] {
    denoise::MethodOptions options;
    options.model_path = file;
    // One intra-op thread: a stream runs one frame at a time, where more threads only cost.
    options.threads = 1;
    auto m = std::make_unique<DenoiseModel>();
    m->path = file;
    m->denoiser = denoise::make_denoiser("unet", options, 16000);
    *model = m.release();
    return DENOISE_OK;
  });
}

int denoise_model_sample_rate_hz(const DenoiseModel* model) {
  return model ? model->denoiser->front_end().sample_rate_hz : 0;
}

void denoise_model_free(DenoiseModel* model) { delete model; }

DenoiseStatus denoise_stream_create(const DenoiseModel* model, const char* method,
                                    int sample_rate_hz, DenoiseStream** stream) {
  if (!stream) return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_create: stream is NULL");
  *stream = nullptr;
  if (sample_rate_hz < denoise::kMinSampleRateHz || sample_rate_hz > denoise::kMaxSampleRateHz)
    return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_create: sample rate " +
                                            std::to_string(sample_rate_hz) + " Hz is outside " +
                                            std::to_string(denoise::kMinSampleRateHz) + ".." +
                                            std::to_string(denoise::kMaxSampleRateHz) + " Hz");
  std::string name = method ? method : "";
  if (model) {
    if (!name.empty() && name != "unet")
      return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_create: method '" + name +
                                              "' with a model (give NULL or \"unet\")");
    name = "unet";
  } else {
    if (name.empty()) name = denoise::kFallbackMethod;
    if (name != "gate" && name != "gate-nonstationary")
      return fail(DENOISE_ERROR_ARGUMENT,
                  "denoise_stream_create: method '" + name +
                      "' without a model (give NULL, \"gate-nonstationary\" or \"gate\"; "
                      "\"unet\" needs a model from denoise_model_load)");
  }
  return guarded("denoise_stream_create", DENOISE_ERROR_RUNTIME, [&] {
    std::unique_ptr<denoise::StreamEngine> engine;
    if (model) {
      std::unique_ptr<denoise::FrameGains> gains = model->denoiser->make_frame_gains();
      if (!gains)
        throw denoise::Error(model->path + ": the model is not causal, so it cannot stream");
      engine = std::make_unique<denoise::StreamEngine>(std::move(gains), "unet");
    } else {
      engine = denoise::make_stream_engine(name, {}, sample_rate_hz);
    }
    auto s = std::make_unique<DenoiseStream>();
    s->method = name;
    s->sample_rate_hz = sample_rate_hz;
    s->stream = std::make_unique<denoise::FixedLatencyStream>(std::move(engine), sample_rate_hz);
    s->dry_delay.assign(static_cast<size_t>(s->stream->latency_samples()) + 1, 0.f);
    s->scratch.resize(4096);
    *stream = s.release();
    return DENOISE_OK;
  });
}

DenoiseStatus denoise_stream_process(DenoiseStream* stream, const float* in, float* out, size_t n) {
  if (!stream) return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_process: stream is NULL");
  if (n == 0) return DENOISE_OK;
  if (!in || !out)
    return fail(DENOISE_ERROR_ARGUMENT, std::string("denoise_stream_process: ") +
                                            (!in ? "in" : "out") +
                                            " is NULL with n = " + std::to_string(n));
  return guarded("denoise_stream_process", DENOISE_ERROR_RUNTIME, [&] {
    DenoiseStream& s = *stream;
    if (s.dry_mix == 0.f) {
      s.stream->process(in, out, n);
      // Keep the dry delay line current, so that a limit set later mixes the right input.
      const size_t d = s.dry_delay.size();
      for (size_t i = n > d ? n - d : 0; i < n; ++i) {
        s.dry_delay[s.dry_pos] = in[i];
        s.dry_pos = s.dry_pos + 1 == d ? 0 : s.dry_pos + 1;
      }
      return DENOISE_OK;
    }
    // The dry signal of in[i] is out[i + latency]: a delay line of latency + 1 slots, read
    // after it is written.
    const size_t d = s.dry_delay.size();
    const float a = s.dry_mix, b = 1.f - s.dry_mix;
    for (size_t done = 0; done < n;) {
      const size_t m = std::min(s.scratch.size(), n - done);
      s.stream->process(in + done, s.scratch.data(), m);
      for (size_t i = 0; i < m; ++i) {
        s.dry_delay[s.dry_pos] = in[done + i];
        s.dry_pos = s.dry_pos + 1 == d ? 0 : s.dry_pos + 1;
        out[done + i] = b * s.scratch[i] + a * s.dry_delay[s.dry_pos];
      }
      done += m;
    }
    return DENOISE_OK;
  });
}

int denoise_stream_latency_samples(const DenoiseStream* stream) {
  return stream ? stream->stream->latency_samples() : -1;
}

int denoise_stream_sample_rate_hz(const DenoiseStream* stream) {
  return stream ? stream->sample_rate_hz : 0;
}

const char* denoise_stream_method(const DenoiseStream* stream) {
  return stream ? stream->method.c_str() : "";
}

DenoiseStatus denoise_stream_set_attenuation_limit_db(DenoiseStream* stream, double limit_db) {
  if (!stream)
    return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_set_attenuation_limit_db: stream is NULL");
  if (!(limit_db >= 0))
    return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_set_attenuation_limit_db: limit " +
                                            std::to_string(limit_db) + " dB (want >= 0)");
  stream->dry_mix =
      limit_db >= kNoLimitDb ? 0.f : static_cast<float>(std::pow(10.0, -limit_db / 20.0));
  return DENOISE_OK;
}

DenoiseStatus denoise_stream_reset(DenoiseStream* stream) {
  if (!stream) return fail(DENOISE_ERROR_ARGUMENT, "denoise_stream_reset: stream is NULL");
  return guarded("denoise_stream_reset", DENOISE_ERROR_RUNTIME, [&] {
    stream->stream->reset();
    std::fill(stream->dry_delay.begin(), stream->dry_delay.end(), 0.f);
    stream->dry_pos = 0;
    return DENOISE_OK;
  });
}

void denoise_stream_free(DenoiseStream* stream) { delete stream; }

}  // extern "C"
