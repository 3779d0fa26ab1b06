// The pair finder (train --data, evaluate --data) on arbitrary layouts. First byte even: a
// Kaggle folder whose audios_meta_data.csv is the rest of the input, beside a few audio files;
// odd: noisy/ and clean/ folders holding one empty file per line of the input (the line's first
// byte picks the folder, the rest is the name, '/' and NUL replaced).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "denoise/dataset.h"
#include "fuzz_util.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const fs::path root = denoise::fuzz::work_dir() / "data";
  std::error_code ec;
  fs::remove_all(root, ec);
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    fs::create_directories(root / "speaker_audios_new" / "noisy_audios");
    fs::create_directories(root / "speaker_audios_new" / "clean_audios");
    for (const char* name : {"a.wav", "b.wav", "a_noisy.wav", "b_noisy.wav"}) {
      const bool noisy = std::string(name).find("noisy") != std::string::npos;
      denoise::fuzz::write_input((fs::path("data") / "speaker_audios_new" /
                                  (noisy ? "noisy_audios" : "clean_audios") / name)
                                     .string(),
                                 nullptr, 0);
    }
    denoise::fuzz::write_input("data/audios_meta_data.csv",
                               reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
  } else {
    fs::create_directories(root / "noisy");
    fs::create_directories(root / "clean");
    size_t start = 0;
    for (int files = 0; start < rest.size() && files < 32; ++files) {
      size_t end = rest.find('\n', start);
      if (end == std::string::npos) end = rest.size();
      std::string name = rest.substr(start, std::min<size_t>(end - start, 200));
      start = end + 1;
      for (char& c : name)
        if (c == '/' || c == '\0') c = '_';
      if (name.size() < 2) continue;
      const bool clean = (name[0] & 1) != 0;
      name.erase(0, 1);
      if (name == "." || name == "..") continue;
      denoise::fuzz::write_input((fs::path("data") / (clean ? "clean" : "noisy") / name).string(),
                                 nullptr, 0);
    }
  }
  denoise::fuzz::expect_only_denoise_errors([&] { denoise::find_pairs(root.string()); });
  return 0;
}
