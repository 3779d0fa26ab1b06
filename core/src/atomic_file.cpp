#include "denoise/atomic_file.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

// The registry of temporary files: fixed slots, so that a signal handler reads it without
// allocating or locking (async-signal-safe: only lock-free atomics, unlink, sigaction, raise).
constexpr int kSlots = 64;
constexpr size_t kPathBytes = 4096;
enum SlotState : int { kFree = 0, kWriting = 1, kReady = 2 };
struct Slot {
  std::atomic<int> state{kFree};
  char path[kPathBytes];
};
Slot g_slots[kSlots];
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

extern "C" void remove_temporaries_and_die(int signo) {
  const int saved_errno = errno;
  for (auto& slot : g_slots)
    if (slot.state.load() == kReady) ::unlink(slot.path);
  errno = saved_errno;
  // SA_RESETHAND restored the default action: the same signal now ends the process.
  ::raise(signo);
}

}  // namespace

ScopedTemporaryFile::ScopedTemporaryFile(const std::string& path) {
  if (path.size() >= kPathBytes) return;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (g_slots[i].state.compare_exchange_strong(expected, kWriting)) {
      std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
      g_slots[i].state.store(kReady);
      slot_ = i;
      return;
    }
  }
}

ScopedTemporaryFile::~ScopedTemporaryFile() {
  if (slot_ >= 0) g_slots[slot_].state.store(kFree);
}

void remove_temporary_files_on_signals() {
  for (const int signo : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(signo, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // nohup
    struct sigaction sa {};
    sa.sa_handler = remove_temporaries_and_die;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    ::sigaction(signo, &sa, nullptr);
  }
}

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
  const ScopedTemporaryFile registered(temp);
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
