// The last net under a program's main: whatever its body did not catch (a library's own
// exception, std::bad_alloc, ...) ends the program with one line on stderr and exit status 1,
// never with std::terminate's abort and core dump.
//
//   static int run(int argc, char** argv) { ... }
//   int main(int argc, char** argv) { return denoise::run_main("infer", run, argc, argv); }
#pragma once

#include <cstdio>
#include <exception>
#include <new>
#include <string>

namespace denoise {

inline int run_main(const char* program, int (*body)(int, char**), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", program);
  } catch (const std::exception& e) {
    // Some libraries (LibTorch) append a backtrace: the first line says what happened.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    std::fprintf(stderr, "%s: error: unexpected failure: %s\n", program, what.c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: error: unexpected failure (unknown exception)\n", program);
  }
  return 1;
}

}  // namespace denoise
