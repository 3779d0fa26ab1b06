// Output-path collision checks shared by infer, evaluate and train: no output may be an input, or
// another output, in any spelling (relative, "..", symbolic links, hard links).
//
//   PathGuard guard;
//   guard.add_input(noisy_path, "input");
//   guard.add_output(output_path, "-o");   // throws denoise::Error on a collision
//   guard.add_output(plot_path, "--plot");
//
// Two paths name the same file when they resolve to the same inode (st_dev and st_ino, which
// catches hard links and symbolic links to an existing file) or, for files that do not exist
// yet, to the same absolute path once "." and "..", and the symbolic links among the existing
// parent folders, are resolved. Not thread-safe; cheap (one stat per path).
#pragma once

#include <string>
#include <vector>

namespace denoise {

class PathGuard {
 public:
  // A file the program reads; `role` names it in messages ("input", "--noise-clip", "--model").
  void add_input(const std::string& path, const std::string& role);
  // A folder the program reads files from: an output inside it that already exists with an
  // audio or CSV extension is taken for one of its inputs.
  void add_input_folder(const std::string& path, const std::string& role);
  // Checks that the file `path` that the program will write (`role`: "-o", "--plot", ...) is
  // none of the inputs and none of the outputs added before, then records it. Throws
  // denoise::Error naming `path`, `role` and the file it collides with.
  void add_output(const std::string& path, const std::string& role);
  // As add_output without recording `path` (a check for one output among many, e.g. per file).
  void check_output(const std::string& path, const std::string& role) const;
  // A folder the program writes files into (`role`: "--report"): refused when it is an input
  // file or when an input file lies inside it.
  void add_output_folder(const std::string& path, const std::string& role);

  // True when `a` and `b` name the same file as described above.
  static bool same_file(const std::string& a, const std::string& b);

 private:
  struct Entry {
    std::string path, role, resolved;  // resolved: absolute, lexically normal, links resolved
    bool has_inode = false;
    unsigned long long dev = 0, ino = 0;
  };
  static Entry make_entry(const std::string& path, const std::string& role);
  static bool same(const Entry& a, const Entry& b);
  std::vector<Entry> inputs_, input_folders_, outputs_;
};

}  // namespace denoise
