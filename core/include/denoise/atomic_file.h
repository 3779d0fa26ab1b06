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

// Writes `bytes` to `path` as described above. Throws denoise::Error naming `path` and the
// system's reason (missing folder, disk full, ...).
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace denoise
