// One node's own entries in a Registry, counted where the node makes them, so that the node
// can write them again (reassert) whatever the registry lost: a Redis server that restarted
// empty, an attach that failed while it was down.
//
// The node's sessions attach and detach through the ledger (it is a Registry: every other call
// passes straight through). reassert() sends the registry a snapshot of the counts, and the
// snapshot must be exact at the point where the registry applies it (registry.h: calls apply
// in call order): an attach counted in the snapshot but applied after it would be counted
// twice, one applied before it but not counted would be undone. So the ledger counts each
// attach/detach and queues its call in one step under its lock, takes the snapshot and queues
// the reassert in one step too, and issues the queue in its order (whichever thread finds it
// not being issued issues it, outside the lock: the registry's inline completions never run
// under it). The alternative, removing only entries older than the snapshot, would need a
// time per entry and still count an attach that lands between snapshot and reassert twice.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "registry/registry.h"

namespace parley {

class NodeLedger final : public Registry {
 public:
  // Counts attach/detach for `node` (those for other nodes pass through uncounted).
  NodeLedger(Registry& registry, NodeId node) : registry_(registry), node_(node) {}

  void attach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  void detach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  // The node's entries become what the ledger counts now (registry.h).
  void reassert(Done done);
  // For `node_`: reassert(done) with what the ledger counts (`live` is ignored; it must be
  // the ledger's, taken in its order). Other nodes pass through.
  void reassert(NodeId node, std::vector<SessionEntry> live, Done done) override;
  // In order with the node's attach/detach; the counts stay (the sessions still live).
  void clear_node(NodeId node, Done done) override;

  void locate(std::vector<std::string> users,
              std::function<void(Result<std::vector<UserLocation>>)> done) override {
    registry_.locate(std::move(users), std::move(done));
  }
  void refresh(NodeId node, Done done) override { registry_.refresh(node, std::move(done)); }
  void claim_node(NodeId node, const std::string& instance, Done done) override {
    registry_.claim_node(node, instance, std::move(done));
  }
  void release_node(NodeId node, const std::string& instance, Done done) override {
    registry_.release_node(node, instance, std::move(done));
  }
  bool spans_processes() const override { return registry_.spans_processes(); }
  Health health() const override { return registry_.health(); }

  // The node's live sessions as counted, sorted by (user, device): for tests.
  std::vector<SessionEntry> entries();

 private:
  // Queues `call` (under mu_, with the change it makes to the counts).
  void queue(std::function<void()> call);
  // Issues what is queued, in order, unless another thread is at it.
  void issue();
  std::vector<SessionEntry> snapshot() const;  // under mu_

  Registry& registry_;
  const NodeId node_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint32_t> sessions_;  // (user, device)
  std::deque<std::function<void()>> queued_;
  bool issuing_ = false;
};

}  // namespace parley
