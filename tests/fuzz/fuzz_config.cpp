// The JSON training configuration reader (train --config) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "denoise/trainer.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = denoise::fuzz::write_input("config.json", data, size);
  denoise::fuzz::expect_only_denoise_errors([&] {
    denoise::TrainOptions options;
    denoise::apply_config_file(path, options);
  });
  return 0;
}
