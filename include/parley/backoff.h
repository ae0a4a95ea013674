// Exponential reconnect backoff with jitter, bounded by [min, max].
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace parley {

struct BackoffPolicy {
  std::chrono::milliseconds min{250};    // base of the first delay
  std::chrono::milliseconds max{30000};  // upper bound of every delay
  double multiplier = 2.0;               // growth of the base per attempt
  // Fraction of the delay that is random: delay in [d*(1-jitter), d]. The lower bound of all
  // delays is min*(1-jitter) (at least 1 ms), so even the first retries of many clients that
  // lost the same server spread out.
  double jitter = 0.5;
};

// The delay for attempt n (0-based) with u in [0, 1] as the random draw. Pure, for tests:
// d = min(max, min * multiplier^n); result = clamp(d * (1 - jitter * u), min * (1 - jitter), max).
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt, double u);

// Stateful backoff: Next() grows, Reset() after a successful connection.
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}());

  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

}  // namespace parley
