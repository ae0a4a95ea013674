#include "parley/backoff.h"

#include <algorithm>
#include <cmath>

namespace parley {

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt, double u) {
  double lo = std::max<double>(1.0, static_cast<double>(policy.min.count()));
  double hi = std::max<double>(lo, static_cast<double>(policy.max.count()));
  double growth = std::max(1.0, policy.multiplier);
  // pow() may overflow to inf for large attempts; min() then gives hi.
  double delay = std::min(hi, lo * std::pow(growth, std::max(0, attempt)));
  double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  delay *= 1.0 - jitter * std::clamp(u, 0.0, 1.0);
  delay = std::clamp(delay, std::max(1.0, lo * (1.0 - jitter)), hi);
  return std::chrono::milliseconds(std::llround(delay));
}

Backoff::Backoff(BackoffPolicy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto delay = BackoffDelay(policy_, attempt_, unit(rng_));
  if (attempt_ < 1000) ++attempt_;
  return delay;
}

}  // namespace parley
