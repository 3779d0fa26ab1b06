// Shared by the fuzz targets: each input is written to a file in a private temporary folder
// (the readers under test take paths, as the programs do). A target may throw denoise::Error
// (the readers' documented failure); any other exception, a crash or a sanitizer report is a
// finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "denoise/error.h"

namespace denoise::fuzz {

inline const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "denoise-fuzz-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(work_dir(), ec);
    });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (work_dir() / name).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs `body`; denoise::Error is an accepted outcome, anything else aborts (a finding).
template <typename Body>
void expect_only_denoise_errors(Body&& body) {
  try {
    body();
  } catch (const denoise::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: exception other than denoise::Error: %s\n", e.what());
    std::abort();
  }
}

}  // namespace denoise::fuzz
