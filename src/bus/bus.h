// The Bus seam: node-to-node delivery of frames to a user's sessions.
//
// Contract: at-most-once and unordered across publishers. Per (publisher, node) it keeps
// publish order. Loss is allowed: clients detect the pts gap and sync from the Store,
// which is the source of truth.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "registry/registry.h"

namespace parley {

struct Envelope {
  // deliver: a frame to a user's sessions; close_device: close a device's sessions;
  // broadcast: a frame to the sessions subscribed to a chat (large groups);
  // subscribe/unsubscribe: a user's sessions (un)subscribe to a chat.
  enum class Kind : uint8_t { deliver, close_device, broadcast, subscribe, unsubscribe };
  Kind kind = Kind::deliver;
  std::string user;
  uint64_t chat_id = 0;                      // broadcast, subscribe, unsubscribe
  std::string device_id;                     // close_device: the device whose sessions to close
  uint64_t except_conn = 0;                  // deliver: skip this connection id (the sender's own)
  std::shared_ptr<const std::string> frame;  // deliver: the WebSocket text frame
  uint16_t close_code = 0;                   // close_device
};

class Bus {
 public:
  using Handler = std::function<void(const Envelope&)>;
  virtual ~Bus() = default;
  virtual void publish(NodeId node, Envelope env) = 0;
  // To every node (chat broadcasts: any node may hold subscribers).
  virtual void publish_all(Envelope env) = 0;
  // The handler for envelopes addressed to this node. Set once, before traffic.
  virtual void subscribe(NodeId self, Handler handler) = 0;
};

}  // namespace parley
