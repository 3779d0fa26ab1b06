/* A plain C client of the installed library (tests/cli/test_install.sh builds it through
 * pkg-config against an installed prefix).
 *
 *   denoise_pieces denoise MODEL|gate RATE IN.f32 OUT.f32 SEED
 *       Denoises IN (raw mono float32 at RATE) in pieces of random sizes (1..5000 samples, from
 *       SEED) and writes the output realigned to the input (the first latency samples dropped,
 *       the input padded with latency zeros) to OUT. It also runs the whole input in one call on a
 *       second stream and fails when the two differ by more than 1e-6. MODEL "-" is the default
 *       model; "gate" is the causal gate (no model).
 *   denoise_pieces threads RATE IN.f32
 *       One model, two streams in two threads at once (pthreads) and a third afterwards in this
 *       one: the three outputs must be equal (the model is shared and only read).
 *   denoise_pieces bad-calls CORRUPT_MODEL [MORE_BAD_MODELS...]
 *       Calls with null pointers, rates out of range, unknown methods, corrupt, foreign and
 *       missing model files: each must return its error status with a message, never crash.
 * Exit status 0 when everything held, 1 otherwise (one line on stderr says what). */
#include <denoise/denoise.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

static void expect_status(const char* what, DenoiseStatus got, DenoiseStatus want) {
  const char* message = denoise_last_error();
  if (got != want) {
    fprintf(stderr, "FAIL - %s: status %d, wanted %d (%s)\n", what, (int)got, (int)want, message);
    ++failures;
  } else if (want != DENOISE_OK && (message == NULL || message[0] == '\0')) {
    fprintf(stderr, "FAIL - %s: status %d without a message\n", what, (int)got);
    ++failures;
  } else {
    printf("ok - %s%s%s\n", what, want != DENOISE_OK ? ": " : "",
           want != DENOISE_OK ? message : "");
  }
}

static float* read_f32(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  long bytes;
  float* data;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (bytes = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  *n = (size_t)bytes / sizeof(float);
  data = (float*)malloc(*n * sizeof(float) + 1);
  if (data && fread(data, sizeof(float), *n, f) != *n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  return data;
}

static int bad_calls(const char* corrupt_model) {
  DenoiseModel* model = (DenoiseModel*)&failures; /* must be overwritten with NULL */
  DenoiseStream* stream = (DenoiseStream*)&failures;
  float x[16] = {0};

  expect_status("model_load(path, NULL)", denoise_model_load(NULL, NULL), DENOISE_ERROR_ARGUMENT);
  expect_status("model_load(corrupt file)", denoise_model_load(corrupt_model, &model),
                DENOISE_ERROR_MODEL);
  if (model != NULL) {
    fprintf(stderr, "FAIL - a failed model_load left *model set\n");
    ++failures;
  }
  expect_status("model_load(missing file)", denoise_model_load("/nonexistent/model.dnz", &model),
                DENOISE_ERROR_MODEL);
  expect_status("stream_create(NULL out)", denoise_stream_create(NULL, NULL, 48000, NULL),
                DENOISE_ERROR_ARGUMENT);
  expect_status("stream_create(rate 0)", denoise_stream_create(NULL, NULL, 0, &stream),
                DENOISE_ERROR_ARGUMENT);
  if (stream != NULL) {
    fprintf(stderr, "FAIL - a failed stream_create left *stream set\n");
    ++failures;
  }
  expect_status("stream_create(rate 4000)", denoise_stream_create(NULL, NULL, 4000, &stream),
                DENOISE_ERROR_ARGUMENT);
  expect_status("stream_create(rate 192000)", denoise_stream_create(NULL, NULL, 192000, &stream),
                DENOISE_ERROR_ARGUMENT);
  expect_status("stream_create(unknown method)",
                denoise_stream_create(NULL, "nope", 16000, &stream), DENOISE_ERROR_ARGUMENT);
  expect_status("stream_create(unet without a model)",
                denoise_stream_create(NULL, "unet", 16000, &stream), DENOISE_ERROR_ARGUMENT);
  expect_status("stream_process(NULL stream)", denoise_stream_process(NULL, x, x, 16),
                DENOISE_ERROR_ARGUMENT);
  expect_status("stream_reset(NULL)", denoise_stream_reset(NULL), DENOISE_ERROR_ARGUMENT);
  expect_status("set_attenuation_limit_db(NULL)", denoise_stream_set_attenuation_limit_db(NULL, 6),
                DENOISE_ERROR_ARGUMENT);
  if (denoise_stream_latency_samples(NULL) != -1 || denoise_stream_sample_rate_hz(NULL) != 0 ||
      denoise_model_sample_rate_hz(NULL) != 0 || strcmp(denoise_stream_method(NULL), "") != 0) {
    fprintf(stderr, "FAIL - queries on NULL handles\n");
    ++failures;
  }
  denoise_stream_free(NULL);
  denoise_model_free(NULL);

  expect_status("stream_create(gate, 44100)", denoise_stream_create(NULL, "gate", 44100, &stream),
                DENOISE_OK);
  if (stream) {
    expect_status("stream_process(NULL in)", denoise_stream_process(stream, NULL, x, 16),
                  DENOISE_ERROR_ARGUMENT);
    expect_status("stream_process(NULL out)", denoise_stream_process(stream, x, NULL, 16),
                  DENOISE_ERROR_ARGUMENT);
    expect_status("stream_process(NULL, NULL, 0)", denoise_stream_process(stream, NULL, NULL, 0),
                  DENOISE_OK);
    expect_status("set_attenuation_limit_db(-3)",
                  denoise_stream_set_attenuation_limit_db(stream, -3), DENOISE_ERROR_ARGUMENT);
    expect_status("set_attenuation_limit_db(NaN)",
                  denoise_stream_set_attenuation_limit_db(stream, sqrt(-1.0)),
                  DENOISE_ERROR_ARGUMENT);
    expect_status("stream_reset", denoise_stream_reset(stream), DENOISE_OK);
    denoise_stream_free(stream);
  }
  if (failures) return 1;
  printf("bad calls: all refused with a message\n");
  return 0;
}

/* A small deterministic generator (no rand(): its sequence differs between C libraries). */
static unsigned long next_random(unsigned long* state) {
  *state = *state * 6364136223846793005UL + 1442695040888963407UL;
  return (*state >> 33);
}

static int run_denoise(const char* model_arg, int rate, const char* in_path, const char* out_path,
                       unsigned long seed) {
  DenoiseModel* model = NULL;
  DenoiseStream *pieces = NULL, *whole = NULL;
  size_t n = 0, total, done, i;
  float *in, *padded, *out, *out_whole;
  int latency;
  double worst = 0;
  FILE* f;

  in = read_f32(in_path, &n);
  if (!in) {
    fprintf(stderr, "FAIL - %s: cannot read\n", in_path);
    return 1;
  }
  if (strcmp(model_arg, "gate") != 0) {
    if (denoise_model_load(strcmp(model_arg, "-") == 0 ? NULL : model_arg, &model) != DENOISE_OK) {
      fprintf(stderr, "FAIL - model: %s\n", denoise_last_error());
      return 1;
    }
    printf("model at %d Hz\n", denoise_model_sample_rate_hz(model));
  }
  if (denoise_stream_create(model, NULL, rate, &pieces) != DENOISE_OK ||
      denoise_stream_create(model, NULL, rate, &whole) != DENOISE_OK) {
    fprintf(stderr, "FAIL - stream: %s\n", denoise_last_error());
    return 1;
  }
  latency = denoise_stream_latency_samples(pieces);
  printf("method %s at %d Hz, latency %d samples\n", denoise_stream_method(pieces),
         denoise_stream_sample_rate_hz(pieces), latency);

  total = n + (size_t)latency;
  padded = (float*)calloc(total, sizeof(float));
  out = (float*)calloc(total, sizeof(float));
  out_whole = (float*)calloc(total, sizeof(float));
  if (!padded || !out || !out_whole) return 1;
  memcpy(padded, in, n * sizeof(float));

  for (done = 0; done < total;) {
    size_t m = 1 + next_random(&seed) % 5000;
    if (m > total - done) m = total - done;
    if (next_random(&seed) % 8 == 0) {
      /* in place, and now and then an empty call */
      memcpy(out + done, padded + done, m * sizeof(float));
      if (denoise_stream_process(pieces, out + done, out + done, m) != DENOISE_OK ||
          denoise_stream_process(pieces, NULL, NULL, 0) != DENOISE_OK) {
        fprintf(stderr, "FAIL - process: %s\n", denoise_last_error());
        return 1;
      }
    } else if (denoise_stream_process(pieces, padded + done, out + done, m) != DENOISE_OK) {
      fprintf(stderr, "FAIL - process: %s\n", denoise_last_error());
      return 1;
    }
    done += m;
  }
  if (denoise_stream_process(whole, padded, out_whole, total) != DENOISE_OK) {
    fprintf(stderr, "FAIL - process: %s\n", denoise_last_error());
    return 1;
  }
  for (i = 0; i < total; ++i) worst = fmax(worst, fabs((double)out[i] - out_whole[i]));
  printf("pieces vs one call: max difference %.3g\n", worst);
  if (worst > 1e-6) {
    fprintf(stderr, "FAIL - pieces of random sizes differ from one call by %.3g\n", worst);
    return 1;
  }

  f = fopen(out_path, "wb");
  if (!f || fwrite(out + latency, sizeof(float), n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "FAIL - %s: cannot write\n", out_path);
    return 1;
  }
  denoise_stream_free(pieces);
  denoise_stream_free(whole);
  denoise_model_free(model);
  free(in);
  free(padded);
  free(out);
  free(out_whole);
  return 0;
}

struct Job {
  const DenoiseModel* model;
  int rate;
  const float* in;
  float* out;
  size_t n;
  int status;
};

static void* run_job(void* arg) {
  struct Job* job = (struct Job*)arg;
  DenoiseStream* s = NULL;
  size_t done, m;
  job->status = denoise_stream_create(job->model, NULL, job->rate, &s);
  for (done = 0; job->status == DENOISE_OK && done < job->n; done += m) {
    m = job->n - done < 480 ? job->n - done : 480;
    job->status = denoise_stream_process(s, job->in + done, job->out + done, m);
  }
  denoise_stream_free(s);
  return NULL;
}

static int run_threads(int rate, const char* in_path) {
  DenoiseModel* model = NULL;
  size_t n = 0, i;
  float *in = read_f32(in_path, &n), *out[3];
  struct Job jobs[3];
  pthread_t threads[2];
  double worst = 0;
  int t;
  if (!in || denoise_model_load(NULL, &model) != DENOISE_OK) {
    fprintf(stderr, "FAIL - threads: %s\n", in ? denoise_last_error() : "cannot read input");
    return 1;
  }
  for (t = 0; t < 3; ++t) {
    out[t] = (float*)calloc(n + 1, sizeof(float));
    jobs[t].model = model;
    jobs[t].rate = rate;
    jobs[t].in = in;
    jobs[t].out = out[t];
    jobs[t].n = n;
    jobs[t].status = -1;
  }
  for (t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, run_job, &jobs[t]);
  for (t = 0; t < 2; ++t) pthread_join(threads[t], NULL);
  run_job(&jobs[2]);
  for (t = 0; t < 3; ++t)
    if (jobs[t].status != DENOISE_OK) {
      fprintf(stderr, "FAIL - threads: stream %d failed\n", t);
      return 1;
    }
  for (i = 0; i < n; ++i) {
    worst = fmax(worst, fabs((double)out[0][i] - out[2][i]));
    worst = fmax(worst, fabs((double)out[1][i] - out[2][i]));
  }
  printf("two threads on one model vs one thread alone: max difference %.3g\n", worst);
  for (t = 0; t < 3; ++t) free(out[t]);
  free(in);
  denoise_model_free(model);
  if (worst > 1e-6) {
    fprintf(stderr, "FAIL - streams sharing a model in two threads differ by %.3g\n", worst);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "bad-calls") == 0) {
    int i, status = bad_calls(argv[2]);
    for (i = 3; i < argc; ++i) {
      DenoiseModel* model = NULL;
      char what[512];
      snprintf(what, sizeof what, "model_load(%s)", argv[i]);
      expect_status(what, denoise_model_load(argv[i], &model), DENOISE_ERROR_MODEL);
      denoise_model_free(model);
    }
    return status || failures ? 1 : 0;
  }
  if (argc == 4 && strcmp(argv[1], "threads") == 0) return run_threads(atoi(argv[2]), argv[3]);
  if (argc == 7 && strcmp(argv[1], "denoise") == 0)
    return run_denoise(argv[2], atoi(argv[3]), argv[4], argv[5], strtoul(argv[6], NULL, 10));
  fprintf(stderr,
          "usage: %s denoise MODEL|-|gate RATE IN.f32 OUT.f32 SEED | threads RATE IN.f32 | "
          "bad-calls CORRUPT_MODEL [MORE_BAD_MODELS...]\n",
          argv[0]);
  return 2;
}
