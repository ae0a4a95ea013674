// The Registry seam (DESIGN.md §5): where the live sessions of each user's devices are.
// In process for one node (or for several nodes in one test process, sharing one
// LocalRegistry); a Redis hash per user across processes.
//
// Contract every backend keeps (registry_conformance.h checks it):
// - attach/detach count sessions per (user, device, node): a device with two connections
//   on a node stays located there until both are detached.
// - locate(users) answers, in the order asked, every device of each user that has a live
//   session, and the nodes holding them; one call for many users (one round trip to Redis).
// - Entries live for the TTL from their attach or their node's last refresh(): a node that
//   dies without detaching loses them by itself. A live node refreshes well within the TTL.
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
