// Lock-free single-producer / single-consumer ring of floats, between an audio callback (or a
// plugin's run()) and a worker thread: infer --live and the LADSPA plugin.
#pragma once

#include <atomic>
#include <cstddef>
#include <vector>

namespace denoise {

// Lock-free single-producer / single-consumer ring of floats. One thread writes, one thread reads;
// neither allocates, locks or throws after construction, so either side may be an audio callback.
// Indices count samples since construction and wrap through the power-of-two mask.
class SpscRing {
 public:
  // Capacity: the smallest power of two >= min_capacity (allocated here, never again).
  explicit SpscRing(size_t min_capacity);
  size_t capacity() const { return buffer_.size(); }

  // Producer side.
  size_t write_available() const;
  // Two contiguous regions for `n` samples (n <= write_available()); fill them, then commit.
  struct Regions {
    float* first;
    size_t first_size;
    float* second;
    size_t second_size;
  };
  Regions write_regions(size_t n);
  void commit_write(size_t n);
  // Copies up to n samples in; returns how many fitted.
  size_t write(const float* data, size_t n);

  // Consumer side.
  size_t read_available() const;
  // Two contiguous regions holding the next `n` samples (n <= read_available()); read them, then
  // commit.
  Regions read_regions(size_t n);
  void commit_read(size_t n);
  // Copies up to n samples out; returns how many were read.
  size_t read(float* data, size_t n);
  // Drops up to n samples; returns how many were dropped.
  size_t skip(size_t n);

 private:
  // The two contiguous regions of `n` slots from position `index` (wrapping at the end).
  Regions regions_at(size_t index, size_t n);
  std::vector<float> buffer_;
  size_t mask_;
  alignas(64) std::atomic<size_t> write_index_{0};  // written by the producer only
  alignas(64) std::atomic<size_t> read_index_{0};   // written by the consumer only
};

}  // namespace denoise
