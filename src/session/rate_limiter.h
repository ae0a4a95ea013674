#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace parley::session {

// Token bucket: `rate` tokens per second, at most `burst` saved up.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(uint32_t rate, uint32_t burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  // Takes a token if there is one; otherwise returns the ms until there will be.
  bool take(Clock::time_point now, uint64_t* retry_after_ms) {
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min<double>(burst_, tokens_ + elapsed * rate_);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    *retry_after_ms = static_cast<uint64_t>((1.0 - tokens_) * 1000.0 / rate_) + 1;
    return false;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_ = Clock::now();
};

}  // namespace parley::session
