#include <algorithm>

#include "denoise/dataset.h"
#include "denoise/error.h"

namespace denoise {

BatchLoader::BatchLoader(const TrainingData& data, int batch_size, int workers, uint64_t seed,
                         int64_t first_batch, int queue_depth)
    : data_(data),
      batch_size_(batch_size),
      seed_(seed),
      queue_depth_(queue_depth),
      next_to_make_(first_batch),
      next_to_give_(first_batch) {
  if (batch_size < 1)
    throw Error("BatchLoader: batch_size must be >= 1 (got " + std::to_string(batch_size) + ")");
  if (workers < 1)
    throw Error("BatchLoader: workers must be >= 1 (got " + std::to_string(workers) + ")");
  if (queue_depth < 1)
    throw Error("BatchLoader: queue_depth must be >= 1 (got " + std::to_string(queue_depth) + ")");
  if (first_batch < 0)
    throw Error("BatchLoader: first_batch must be >= 0 (got " + std::to_string(first_batch) + ")");
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back(&BatchLoader::work, this);
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  ready_.notify_all();
  for (auto& t : workers_) t.join();
}

Batch BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return done_.count(next_to_give_) > 0 || error_; });
  const auto it = done_.find(next_to_give_);
  if (it == done_.end()) std::rethrow_exception(error_);
  Batch batch = std::move(it->second);
  done_.erase(it);
  ++next_to_give_;
  lock.unlock();
  space_.notify_all();
  return batch;
}

void BatchLoader::work() {
  const int64_t length = data_.crop_samples();
  for (;;) {
    int64_t index;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // At most queue_depth batches beyond the one the trainer waits for, so memory stays bounded
      // when the trainer is slower than the workers.
      space_.wait(lock, [&] { return stop_ || next_to_make_ < next_to_give_ + queue_depth_; });
      if (stop_) return;
      index = next_to_make_++;
    }
    // The batch depends on (seed, index) only: which worker makes it, and when, does not matter.
    const auto s = static_cast<uint64_t>(seed_), i = static_cast<uint64_t>(index);
    std::seed_seq seq{static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32),
                      static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32)};
    std::mt19937_64 rng(seq);
    Batch batch;
    std::exception_ptr error;
    try {
      batch.batch_size = batch_size_;
      batch.length = length;
      batch.noisy.resize(static_cast<size_t>(batch_size_) * length);
      batch.clean.resize(batch.noisy.size());
      for (int b = 0; b < batch_size_; ++b) {
        const Example ex = data_.sample(rng);
        std::copy(ex.noisy.begin(), ex.noisy.end(), batch.noisy.begin() + b * length);
        std::copy(ex.clean.begin(), ex.clean.end(), batch.clean.begin() + b * length);
      }
    } catch (...) {
      // sample() does not throw for bad files; this is out of memory and the like. Hand it to
      // the trainer's thread rather than terminating the process from a worker.
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error) {
        if (!error_) error_ = error;
      } else {
        done_.emplace(index, std::move(batch));
      }
    }
    ready_.notify_all();
    if (error) return;
  }
}

}  // namespace denoise
