// How a backend is doing, for /readyz and the logs (docs/OPERATIONS.md).
#pragma once

#include <string>

namespace parley {

struct Health {
  bool ok = true;
  std::string detail;  // why not, for humans: "redis 127.0.0.1:6379: connection refused"
};

}  // namespace parley
