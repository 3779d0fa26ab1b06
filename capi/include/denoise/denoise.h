/* denoise.h: the C API of the denoise library (libdenoise), for C, C++, Rust, Python ctypes...
 *
 *   #include <denoise/denoise.h>
 *
 *   DenoiseModel *model = NULL;
 *   DenoiseStream *stream = NULL;
 *   if (denoise_model_load(NULL, &model) != DENOISE_OK)      // NULL: the default model
 *     fprintf(stderr, "%s\n", denoise_last_error());          // (then model stays NULL:
 *   if (denoise_stream_create(model, NULL, 48000, &stream)    //  a causal spectral gate)
 *       != DENOISE_OK) {
 *     fprintf(stderr, "%s\n", denoise_last_error());
 *     return 1;
 *   }
 *   while (capturing) {                                       // any number of samples per call
 *     n = read_microphone(buffer, 480);                       // mono float, 48 kHz
 *     denoise_stream_process(stream, buffer, buffer, n);      // n in, n out, in place
 *     play(buffer, n);   // denoise_stream_latency_samples(stream) behind the input
 *   }
 *   denoise_stream_free(stream);
 *   denoise_model_free(model);                                // after its last stream
 *
 *   cc app.c $(pkg-config --cflags --libs denoise)        or, in CMake:
 *   find_package(denoise) + target_link_libraries(app PRIVATE denoise::denoise)
 *
 * A model (DenoiseModel) holds trained weights: loaded once, never written, shared by any number
 * of streams in any threads. A stream (DenoiseStream) holds one signal's state (buffers, caches,
 * noise floor): one thread at a time. Samples are mono floats (nominal range -1..1) at the rate
 * the stream was created for, resampled inside to the model's rate and back when they differ.
 *
 * Errors: every function that can fail returns a DenoiseStatus; anything but DENOISE_OK comes with
 * a one-line message from denoise_last_error() (per thread). Nothing is thrown, nothing exits,
 * nothing is printed. Null pointers, a rate outside 8000..96000 Hz, a missing, corrupt or foreign
 * model file are errors, never crashes.
 *
 * Real time: denoise_stream_process() with a classical method does not allocate once it has seen
 * its largest block; with a model it runs LibTorch, which allocates its tensors, so call it from a
 * worker thread rather than from an audio callback (the LADSPA plugin does so). Loading a model
 * loads LibTorch (about 0.45 s and 160 MiB, once per process) and sets its intra-op threads to 1
 * for the process: a stream computes one 10 ms frame at a time, where more threads only cost.
 *
 * This header is C89/C99-clean (size_t from <stddef.h>, no bool).
 */
#ifndef DENOISE_DENOISE_H
#define DENOISE_DENOISE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DENOISE_EXPORT __attribute__((visibility("default")))
#else
#define DENOISE_EXPORT
#endif

/* The version of this interface; a change that breaks callers raises it. */
#define DENOISE_API_VERSION 1

typedef struct DenoiseModel DenoiseModel;
typedef struct DenoiseStream DenoiseStream;

typedef enum DenoiseStatus {
  DENOISE_OK = 0,
  DENOISE_ERROR_ARGUMENT = 1,    /* a null pointer, a rate out of range, an unknown method */
  DENOISE_ERROR_MODEL = 2,       /* the model file is missing, unreadable, corrupt or foreign */
  DENOISE_ERROR_UNAVAILABLE = 3, /* no model support (a build without LibTorch) or no default */
  DENOISE_ERROR_RUNTIME = 4      /* anything else (out of memory, an internal failure) */
} DenoiseStatus;

/* The library's version, e.g. "0.1.0". Never NULL. */
DENOISE_EXPORT const char *denoise_version(void);

/* The message of the last failed call in this thread ("" when none). Valid until the next call
 * from this thread. */
DENOISE_EXPORT const char *denoise_last_error(void);

/* Loads a trained model (a .dnz file from `train`). path NULL or "": the default model
 * ($DENOISE_MODEL, else the one installed with the library). On success *model is set;
 * on failure it is NULL. */
DENOISE_EXPORT DenoiseStatus denoise_model_load(const char *path, DenoiseModel **model);

/* The rate the model works at internally, Hz (0 for NULL). Streams may run at any rate. */
DENOISE_EXPORT int denoise_model_sample_rate_hz(const DenoiseModel *model);

/* Frees a model (NULL is ignored). Free its streams first. */
DENOISE_EXPORT void denoise_model_free(DenoiseModel *model);

/* Creates a stream at the caller's rate (8000..96000 Hz).
 *   model given:  the model; method must be NULL or "unet".
 *   model NULL:   a classical causal method: method NULL or "gate-nonstationary" (spectral gating
 *                 against a running noise floor) or "gate" (stationary gating, noise statistics
 *                 learnt as it goes).
 * On success *stream is set; on failure it is NULL. */
DENOISE_EXPORT DenoiseStatus denoise_stream_create(const DenoiseModel *model, const char *method,
                                                   int sample_rate_hz, DenoiseStream **stream);

/* Denoises n samples of `in` into n samples of `out` (the same buffer is allowed). out[i] is the
 * denoised in[i - latency]; the first latency samples of a stream are silence. Any n, including
 * 0 (then in and out may be NULL). */
DENOISE_EXPORT DenoiseStatus denoise_stream_process(DenoiseStream *stream, const float *in,
                                                    float *out, size_t n);

/* The fixed delay of the output, in samples at the stream's rate (-1 for NULL). */
DENOISE_EXPORT int denoise_stream_latency_samples(const DenoiseStream *stream);

/* The stream's rate, Hz (0 for NULL), and its method ("unet", "gate-nonstationary", "gate";
 * "" for NULL). */
DENOISE_EXPORT int denoise_stream_sample_rate_hz(const DenoiseStream *stream);
DENOISE_EXPORT const char *denoise_stream_method(const DenoiseStream *stream);

/* How far noise may be pushed down, dB (as DeepFilterNet's --atten-lim): the output is
 * (1 - a) x denoised + a x input (delayed by the latency), a = 10^(-limit/20). 0: bypass (the
 * input, delayed); 100 or more (the default): no limit. NaN or negative values are refused. */
DENOISE_EXPORT DenoiseStatus denoise_stream_set_attenuation_limit_db(DenoiseStream *stream,
                                                                     double limit_db);

/* Starts a new signal: as if the stream had just been created. */
DENOISE_EXPORT DenoiseStatus denoise_stream_reset(DenoiseStream *stream);

/* Frees a stream (NULL is ignored). */
DENOISE_EXPORT void denoise_stream_free(DenoiseStream *stream);

#ifdef __cplusplus
}
#endif

#endif /* DENOISE_DENOISE_H */
