#include "common/ids.h"

#include <sodium.h>

#include <cstdio>

namespace parley {

SnowflakeGenerator::SnowflakeGenerator(uint32_t node_id) : node_(node_id & 0x3ff) {}

uint64_t SnowflakeGenerator::next(int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (now_ms <= last_ms_) {
    now_ms = last_ms_;
    if (++counter_ == 4096) {  // borrow the next millisecond rather than repeat an id
      counter_ = 0;
      ++now_ms;
    }
  } else {
    counter_ = 0;
  }
  last_ms_ = now_ms;
  uint64_t t = static_cast<uint64_t>(now_ms - kEpochMs);
  return (t << 22) | (static_cast<uint64_t>(node_) << 12) | counter_;
}

std::string new_device_id() {
  unsigned char bytes[8];
  randombytes_buf(bytes, sizeof bytes);
  char out[18];
  out[0] = 'd';
  for (int i = 0; i < 8; ++i) std::snprintf(out + 1 + 2 * i, 3, "%02x", bytes[i]);
  return std::string(out, 17);
}

bool valid_user_id(std::string_view id) {
  if (id.size() < 3 || id.size() > 32) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (i == 0 && !alnum) return false;
    if (!alnum && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace parley
