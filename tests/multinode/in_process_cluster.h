// N parleyd nodes in one test process, sharing their backends the way a cluster shares
// its servers: one Store (RocksDB in a temporary directory), one Registry, one Presence, one
// MediaStore, and a Bus endpoint per node on one LocalBusHub that passes every envelope
// through its wire form. Each node listens on its own loopback port, so tests talk to it
// exactly as to a separate parleyd. (Nodes in separate processes need a store they can
// share: PostgreSQL, the next step; this harness keeps the same tests for then.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "app/backends.h"
#include "app/node.h"
#include "bus/local_bus.h"
#include "common/config.h"

namespace parley::test {

class InProcessCluster {
 public:
  // `tweak` may change the configuration every node starts with (after the test defaults);
  // `wrap_store` may put the shared store behind another (fault injection).
  using StoreWrapper = std::function<std::shared_ptr<store::Store>(std::shared_ptr<store::Store>)>;
  explicit InProcessCluster(int nodes, std::function<void(Config&)> tweak = nullptr,
                            StoreWrapper wrap_store = nullptr);
  ~InProcessCluster();
  InProcessCluster(const InProcessCluster&) = delete;
  InProcessCluster& operator=(const InProcessCluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  // Node i (0-based): its port, and its node id (i + 1).
  std::uint16_t port(int i) const { return nodes_.at(i)->port(); }
  NodeId node_id(int i) const { return static_cast<NodeId>(i + 1); }
  // Stops node i (its sessions close with 1001; the others go on).
  void stop(int i);
  // Starts one more node on the shared backends, with its own data directory (another
  // installation), not counted in size(): for tests of what a cluster refuses.
  Result<std::unique_ptr<app::Node>> start_node(NodeId id);
  LocalBusHub& bus() { return *bus_; }

 private:
  std::filesystem::path dir_;
  std::shared_ptr<LocalBusHub> bus_;
  Config base_;
  app::Backends shared_;
  std::vector<std::unique_ptr<app::Node>> nodes_;
};

}  // namespace parley::test
