// Finding training files on disk (internal to denoise_data): the paired layouts, the mixing
// folders and a cheap header check of every file. dataset.cpp splits and samples what this finds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "denoise/dataset.h"

namespace denoise::detail {

// Shortest file (either side of a pair) kept, and the largest length difference between the two
// sides of a pair that is not reported (one 10 ms hop).
inline constexpr double kMinFileSeconds = 0.25;
inline constexpr double kMismatchSeconds = 0.010;

struct FileItem {
  std::string path;
  std::string key;     // path relative to its source folder: what the split hashes
  int64_t length = 0;  // samples at the model rate (from the header)
};

struct PairItem {
  std::string noisy, clean;  // equal for an identity pair
  std::string key;           // the clean file relative to its source: all pairs of one clean
                             // utterance land on the same side of the split
  int64_t length = 0;        // min of both sides at the model rate
  bool identity = false;
};

// Problems grouped by kind, reported as one line per kind with a count and the first names.
class Problems {
 public:
  void add(const std::string& kind, const std::string& name);
  void note(const std::string& line) { notes_.push_back(line); }
  std::vector<std::string> lines() const;
  // Every (kind, name) added, in order (lines() keeps only the first few names of a kind).
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  struct Group {
    int64_t count = 0;
    std::vector<std::string> names;
  };
  std::vector<std::string> order_;
  std::map<std::string, Group> groups_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, std::string>> items_;
};

struct Found {
  std::vector<PairItem> pairs;
  std::vector<FileItem> clean, noise;
};

// Scans options.data_dirs, clean_dirs and noise_dirs; fills `found`, the source list and the
// skip counters of `summary`, and `problems`. Throws Error for a folder that does not exist, a
// data_dir in no known layout, or a clean/noise folder without audio files.
void find_sources(const DataOptions& options, Found& found, DataSummary& summary,
                  Problems& problems);

}  // namespace denoise::detail
