#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace parley::bench {

int Histogram::index_of(uint64_t value) {
  constexpr uint64_t kTop = (uint64_t{1} << kMaxBits) - 1;
  value = std::min(value, kTop);
  if (value < (uint64_t{1} << kSubBits)) return static_cast<int>(value);
  int msb = 63 - std::countl_zero(value);
  int shift = msb - (kSubBits - 1);  // >= 1
  return shift * kHalf + static_cast<int>(value >> shift);
}

uint64_t Histogram::highest_equivalent(int index) {
  if (index < (1 << kSubBits)) return static_cast<uint64_t>(index);
  int shift = index / kHalf - 1;
  uint64_t sub = static_cast<uint64_t>(index - shift * kHalf);
  return ((sub + 1) << shift) - 1;
}

void Histogram::merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) {
    auto v = other.counts_[i].load(std::memory_order_relaxed);
    if (v) counts_[i].fetch_add(v, std::memory_order_relaxed);
  }
  total_.fetch_add(other.count(), std::memory_order_relaxed);
  if (other.max() > max()) max_.store(other.max(), std::memory_order_relaxed);
}

void Histogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

uint64_t Histogram::percentile(double p) const {
  uint64_t total = count();
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total)));
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) return std::min(highest_equivalent(i), max());
  }
  return max();
}

}  // namespace parley::bench
