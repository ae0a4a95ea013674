// The Registry seam: which nodes hold live sessions of a user.
//
// Contract: add/remove are counted per (user, node); nodes_of returns the nodes with a
// count above zero. It may be stale for a moment (a node that just lost the user's last
// session); delivery to such a node is a no-op, and sync heals anything missed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley {

using NodeId = uint32_t;

class Registry {
 public:
  virtual ~Registry() = default;
  virtual void add(const std::string& user, NodeId node) = 0;
  virtual void remove(const std::string& user, NodeId node) = 0;
  virtual std::vector<NodeId> nodes_of(const std::string& user) = 0;
};

}  // namespace parley
