// The Registry seam (DESIGN.md §5): where the live sessions of each user's devices are.
// In process for one node (or for several nodes in one test process, sharing one
// LocalRegistry); a Redis hash per user across processes.
//
// Contract every backend keeps (registry_conformance.h checks it):
// - attach/detach count sessions per (user, device, node): a device with two connections
//   on a node stays located there until both are detached.
// - locate(users) answers, in the order asked, every device of each user that has a live
//   session, and the nodes holding them; one call for many users (one round trip to Redis).
// - Entries live for the TTL from their attach or their node's last refresh() or reassert():
//   a node that dies without detaching loses them by itself. A live node reasserts (or
//   refreshes) well within the TTL.
// - reassert(node, live) makes the node's entries exactly `live`: entries missing from the
//   backend (a Redis server that restarted empty) are written, the node's entries not in
//   `live` are removed, counts are set, TTLs renewed; other nodes' entries are not touched.
// - Calls on one registry apply in the order they were made (one made after another returned
//   applies after it; the order of completions is not promised). So a reassert applies over
//   exactly the attaches and detaches made before it: `live` must count those, no more, no
//   less (NodeLedger, node_ledger.h, takes it and calls so).
// - It may be stale for a moment (a session that just closed, on a node that just died):
//   delivering to a node without the session is a no-op, and pushes for a device that only
//   looked connected are healed when it syncs.
// - A node id is held by one running node: claim_node() takes it for the TTL on behalf of an
//   instance (the installation's persistent name, so that a node that restarts after a crash
//   takes its id back at once), renews it for the same instance, and refuses it with
//   `conflict` while another instance's claim lives. refresh() does not renew claims.
// - Completions may run on any thread, also inline before the call returns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/errc.h"
#include "common/health.h"
#include "common/node.h"

namespace parley {

struct DeviceLocation {
  std::string device_id;
  NodeId node = 0;
  bool operator==(const DeviceLocation&) const = default;
};

// One of a node's entries as reassert() writes it: `sessions` live sessions of the device.
struct SessionEntry {
  std::string user;
  std::string device_id;
  uint32_t sessions = 1;
  bool operator==(const SessionEntry&) const = default;
};

struct UserLocation {
  std::string user;
  std::vector<DeviceLocation> devices;  // sorted by (device_id, node); empty: not connected
  bool operator==(const UserLocation&) const = default;
};

class Registry {
 public:
  using Done = std::function<void(Status)>;
  virtual ~Registry() = default;
  virtual void attach(const std::string& user, const std::string& device_id, NodeId node,
                      Done done) = 0;
  virtual void detach(const std::string& user, const std::string& device_id, NodeId node,
                      Done done) = 0;
  virtual void locate(std::vector<std::string> users,
                      std::function<void(Result<std::vector<UserLocation>>)> done) = 0;
  // Renews every entry of `node` for another TTL.
  virtual void refresh(NodeId node, Done done) = 0;
  // Makes the entries of `node` exactly `live` (one element per device; an element with 0
  // sessions counts as absent), each living another TTL. What the node holds is written
  // again whatever the backend lost; see the contract above for the order with attach/detach.
  virtual void reassert(NodeId node, std::vector<SessionEntry> live, Done done) = 0;
  // Forgets every entry of `node` (it stops, or starts again after a crash).
  virtual void clear_node(NodeId node, Done done) = 0;
  // Takes or renews `node` for `instance` for the TTL; conflict if another instance holds it.
  virtual void claim_node(NodeId node, const std::string& instance, Done done) = 0;
  // Gives the id up, if `instance` holds it (a node that stops).
  virtual void release_node(NodeId node, const std::string& instance, Done done) = 0;
  // Whether nodes in other processes share it: a node id must then be set and unique.
  virtual bool spans_processes() const { return false; }
  virtual Health health() const = 0;
};

}  // namespace parley
