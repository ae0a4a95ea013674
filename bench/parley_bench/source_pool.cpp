#include "source_pool.h"

#include <algorithm>

namespace parley::bench {

namespace ip = boost::asio::ip;

SourcePool::SourcePool(const ip::address& target, unsigned width)
    : v6_(target.is_v6()), width_(v6_ ? 1 : std::clamp(width, 1u, kMaxSlots)) {}

ip::address SourcePool::pick(uint64_t index, unsigned* slot) const {
  if (v6_) {
    *slot = 0;
    return ip::address_v6::loopback();
  }
  unsigned s = base_.load(std::memory_order_relaxed) + static_cast<unsigned>(index % width_);
  s = std::min(s, kMaxSlots - 1);
  *slot = s;
  return ip::address_v4((127u << 24) | (s + 1));
}

bool SourcePool::exhausted(unsigned slot) {
  if (v6_) return false;
  unsigned base = base_.load();
  while (base <= slot && slot + 1 + width_ <= kMaxSlots) {
    if (base_.compare_exchange_weak(base, slot + 1)) return true;
  }
  return base > slot;
}

}  // namespace parley::bench
