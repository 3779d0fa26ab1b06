#include "denoise/spsc_ring.h"

#include <algorithm>

namespace denoise {

namespace {
size_t next_power_of_two(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}
}  // namespace

SpscRing::SpscRing(size_t min_capacity)
    : buffer_(next_power_of_two(std::max<size_t>(min_capacity, 2)), 0.f),
      mask_(buffer_.size() - 1) {}

size_t SpscRing::write_available() const {
  // The consumer's index with acquire: the slots it released may be overwritten.
  return buffer_.size() - (write_index_.load(std::memory_order_relaxed) -
                           read_index_.load(std::memory_order_acquire));
}

SpscRing::Regions SpscRing::regions_at(size_t index, size_t n) {
  const size_t start = index & mask_;
  const size_t first = std::min(n, buffer_.size() - start);
  return {buffer_.data() + start, first, buffer_.data(), n - first};
}

SpscRing::Regions SpscRing::write_regions(size_t n) {
  return regions_at(write_index_.load(std::memory_order_relaxed), n);
}

void SpscRing::commit_write(size_t n) {
  // Release: the samples written before are visible to a consumer that sees the new index.
  write_index_.store(write_index_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

size_t SpscRing::write(const float* data, size_t n) {
  n = std::min(n, write_available());
  const Regions r = write_regions(n);
  std::copy(data, data + r.first_size, r.first);
  std::copy(data + r.first_size, data + n, r.second);
  commit_write(n);
  return n;
}

size_t SpscRing::read_available() const {
  return write_index_.load(std::memory_order_acquire) - read_index_.load(std::memory_order_relaxed);
}

SpscRing::Regions SpscRing::read_regions(size_t n) {
  return regions_at(read_index_.load(std::memory_order_relaxed), n);
}

void SpscRing::commit_read(size_t n) {
  // Release: the producer that sees the new index may reuse the slots.
  read_index_.store(read_index_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

size_t SpscRing::read(float* data, size_t n) {
  n = std::min(n, read_available());
  const Regions r = read_regions(n);
  std::copy(r.first, r.first + r.first_size, data);
  std::copy(r.second, r.second + r.second_size, data + r.first_size);
  commit_read(n);
  return n;
}

size_t SpscRing::skip(size_t n) {
  n = std::min(n, read_available());
  commit_read(n);
  return n;
}

}  // namespace denoise
