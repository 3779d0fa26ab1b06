#include "denoise/path_guard.h"

#include <sys/stat.h>

#include <filesystem>

#include "denoise/audio_io.h"
#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

// The absolute path with "." and ".." folded and the symbolic links among its existing leading
// parts resolved; a dangling link at the end is followed to the file it would create.
std::string resolve(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = fs::path(path);
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
    struct stat target {};
    if (::stat(p.c_str(), &target) == 0) break;  // an existing target: canonical resolves it
    const fs::path link = fs::read_symlink(p, ec);
    if (ec) break;
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
  fs::path r = fs::weakly_canonical(p, ec);
  if (ec) r = p.lexically_normal();
  return r.string();
}

bool is_inside(const std::string& file, const std::string& folder) {
  const std::string prefix = folder.empty() || folder.back() == '/' ? folder : folder + "/";
  return file.size() > prefix.size() && file.compare(0, prefix.size(), prefix) == 0;
}

std::string lower_extension(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

}  // namespace

PathGuard::Entry PathGuard::make_entry(const std::string& path, const std::string& role) {
  Entry e;
  e.path = path;
  e.role = role;
  e.resolved = resolve(path);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    e.has_inode = true;
    e.dev = static_cast<unsigned long long>(st.st_dev);
    e.ino = static_cast<unsigned long long>(st.st_ino);
  }
  return e;
}

bool PathGuard::same(const Entry& a, const Entry& b) {
  if (a.has_inode && b.has_inode) return a.dev == b.dev && a.ino == b.ino;
  return a.resolved == b.resolved;
}

bool PathGuard::same_file(const std::string& a, const std::string& b) {
  return same(make_entry(a, ""), make_entry(b, ""));
}

void PathGuard::add_input(const std::string& path, const std::string& role) {
  if (!path.empty()) inputs_.push_back(make_entry(path, role));
}

void PathGuard::add_input_folder(const std::string& path, const std::string& role) {
  if (!path.empty()) input_folders_.push_back(make_entry(path, role));
}

void PathGuard::check_output(const std::string& path, const std::string& role) const {
  if (path.empty()) return;
  const Entry out = make_entry(path, role);
  for (const auto& in : inputs_)
    if (same(out, in))
      throw Error(path + ": " + role + " is the same file as the " + in.role + " " + in.path +
                  "; refusing to overwrite an input");
  for (const auto& o : outputs_)
    if (same(out, o))
      throw Error(path + ": " + role + " and " + o.role + " " + o.path +
                  " are the same file; give each output its own name");
  std::error_code ec;
  if (out.has_inode && fs::is_regular_file(path, ec)) {
    const std::string ext = lower_extension(path);
    if (is_audio_extension(ext) || ext == ".csv")
      for (const auto& folder : input_folders_)
        if (is_inside(out.resolved, folder.resolved))
          throw Error(path + ": " + role + " is a file inside the " + folder.role + " folder " +
                      folder.path + "; refusing to overwrite an input");
  }
  if (out.has_inode && fs::is_directory(path, ec))
    throw Error(path + ": " + role + " is a folder, expected a file name");
}

void PathGuard::add_output(const std::string& path, const std::string& role) {
  if (path.empty()) return;
  check_output(path, role);
  outputs_.push_back(make_entry(path, role));
}

void PathGuard::add_output_folder(const std::string& path, const std::string& role) {
  if (path.empty()) return;
  const Entry dir = make_entry(path, role);
  for (const auto& in : inputs_) {
    if (same(dir, in))
      throw Error(path + ": " + role + " is the " + in.role + " file " + in.path +
                  "; refusing to overwrite an input");
    if (is_inside(in.resolved, dir.resolved))
      throw Error(path + ": " + role + " folder holds the " + in.role + " " + in.path +
                  "; choose a folder without inputs in it");
  }
  for (const auto& o : outputs_)
    if (same(dir, o))
      throw Error(path + ": " + role + " is the same path as the " + o.role + " " + o.path);
}

}  // namespace denoise
