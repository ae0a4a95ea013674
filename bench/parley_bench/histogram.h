// Log-bucket latency histogram (HdrHistogram layout): 64 linear sub-buckets per power of
// two, so every recorded value is kept to within 1/64 (1.6 %) of itself, in constant
// memory and O(1) per record. Percentiles walk the buckets; samples are never sorted.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace parley::bench {

class Histogram {
 public:
  // Values are nanoseconds; anything at or above 2^40 ns (18 min) lands in the top bucket.
  static constexpr int kSubBits = 7;  // 128 sub-bucket slots, the upper 64 used above 2^7
  static constexpr int kHalf = 1 << (kSubBits - 1);
  static constexpr int kMaxBits = 40;
  static constexpr int kBuckets = (kMaxBits - kSubBits + 2) * kHalf;

  // One writer thread per histogram; other threads may read (progress line) at any time.
  void record(uint64_t value) {
    auto& c = counts_[index_of(value)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    total_.store(total_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  // Adds `other` into this one (both quiescent, or a racy snapshot for progress).
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return total_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  // The highest value equivalent to the bucket holding the p-th percentile (0 < p <= 100);
  // never above max(). 0 when empty.
  uint64_t percentile(double p) const;

  static int index_of(uint64_t value);
  static uint64_t highest_equivalent(int index);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace parley::bench
