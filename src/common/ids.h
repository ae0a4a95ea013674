// Identifier generation: Snowflake-style message ids, device ids and user id validation.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace parley {

// 64-bit ids: 41 bits of ms since 2024-01-01 | 10 bits node | 12 bits counter (4096 per ms).
// Monotonic per generator even if the wall clock steps back.
class SnowflakeGenerator {
 public:
  static constexpr int64_t kEpochMs = 1704067200000;  // 2024-01-01T00:00:00Z
  explicit SnowflakeGenerator(uint32_t node_id);
  uint64_t next(int64_t now_ms);

 private:
  std::mutex mu_;
  uint32_t node_;
  int64_t last_ms_ = 0;
  uint32_t counter_ = 0;
};

// "d" + 16 hex digits, from the system CSPRNG.
std::string new_device_id();

// User ids: 3-32 chars of [a-z0-9_.-], first a letter or digit.
bool valid_user_id(std::string_view id);

}  // namespace parley
