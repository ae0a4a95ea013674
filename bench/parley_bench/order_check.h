// Checks one ordered stream (a sender's counter as one receiver sees it, or a chat's seq):
// counts in-order, duplicated and reordered arrivals, and what is still missing. Costs
// nothing while the stream is in order; gaps are kept in a small sorted vector.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace parley::bench {

class OrderCheck {
 public:
  enum class Verdict { in_order, gap, duplicate, reordered };

  // `n` is the next element, numbered 1, 2, 3, ...
  Verdict see(uint64_t n) {
    if (n == next_) {
      ++next_;
      return Verdict::in_order;
    }
    if (n > next_) {  // skipped next_ .. n-1: missing until they show up
      for (uint64_t m = next_; m < n && missing_.size() < kMaxTracked; ++m) missing_.push_back(m);
      next_ = n + 1;
      return Verdict::gap;
    }
    auto it = std::lower_bound(missing_.begin(), missing_.end(), n);
    if (it != missing_.end() && *it == n) {
      missing_.erase(it);
      return Verdict::reordered;
    }
    return Verdict::duplicate;
  }

  // Elements seen so far (distinct), given that 1 .. next-1 were either seen or missing.
  uint64_t distinct() const { return next_ - 1 - missing_.size(); }
  uint64_t highest() const { return next_ - 1; }
  uint64_t missing() const { return missing_.size(); }

 private:
  static constexpr size_t kMaxTracked = 1 << 20;
  uint64_t next_ = 1;
  std::vector<uint64_t> missing_;
};

}  // namespace parley::bench
