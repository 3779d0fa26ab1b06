// The audio reader and the file pipeline on arbitrary bytes: the first byte picks the file
// extension and the method, the rest is the file.
#include <cstddef>
#include <cstdint>

#include "denoise/audio_io.h"
#include "denoise/file_pipeline.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kExtensions[] = {".wav", ".flac", ".aiff", ".caf",
                                            ".au",  ".w64",  ".ogg",  ".rf64"};
  static const char* const kMethods[] = {"gate", "gate-nonstationary", "subtract"};
  const std::string input =
      denoise::fuzz::write_input(std::string("in") + kExtensions[data[0] & 7], data + 1, size - 1);
  const std::string output = (denoise::fuzz::work_dir() / "out.wav").string();
  denoise::fuzz::expect_only_denoise_errors([&] {
    {
      denoise::AudioReader reader(input);
      // Bounded work per input: a header may promise hours of audio.
      if (reader.info().frames > 200000 || reader.info().channels > 8) return;
    }
    denoise::PipelineOptions opt;
    opt.method = kMethods[(data[0] >> 3) % 3];
    auto& g = opt.method_options.gate;
    g.n_fft = opt.method_options.subtract.n_fft = 256;
    g.hop_length = opt.method_options.subtract.hop_length = 64;
    g.padding_samples = 256;
    g.time_constant_s = 0.1;
    if (data[0] & 0x80) opt.output_rate_hz = 16000;
    denoise::denoise_file(input, output, opt);
  });
  return 0;
}
