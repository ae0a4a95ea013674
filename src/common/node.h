// Nodes and the sessions on them, named the same way on every node of a cluster.
#pragma once

#include <cstdint>

namespace parley {

// A parleyd process in a cluster: server.node_id, also ten bits of every message_id
// (common/ids.h), so two live nodes must never share one.
using NodeId = uint32_t;
inline constexpr NodeId kMaxNodeId = 1023;

// One session (an authenticated WebSocket connection) somewhere in the cluster: its node
// and the connection's id on that node. conn 0 names no session.
struct SessionRef {
  NodeId node = 0;
  uint64_t conn = 0;
  bool operator==(const SessionRef&) const = default;
};

}  // namespace parley
