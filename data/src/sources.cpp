#include "sources.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "denoise/audio_io.h"
#include "denoise/error.h"

namespace fs = std::filesystem;

namespace denoise::detail {
namespace {

// Problem kinds, in the order their lines are reported.
const char* const kMissing = "missing";
const char* const kUnmatched = "unmatched";
const char* const kUnreadable = "unreadable";
const char* const kTooShort = "too short";
const char* const kTrimmed = "trimmed";
const char* const kDuplicate = "duplicate";
const char* const kMalformed = "malformed";

std::string describe_kind(const std::string& kind) {
  if (kind == kMissing) return "missing files, pairs skipped";
  if (kind == kUnmatched)
    return "files without a partner of the same name in the other folder, skipped";
  if (kind == kUnreadable) return "unreadable or non-audio files, skipped";
  if (kind == kTooShort) return "files shorter than 0.25 s, skipped";
  if (kind == kTrimmed)
    return "pairs whose sides differ by more than 10 ms, trimmed to the shorter";
  if (kind == kDuplicate) return "repeated CSV rows, ignored";
  if (kind == kMalformed) return "CSV rows with too few fields, ignored";
  return kind;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// Audio files under `dir`, recursively, sorted; hidden files and folders are skipped (our own
// temporary files, .DS_Store, .git).
std::vector<fs::path> list_audio(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && is_audio_extension(it->path().extension().string()))
      files.push_back(it->path());
  }
  if (ec) throw Error(dir.string() + ": cannot list folder (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<fs::path> subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!is_hidden(it->path()) && it->is_directory(ec)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path absolute_folder(const std::string& dir, const char* option) {
  std::error_code ec;
  const fs::path p = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (ec || !fs::exists(p)) throw Error(std::string(option) + ": " + dir + ": no such folder");
  if (!fs::is_directory(p))
    throw Error(std::string(option) + ": " + dir + ": is a file, expected a folder");
  // "a/b/" normalises to "a/b/" with an empty last component; drop it so parent_path() works.
  return p.has_filename() ? p : p.parent_path();
}

// ---------------------------------------------------------------------------------------------
// Header scan

struct Header {
  bool exists = false;
  bool readable = false;
  std::string why;  // unreadable: the reader's message (names the file and the reason)
  int64_t frames = 0;
  int rate_hz = 0;
  double seconds() const { return rate_hz > 0 ? static_cast<double>(frames) / rate_hz : 0.0; }
  // Length after resampling to the model rate: the length denoise::resample produces.
  int64_t length_at(int model_rate_hz) const {
    return rate_hz > 0 ? std::llround(static_cast<double>(frames) * model_rate_hz / rate_hz) : 0;
  }
};

// Opens every file once (header only). Threads, because on network file systems the opens are
// latency-bound and datasets hold tens of thousands of files.
std::map<std::string, Header> scan_headers(const std::vector<std::string>& paths) {
  std::vector<std::string> unique(paths);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::vector<Header> headers(unique.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < unique.size(); i = next++) {
      Header& h = headers[i];
      std::error_code ec;
      h.exists = fs::is_regular_file(unique[i], ec);
      if (!h.exists) continue;
      try {
        AudioReader reader(unique[i]);
        h.frames = reader.info().frames;
        h.rate_hz = reader.info().sample_rate_hz;
        h.readable = true;
      } catch (const std::exception& e) {
        h.why = e.what();
      }
    }
  };
  const size_t threads = std::min<size_t>(
      {8, std::max(1u, std::thread::hardware_concurrency()), unique.size() / 64 + 1});
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::map<std::string, Header> out;
  for (size_t i = 0; i < unique.size(); ++i) out.emplace(unique[i], std::move(headers[i]));
  return out;
}

struct Candidate {
  std::string noisy, clean;  // empty: not found
  std::string missing_name;  // what the CSV named, for the message, when a side is missing
  std::string key;
  bool identity = false;
};

// Checks candidate pairs against their headers and keeps the usable ones.
void check_pairs(const std::vector<Candidate>& candidates, int model_rate_hz, Found& found,
                 DataSummary& summary, Problems& problems) {
  std::vector<std::string> paths;
  for (const auto& c : candidates) {
    if (!c.noisy.empty()) paths.push_back(c.noisy);
    if (!c.clean.empty()) paths.push_back(c.clean);
  }
  const auto headers = scan_headers(paths);
  for (const auto& c : candidates) {
    if (c.noisy.empty() || c.clean.empty()) {
      ++summary.skipped_missing;
      problems.add(kMissing, c.missing_name);
      continue;
    }
    const Header& n = headers.at(c.noisy);
    const Header& k = headers.at(c.clean);
    if (!n.exists || !k.exists) {
      ++summary.skipped_missing;
      problems.add(kMissing, !n.exists ? c.noisy : c.clean);
      continue;
    }
    if (!n.readable || !k.readable) {
      ++summary.skipped_unreadable;
      problems.add(kUnreadable, !n.readable ? n.why : k.why);
      continue;
    }
    if (std::min(n.seconds(), k.seconds()) < kMinFileSeconds) {
      ++summary.skipped_too_short;
      problems.add(kTooShort, n.seconds() < k.seconds() ? c.noisy : c.clean);
      continue;
    }
    if (std::abs(n.seconds() - k.seconds()) > kMismatchSeconds) {
      ++summary.trimmed_mismatched;
      std::ostringstream what;
      what.precision(3);
      what << c.noisy << " (" << n.seconds() << " s vs " << k.seconds() << " s)";
      problems.add(kTrimmed, what.str());
    }
    PairItem item;
    item.noisy = c.noisy;
    item.clean = c.clean;
    item.key = c.key;
    item.identity = c.identity;
    item.length = std::min(n.length_at(model_rate_hz), k.length_at(model_rate_hz));
    if (c.identity) ++summary.identity_pairs;
    found.pairs.push_back(std::move(item));
  }
}

// Mixing sources: every audio file under `dir` that opens and is long enough.
std::vector<FileItem> check_files(const fs::path& dir, const char* option, int model_rate_hz,
                                  DataSummary& summary, Problems& problems) {
  const auto files = list_audio(dir);
  if (files.empty())
    throw Error(std::string(option) + ": " + dir.string() +
                ": no audio files (.wav, .flac, ...) in it");
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.string());
  const auto headers = scan_headers(paths);
  std::vector<FileItem> out;
  for (const auto& f : files) {
    const Header& h = headers.at(f.string());
    if (!h.readable) {
      ++summary.skipped_unreadable;
      problems.add(kUnreadable, h.why.empty() ? f.string() : h.why);
    } else if (h.seconds() < kMinFileSeconds) {
      ++summary.skipped_too_short;
      problems.add(kTooShort, f.string());
    } else {
      out.push_back(
          {f.string(), f.lexically_relative(dir).generic_string(), h.length_at(model_rate_hz)});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180: quoted fields with "" escapes, CRLF or LF line ends)

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open CSV file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, was_quoted = false;
  auto end_field = [&] {
    row.push_back(was_quoted ? field : trim(field));
    field.clear();
    was_quoted = false;
  };
  auto end_row = [&] {
    end_field();
    if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"') {
      quoted = was_quoted = true;
    } else if (ch == ',') {
      end_field();
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
    } else {
      field += ch;
    }
  }
  if (!field.empty() || !row.empty()) end_row();
  return rows;
}

// Column indices of noisy_audio and clean_audio in a header row; -1 when absent.
std::pair<int, int> csv_columns(const std::vector<std::string>& header) {
  int noisy = -1, clean = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string h = lower(trim(header[i]));
    if (h == "noisy_audio") noisy = static_cast<int>(i);
    if (h == "clean_audio") clean = static_cast<int>(i);
  }
  return {noisy, clean};
}

bool csv_has_columns(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  const std::string l = lower(line);
  return l.find("noisy_audio") != std::string::npos && l.find("clean_audio") != std::string::npos;
}

// The metadata CSV: audios_meta_data.csv inside `root` or beside it, else any CSV there whose
// header names both columns.
fs::path find_csv(const fs::path& root) {
  const std::vector<fs::path> places = {root, root.parent_path()};
  for (const auto& dir : places) {
    std::error_code ec;
    if (fs::is_regular_file(dir / "audios_meta_data.csv", ec)) return dir / "audios_meta_data.csv";
  }
  for (const auto& dir : places) {
    std::error_code ec;
    std::vector<fs::path> csvs;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (lower(it->path().extension().string()) == ".csv" && it->is_regular_file(ec))
        csvs.push_back(it->path());
    std::sort(csvs.begin(), csvs.end());
    for (const auto& c : csvs)
      if (csv_has_columns(c)) return c;
  }
  return {};
}

// A file named in the CSV: the name may carry an extension or not, and a sub-path (relative to
// the folder, to the dataset root or to something above); the first existing candidate wins.
std::string resolve(const fs::path& folder, std::string name) {
  std::replace(name.begin(), name.end(), '\\', '/');
  const fs::path p = fs::path(trim(name)).lexically_normal();
  std::vector<fs::path> candidates;
  if (p.is_absolute()) {
    candidates.push_back(p);
  } else {
    std::vector<fs::path> parts(p.begin(), p.end());
    for (size_t skip = 0; skip < parts.size(); ++skip) {
      fs::path c = folder;
      for (size_t i = skip; i < parts.size(); ++i) c /= parts[i];
      candidates.push_back(c);
    }
  }
  static const char* const kExtensions[] = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff"};
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c.string();
    if (!c.has_extension()) {
      for (const char* ext : kExtensions) {
        fs::path with = c;
        with += ext;
        if (fs::is_regular_file(with, ec)) return with.string();
      }
    }
  }
  return "";
}

// Pairs of files with the same path relative to `noisy` and `clean`.
std::vector<Candidate> pair_by_name(const fs::path& noisy, const fs::path& clean,
                                    const fs::path& key_base, Problems& problems,
                                    DataSummary& summary) {
  std::map<std::string, fs::path> clean_files;
  for (const auto& f : list_audio(clean))
    clean_files[f.lexically_relative(clean).generic_string()] = f;
  std::vector<Candidate> out;
  std::set<std::string> used;
  for (const auto& f : list_audio(noisy)) {
    const std::string rel = f.lexically_relative(noisy).generic_string();
    const auto it = clean_files.find(rel);
    if (it == clean_files.end()) {
      ++summary.skipped_missing;
      problems.add(kUnmatched, f.string());
      continue;
    }
    used.insert(rel);
    Candidate c;
    c.noisy = f.string();
    c.clean = it->second.string();
    c.key = it->second.lexically_relative(key_base).generic_string();
    out.push_back(std::move(c));
  }
  for (const auto& [rel, path] : clean_files) {
    if (used.count(rel)) continue;
    ++summary.skipped_missing;
    problems.add(kUnmatched, path.string());
  }
  return out;
}

bool is_kaggle_root(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "noisy_audios", ec) && fs::is_directory(dir / "clean_audios", ec);
}

std::vector<Candidate> kaggle_candidates(const fs::path& root, DataSummary& summary,
                                         Problems& problems) {
  summary.sources.push_back("kaggle:" + root.string());
  const fs::path noisy_dir = root / "noisy_audios", clean_dir = root / "clean_audios";
  const fs::path csv = find_csv(root);
  if (csv.empty()) {
    problems.note(root.string() +
                  ": no CSV with noisy_audio,clean_audio columns inside or beside it; pairing "
                  "noisy_audios/ and clean_audios/ by file name");
    return pair_by_name(noisy_dir, clean_dir, root, problems, summary);
  }
  const auto rows = read_csv(csv);
  if (rows.empty())
    throw Error(csv.string() + ": empty CSV, expected a header noisy_audio,clean_audio");
  const auto [noisy_col, clean_col] = csv_columns(rows[0]);
  if (noisy_col < 0 || clean_col < 0) {
    std::string seen;
    for (const auto& h : rows[0]) seen += (seen.empty() ? "" : ",") + h;
    throw Error(csv.string() +
                ": expected columns noisy_audio and clean_audio in the header, found '" + seen +
                "'");
  }
  std::vector<Candidate> candidates;
  std::set<std::pair<std::string, std::string>> seen_rows;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (static_cast<int>(row.size()) <= std::max(noisy_col, clean_col)) {
      problems.add(kMalformed, csv.string() + " line " + std::to_string(r + 1));
      continue;
    }
    const std::string noisy_name = trim(row[noisy_col]), clean_name = trim(row[clean_col]);
    if (noisy_name.empty() && clean_name.empty()) continue;
    if (!seen_rows.insert({noisy_name, clean_name}).second) {
      problems.add(kDuplicate, noisy_name + "," + clean_name);
      continue;
    }
    Candidate c;
    if (noisy_name == clean_name) {
      // Identity row: the clean recording on both sides (teaches "leave clean speech alone").
      c.identity = true;
      c.clean = resolve(clean_dir, clean_name);
      if (c.clean.empty()) c.clean = resolve(noisy_dir, clean_name);
      c.noisy = c.clean;
      c.missing_name = (clean_dir / clean_name).string();
    } else {
      c.noisy = resolve(noisy_dir, noisy_name);
      c.clean = resolve(clean_dir, clean_name);
      c.missing_name =
          c.noisy.empty() ? (noisy_dir / noisy_name).string() : (clean_dir / clean_name).string();
    }
    if (!c.clean.empty()) c.key = fs::path(c.clean).lexically_relative(root).generic_string();
    candidates.push_back(std::move(c));
  }
  return candidates;
}

// noisy<X>/ + clean<X>/ subfolders of `dir` (noisy/clean, noisy_trainset_wav/clean_trainset_wav,
// noisy_testset_wav/..., noisy_trainset_28spk_wav/...).
std::vector<std::pair<fs::path, fs::path>> pair_folders(const fs::path& dir) {
  std::vector<std::pair<fs::path, fs::path>> out;
  const auto subs = subfolders(dir);
  for (const auto& noisy : subs) {
    const std::string name = lower(noisy.filename().string());
    if (name.rfind("noisy", 0) != 0) continue;
    const std::string suffix = name.substr(5);
    for (const auto& clean : subs)
      if (lower(clean.filename().string()) == "clean" + suffix) out.emplace_back(noisy, clean);
  }
  return out;
}

std::vector<Candidate> folder_candidates(const fs::path& noisy, const fs::path& clean,
                                         DataSummary& summary, Problems& problems) {
  const fs::path parent = noisy.parent_path();
  const bool plain = noisy.filename() == "noisy" && clean.filename() == "clean";
  summary.sources.push_back("pairs:" + (plain ? parent.string()
                                              : parent.string() + " (" + noisy.filename().string() +
                                                    ", " + clean.filename().string() + ")"));
  return pair_by_name(noisy, clean, clean, problems, summary);
}

// Candidate pairs of one --data folder, before any file is opened (the trainer checks their
// headers; evaluate reads them whole and reports each problem per file).
std::vector<Candidate> data_dir_candidates(const std::string& dir_option, DataSummary& summary,
                                           Problems& problems) {
  const fs::path dir = absolute_folder(dir_option, "--data");
  // Kaggle: the folder given is speaker_audios_new itself, the unzipped folder holding it, or
  // the folder the archive was unzipped into.
  std::vector<fs::path> roots;
  if (is_kaggle_root(dir)) roots.push_back(dir);
  if (roots.empty())
    for (const auto& sub : subfolders(dir))
      if (is_kaggle_root(sub)) roots.push_back(sub);
  if (roots.empty())
    for (const auto& sub : subfolders(dir))
      for (const auto& subsub : subfolders(sub))
        if (is_kaggle_root(subsub)) roots.push_back(subsub);
  std::vector<Candidate> out;
  auto append = [&out](std::vector<Candidate> more) {
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  };
  if (!roots.empty()) {
    for (const auto& root : roots) append(kaggle_candidates(root, summary, problems));
    return out;
  }
  auto folders = pair_folders(dir);
  if (folders.empty())
    for (const auto& sub : subfolders(dir))
      for (auto& f : pair_folders(sub)) folders.push_back(std::move(f));
  if (folders.empty()) {
    throw Error(dir.string() +
                ": no paired data found; expected the Kaggle layout "
                "(speaker_audios_new/noisy_audios/, clean_audios/ and audios_meta_data.csv) or "
                "noisy/ + clean/ folders (also noisy_trainset_wav/ + clean_trainset_wav/) with "
                "matching file names, in it or in one of its subfolders");
  }
  for (const auto& [noisy, clean] : folders)
    append(folder_candidates(noisy, clean, summary, problems));
  return out;
}

}  // namespace

void Problems::add(const std::string& kind, const std::string& name) {
  auto [it, inserted] = groups_.try_emplace(kind);
  if (inserted) order_.push_back(kind);
  ++it->second.count;
  if (it->second.names.size() < 3) it->second.names.push_back(name);
  items_.emplace_back(kind, name);
}

std::vector<std::string> Problems::lines() const {
  std::vector<std::string> out;
  for (const auto& kind : order_) {
    const Group& g = groups_.at(kind);
    // "missing files, pairs skipped: 12 (a.wav; b.wav; c.wav; ...)"
    std::string line = describe_kind(kind) + ": " + std::to_string(g.count) + " (";
    for (size_t i = 0; i < g.names.size(); ++i) line += (i ? "; " : "") + g.names[i];
    if (g.count > static_cast<int64_t>(g.names.size())) line += "; ...";
    out.push_back(line + ")");
  }
  out.insert(out.end(), notes_.begin(), notes_.end());
  return out;
}

void find_sources(const DataOptions& options, Found& found, DataSummary& summary,
                  Problems& problems) {
  for (const auto& dir : options.data_dirs)
    check_pairs(data_dir_candidates(dir, summary, problems), options.sample_rate_hz, found, summary,
                problems);
  for (const auto& dir_option : options.clean_dirs) {
    const fs::path dir = absolute_folder(dir_option, "--clean");
    summary.sources.push_back("clean:" + dir.string());
    auto files = check_files(dir, "clean_dirs", options.sample_rate_hz, summary, problems);
    found.clean.insert(found.clean.end(), files.begin(), files.end());
  }
  if (!options.noise_dirs.empty() && options.clean_dirs.empty())
    throw Error(
        "noise_dirs given without clean_dirs: noise is mixed into clean speech, so "
        "clean_dirs must name at least one folder of clean speech");
  for (const auto& dir_option : options.noise_dirs) {
    const fs::path dir = absolute_folder(dir_option, "--noise");
    summary.sources.push_back("noise:" + dir.string());
    auto files = check_files(dir, "noise_dirs", options.sample_rate_hz, summary, problems);
    found.noise.insert(found.noise.end(), files.begin(), files.end());
  }
}

}  // namespace denoise::detail

namespace denoise {

PairListing find_pairs(const std::string& dir) {
  using namespace detail;
  DataSummary summary;
  Problems problems;
  PairListing out;
  for (auto& c : data_dir_candidates(dir, summary, problems)) {
    if (c.noisy.empty() || c.clean.empty())  // a CSV row naming a file that is not there
      out.unpaired.push_back({c.missing_name, "named in the CSV but not found"});
    else
      out.pairs.push_back({std::move(c.noisy), std::move(c.clean), c.identity});
  }
  out.sources = std::move(summary.sources);
  for (const auto& [kind, name] : problems.items()) {
    if (kind == kUnmatched)
      out.unpaired.push_back({name, "no file of the same name in the other folder"});
    else
      out.notes.push_back(describe_kind(kind) + ": " + name);
  }
  out.notes.insert(out.notes.end(), problems.notes().begin(), problems.notes().end());
  return out;
}

}  // namespace denoise
