// The Bus seam: node-to-node delivery (DESIGN.md §5). In process for one node, or for
// several nodes in one test process (LocalBus on a LocalBusHub); Redis Pub/Sub across
// processes.
//
// Contract every backend keeps (bus_conformance.h checks it):
// - publish(node, env) reaches the handler of `node` at most once: the Bus may lose an
//   envelope (a node restarting, Redis down). Nothing is lost for users: clients detect the
//   gap in pts or seq and sync from the Store, the source of truth.
// - Order is kept per (publisher, addressee): two envelopes one node publishes to another
//   arrive in publish order. Across publishers there is no order; the receiving node orders
//   what it pushes to each device itself (SessionHub).
// - publish_chat(chat, env) reaches every node that subscribed to the chat (and only
//   those), with the same order and loss rules. A node subscribes while it holds sessions
//   that receive the chat's broadcasts (members of a large group). subscribe_chat() never
//   waits for a remote backend: it confirms through its callback, and what is published
//   between the call and the confirmation may not reach the node (the caller reads that
//   window from the Store once confirmed: SessionHub does).
// - publish_all(env) reaches every node, this one included.
// - Envelopes cross processes in their encoded form (bus/envelope.h); a backend that never
//   leaves the process may hand them over as they are.
// - The handler runs on a Bus thread (or inline in publish for in-process backends): it
//   must not block.
#pragma once

#include <cstdint>
#include <functional>

#include "bus/envelope.h"
#include "common/errc.h"
#include "common/health.h"

namespace parley {

class Bus {
 public:
  using Handler = std::function<void(const Envelope&)>;
  // ok: everything published to the chat from now on reaches this node. An error: not yet
  // (the backend is down); the subscription still applies once it is back.
  using Subscribed = std::function<void(Status)>;
  virtual ~Bus() = default;
  // Starts receiving what is addressed to `self`. Call once, before any publish.
  virtual void start(NodeId self, Handler handler) = 0;
  // Stops receiving: once it returns the handler is not called again (a call running on
  // another thread is waited for), so what it refers to may go. Not from the handler itself.
  // Publishing after it is allowed (and may be lost). A bus never started: nothing to do.
  virtual void stop() = 0;
  virtual void publish(NodeId node, Envelope env) = 0;
  virtual void publish_chat(uint64_t chat_id, Envelope env) = 0;
  virtual void publish_all(Envelope env) = 0;
  // This node starts or stops receiving publish_chat(chat_id). Counted: as many unsubscribes
  // as subscribes before it stops. subscribe_chat returns at once; `subscribed` (may be null)
  // runs once, inline or on a Bus thread, when the subscription is in effect (for a chat
  // subscribed already: once the first subscription is).
  virtual void subscribe_chat(uint64_t chat_id, Subscribed subscribed) = 0;
  virtual void unsubscribe_chat(uint64_t chat_id) = 0;
  virtual Health health() const = 0;
};

}  // namespace parley
