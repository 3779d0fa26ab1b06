// Whole files replaced atomically: the bytes go to a hidden temporary file beside the target
// (same folder, so the rename stays within one file system; hidden, so folder scans skip it),
// are flushed to disk, and the temporary file is renamed over the target. A reader sees the old
// file or the new one, never a partial one; on failure no temporary file is left.
#pragma once

#include <string>
#include <string_view>

namespace denoise {

// A fresh hidden name beside `path`: "<dir>/.<name>.tmp-<pid>-<n>" (n counts up per process, so
// threads writing the same target do not collide).
std::string temporary_path_for(const std::string& path);

// A temporary file that a fatal signal must not leave behind: while a ScopedTemporaryFile for
// `path` lives, the handlers of remove_temporary_files_on_signals() unlink it. Construct it
// before creating the file and destroy it after renaming it (an unlink of a renamed or never
// created name does nothing). At most 64 at once (more are not registered); paths of up to 4095
// bytes. Thread-safe; the registry is lock-free so that a signal handler may read it.
class ScopedTemporaryFile {
 public:
  explicit ScopedTemporaryFile(const std::string& path);
  ~ScopedTemporaryFile();
  ScopedTemporaryFile(const ScopedTemporaryFile&) = delete;
  ScopedTemporaryFile& operator=(const ScopedTemporaryFile&) = delete;

 private:
  int slot_ = -1;
};

// Installs handlers for SIGINT, SIGTERM and SIGHUP (each one not ignored at start) that unlink
// every registered temporary file and then end the process by the same signal, with the default
// action, so that the parent sees it killed by the signal (a shell's $? is 128 + signo). The
// handler runs once: a signal during the cleanup ends the process at once. Only main calls it.
void remove_temporary_files_on_signals();

// Writes `bytes` to `path` as described above. Throws denoise::Error naming `path` and the
// system's reason (missing folder, disk full, ...).
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace denoise
