// Numeric option checks for the programs' CLI11 parsers (header-only; the library itself does not
// use CLI11). CLI11's own Range lets NaN through (every comparison with NaN is false); these refuse
// NaN, infinities and text, and state the range in --help ("FLOAT in [0 - 1]").
#pragma once

#include <CLI/CLI.hpp>
#include <cmath>
#include <sstream>
#include <string>

namespace denoise {

// A finite number in [lo, hi] (both inclusive).
inline CLI::Validator finite_range(double lo, double hi) {
  std::ostringstream desc;
  desc << "FLOAT in [" << lo << " - " << hi << "]";
  const std::string range = desc.str().substr(9);
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(input, value) || !std::isfinite(value))
          return "'" + input + "' is not a finite number in " + range;
        if (value < lo || value > hi) return input + " is outside " + range;
        return {};
      },
      desc.str());
}

}  // namespace denoise
