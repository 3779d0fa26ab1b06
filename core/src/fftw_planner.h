// FFTW's planner (plan creation and destruction alike) is not thread-safe, for all plans of the
// process: every FFTW plan in the library is made and destroyed under this one lock.
#pragma once

#include <mutex>

namespace denoise::detail {

std::mutex& fftw_planner_mutex();

}  // namespace denoise::detail
