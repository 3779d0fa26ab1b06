// Reliability helpers of the core (issue 17): output-path collisions in every spelling, the JSON
// escape of file names that are not UTF-8, and the temporary-file registry read by the signal
// handlers. Real files in a fresh temporary folder.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "denoise/atomic_file.h"
#include "denoise/error.h"
#include "denoise/json_text.h"
#include "denoise/path_guard.h"

namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "denoise-rel-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void touch(const std::string& path) { std::ofstream(path) << "x"; }

TEST(PathGuard, EverySpellingOfAnInputIsRefused) {
  TempDir d;
  touch(d / "in.wav");
  fs::create_directory(d / "sub");
  fs::create_symlink(d / "in.wav", d / "link.wav");
  fs::create_hard_link(d / "in.wav", d / "hard.wav");
  fs::create_symlink("..", d / "sub/up");
  fs::create_symlink(d / "none.wav", d / "dangling.wav");
  denoise::PathGuard guard;
  guard.add_input(d / "in.wav", "input");
  guard.add_input(d / "none.wav", "planned");  // not there yet: compared by resolved path
  for (const std::string out : {"in.wav", "sub/../in.wav", "sub/up/in.wav", "link.wav", "hard.wav",
                                "./sub/up/sub/up/in.wav", "dangling.wav"}) {
    EXPECT_THROW(guard.check_output(d / out, "-o"), denoise::Error) << out;
  }
  EXPECT_NO_THROW(guard.check_output(d / "out.wav", "-o"));
  try {
    guard.check_output(d / "hard.wav", "--plot");
    FAIL() << "no error";
  } catch (const denoise::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hard.wav: --plot"), std::string::npos) << what;
    EXPECT_NE(what.find("input"), std::string::npos) << what;
  }
}

TEST(PathGuard, OutputsMustDifferFromEachOther) {
  TempDir d;
  fs::create_directory(d / "sub");
  denoise::PathGuard guard;
  guard.add_output(d / "a.json", "--json");
  EXPECT_THROW(guard.add_output(d / "sub/../a.json", "--csv"), denoise::Error);
  EXPECT_NO_THROW(guard.add_output(d / "a.csv", "--csv"));
  EXPECT_THROW(guard.add_output(d / "sub", "--csv"), denoise::Error);  // a folder
}

TEST(PathGuard, FoldersAndInputFolders) {
  TempDir d;
  fs::create_directories(d / "data/clean");
  touch(d / "data/clean/a.wav");
  touch(d / "data/notes.txt");
  denoise::PathGuard guard;
  guard.add_input_folder(d / "data", "--data");
  EXPECT_THROW(guard.check_output(d / "data/clean/a.wav", "--out"), denoise::Error);
  EXPECT_NO_THROW(guard.check_output(d / "data/model.dnz", "--out"));  // not there: not an input
  EXPECT_NO_THROW(guard.check_output(d / "data/notes.txt", "--out"));  // not audio or CSV
  guard.add_input(d / "data/clean/a.wav", "clean input");
  EXPECT_THROW(guard.add_output_folder(d / "data", "--report"), denoise::Error);
  EXPECT_NO_THROW(guard.add_output_folder(d / "report", "--report"));
}

TEST(JsonText, ValidUtf8IsKeptInvalidBytesAreEscaped) {
  EXPECT_EQ(denoise::escape_invalid_utf8("plain.wav"), "plain.wav");
  EXPECT_EQ(denoise::escape_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa4"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa4");
  EXPECT_EQ(denoise::escape_invalid_utf8("p1_\xff\xe9.wav"), "p1_\\xff\\xe9.wav");
  EXPECT_EQ(denoise::escape_invalid_utf8("\xc0\x80"), "\\xc0\\x80");           // overlong NUL
  EXPECT_EQ(denoise::escape_invalid_utf8("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(denoise::escape_invalid_utf8("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  EXPECT_EQ(denoise::escape_invalid_utf8("end\xe2\x82"), "end\\xe2\\x82");  // cut short
}

TEST(JsonText, DumpNeverThrowsAndReadsBack) {
  nlohmann::json j = {{"files", {"ok.wav", "bad\xfe.wav"}}, {"k\xff", 1}};
  EXPECT_THROW(j.dump(), nlohmann::json::type_error);  // what dump_json is for
  const std::string text = denoise::dump_json(j, 2);
  const auto back = nlohmann::json::parse(text);
  EXPECT_EQ(back["files"][0], "ok.wav");
  EXPECT_EQ(back["files"][1], "bad\\xfe.wav");
  EXPECT_EQ(back["k\\xff"], 1);
  const nlohmann::json valid = {{"a", "caf\xc3\xa9"}};
  EXPECT_EQ(denoise::dump_json(valid), valid.dump());  // valid UTF-8: dump() as it was
}

// The handler unlinks registered temporary files and ends the process by the same signal.
TEST(TemporaryFiles, RemovedOnSignal) {
  TempDir d;
  const std::string temp = d / ".out.wav.tmp-1";
  const std::string other = d / "kept.wav";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    denoise::remove_temporary_files_on_signals();
    touch(other);
    denoise::ScopedTemporaryFile registered(temp);
    touch(temp);
    ::raise(SIGTERM);
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(fs::exists(other));
}

TEST(TemporaryFiles, UnregisteredFilesAreKept) {
  TempDir d;
  const std::string path = d / "done.wav";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    denoise::remove_temporary_files_on_signals();
    { denoise::ScopedTemporaryFile registered(path); }  // renamed into place: unregistered
    touch(path);
    ::raise(SIGINT);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  EXPECT_TRUE(fs::exists(path));
}

}  // namespace
