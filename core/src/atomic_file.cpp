#include "denoise/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise {

std::string temporary_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter++)))
      .string();
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string name = fs::path(path).filename().string();
  if (name.empty() || name == "." || name == "..") throw Error(path + ": not a file name");
  const std::string temp = temporary_path_for(path);
  auto fail = [&](const std::string& why, int err) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error(path + ": " + why + (err ? std::string(" (") + std::strerror(err) + ")" : ""));
  };
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) fail("cannot create a file in this folder", errno);
  int err = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size() || std::fflush(file) != 0 ||
      ::fsync(::fileno(file)) != 0)
    err = errno ? errno : EIO;
  if (std::fclose(file) != 0 && !err) err = errno ? errno : EIO;
  if (err) fail("cannot write", err);
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) fail("cannot rename the temporary file into place: " + ec.message(), 0);
}

}  // namespace denoise
