// One parleyd node: every component of the server wired over its backends (app/backends.h),
// serving HTTP and WebSocket on config.server.listen. The process runs one (app/app.h); the
// in-process cluster tests run several, sharing backends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app/backends.h"
#include "common/config.h"

namespace parley::app {

class Node {
 public:
  // Builds the node and starts serving. Errors: a bad listen address, an unusable JWT key,
  // push provider credentials or web root (bad_request), a port in use (unavailable).
  static Result<std::unique_ptr<Node>> start(const Config& config, Backends backends);
  ~Node();  // stop()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  uint16_t port() const;
  const std::string& host() const;  // as listened on (an IPv6 address without brackets)
  NodeId id() const;
  // Drains: /readyz turns 503, the listener closes, every WebSocket gets 1001 (and up to 5 s),
  // the node's threads stop. Leaves the backends open (they may be shared). Idempotent.
  void stop();

  struct Parts;  // the components, in construction order (node.cpp)

 private:
  Node() = default;
  std::unique_ptr<Parts> parts_;
};

}  // namespace parley::app
