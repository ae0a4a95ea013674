// How a backend is doing, for /readyz and the logs (docs/OPERATIONS.md).
#pragma once

#include <string>

namespace parley {

struct Health {
  bool ok = true;
  std::string detail;  // why not, for humans: "redis 127.0.0.1:6379: connection refused"
  // Not ok, but part of it serves: a sharded store with one server down still serves the
  // users and chats on the others (/readyz: 200 "degraded", not 503).
  bool partial = false;
};

}  // namespace parley
