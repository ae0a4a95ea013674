// Stable hashes for placing keys on servers: the same on every node, build and platform
// (std::hash promises none of that).
#pragma once

#include <cstdint>
#include <string_view>

namespace parley {

// FNV-1a, 64 bits.
inline uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace parley
