// Error type of the library. Every failure that a user can cause (bad file, bad option) is thrown
// as denoise::Error whose message is one line naming the file or option and the reason; only the
// programs' main() catch it, print it and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace denoise {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace denoise
