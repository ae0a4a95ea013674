#pragma once

#include <chrono>
#include <cstdint>

namespace parley {

// Milliseconds since the Unix epoch, wall clock: used for message timestamps and ids.
inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace parley
