#include <gtest/gtest.h>

#include <cmath>

#include "denoise/limiter.h"
#include "test_util.h"

using namespace denoise;

TEST(PeakLimiter, NeverExceedsCeilingAndReportsReduction) {
  const int rate = 16000;
  const int64_t n = rate;
  std::vector<float> x(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    const float v =
        static_cast<float>(4.0 * std::sin(2 * M_PI * 220 * i / rate));  // +12 dB over full scale
    x[2 * i] = v;
    x[2 * i + 1] = -0.5f * v;
  }
  PeakLimiter lim(2, rate);
  std::vector<float> y;
  lim.process(x.data(), n / 2, y);
  lim.process(x.data() + n, n - n / 2, y);
  lim.flush(y);
  ASSERT_EQ(y.size(), x.size());
  float peak = 0;
  for (float v : y) peak = std::max(peak, std::abs(v));
  EXPECT_LE(peak, 0.98855310f);  // -0.1 dBFS
  EXPECT_GT(peak, 0.9f);         // it limits, it does not crush
  EXPECT_NEAR(lim.max_reduction_db(), 20 * std::log10(4.0 / 0.98855), 0.1);
  // Linked channels: the ratio between channels is kept.
  for (int64_t i = 100; i < n; i += 97) EXPECT_NEAR(y[2 * i + 1], -0.5f * y[2 * i], 1e-6);
}

TEST(PeakLimiter, QuietSignalPassesUnchanged) {
  const auto x = test::white_noise(5000, 0.1, 2);  // peaks around 0.4
  PeakLimiter lim(1, 16000);
  std::vector<float> y;
  lim.process(x.data(), 5000, y);
  lim.flush(y);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_EQ(test::max_abs_diff(x, y), 0.0);
  EXPECT_EQ(lim.max_reduction_db(), 0.0);
}
