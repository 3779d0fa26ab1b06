/* bench_stream: latency and CPU cost per stream of the C API (and so of the LADSPA plugin, which
 * runs the model and the gate side by side), run by scripts/bench.sh:
 *   bench_stream SECONDS
 * For the default model and the causal gate at 16, 44.1 and 48 kHz: denoises SECONDS of noisy
 * tones in 10 ms blocks and prints the latency (samples, ms) and the thread CPU time per second of
 * audio (% of one core). Not a test: timings depend on the machine. */
#include <denoise/denoise.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void measure(const DenoiseModel* model, int rate, double seconds) {
  DenoiseStream* s = NULL;
  size_t block = (size_t)(rate / 100), n = (size_t)(seconds * rate), done, i;
  float* buf = (float*)malloc(block * sizeof(float));
  unsigned long state = 1;
  double t0, cpu;
  if (!buf || denoise_stream_create(model, NULL, rate, &s) != DENOISE_OK) {
    printf("  %-20s %6d Hz  error: %s\n", model ? "unet" : "gate-nonstationary", rate,
           denoise_last_error());
    free(buf);
    return;
  }
  t0 = cpu_seconds();
  for (done = 0; done < n; done += block) {
    for (i = 0; i < block; ++i) {
      state = state * 6364136223846793005UL + 1442695040888963407UL;
      buf[i] = 0.3f * (float)sin(2 * M_PI * 220.0 * (double)(done + i) / rate) +
               0.05f * ((float)(state >> 40) / 16777216.0f - 0.5f);
    }
    denoise_stream_process(s, buf, buf, block);
  }
  cpu = cpu_seconds() - t0;
  printf("  %-20s %6d Hz  latency %5d samples = %5.1f ms   CPU %5.2f %% of a core\n",
         denoise_stream_method(s), rate, denoise_stream_latency_samples(s),
         1000.0 * denoise_stream_latency_samples(s) / rate, 100.0 * cpu / seconds);
  denoise_stream_free(s);
  free(buf);
}

int main(int argc, char** argv) {
  static const int rates[] = {16000, 44100, 48000};
  double seconds = argc > 1 ? atof(argv[1]) : 10.0;
  DenoiseModel* model = NULL;
  size_t r;
  if (denoise_model_load(NULL, &model) != DENOISE_OK)
    printf("  (no model: %s)\n", denoise_last_error());
  for (r = 0; r < sizeof rates / sizeof rates[0]; ++r) {
    if (model) measure(model, rates[r], seconds);
    measure(NULL, rates[r], seconds);
  }
  denoise_model_free(model);
  return 0;
}
