// The model-file reader on arbitrary bytes: metadata alone, then the whole model.
#include <cstddef>
#include <cstdint>

#include "denoise/checkpoint.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = denoise::fuzz::write_input("model.dnz", data, size);
  denoise::fuzz::expect_only_denoise_errors([&] { denoise::read_checkpoint_metadata(path); });
  denoise::fuzz::expect_only_denoise_errors([&] { denoise::load_checkpoint(path); });
  return 0;
}
