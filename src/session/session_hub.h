// This node's live, authenticated sessions by user: where envelopes from the Bus become
// frames queued on connections. Sharded by user so that fan-out from many threads rarely
// contends. It also keeps the large-group subscriptions of its sessions, and tells the Bus
// which chats this node needs broadcasts of.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "net/transport.h"

namespace parley::session {

class SessionHub {
 public:
  // `bus`: told when this node starts or stops needing a chat's broadcasts (may be null).
  SessionHub(NodeId self, Bus* bus) : self_(self), bus_(bus) {}

  void add(const std::string& user, const std::string& device_id,
           std::shared_ptr<net::Transport> t);
  void remove(const std::string& user, uint64_t conn_id);  // also drops its chat subscriptions
  // Adds a live session to a chat's broadcast list (large groups).
  void subscribe(uint64_t chat_id, std::shared_ptr<net::Transport> t);
  // Calls fn(user, device_id, conn_id) for every live session (presence and registry
  // refresh). Holds one shard's lock at a time: fn must not call back into the hub.
  void for_each(const std::function<void(const std::string& user, const std::string& device_id,
                                         uint64_t conn_id)>& fn);
  // What an envelope addressed to this node asks for (bus/envelope.h). Presence envelopes
  // are not the hub's: they go to the presence hook.
  void handle(const Envelope& env);
  void set_on_presence(std::function<void(const Envelope&)> fn) { on_presence_ = std::move(fn); }

 private:
  struct Entry {
    std::string device_id;
    std::shared_ptr<net::Transport> transport;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<Entry>> users;
  };
  Shard& shard(const std::string& user);
  // The user's sessions on this node but `except`.
  std::vector<std::shared_ptr<net::Transport>> sessions_of(const std::string& user,
                                                           SessionRef except);
  void deliver(const Envelope& env);
  void unsubscribe(uint64_t chat_id, uint64_t conn_id);
  void broadcast(const Envelope& env);

  const NodeId self_;
  Bus* const bus_;
  std::function<void(const Envelope&)> on_presence_;
  std::array<Shard, 16> shards_;

  // Large-group subscriptions: chat -> sessions, and per session its chats (to clean up).
  struct ChatShard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::vector<std::shared_ptr<net::Transport>>> chats;
  };
  std::array<ChatShard, 16> chat_shards_;
  std::mutex conn_chats_mu_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> conn_chats_;
};

}  // namespace parley::session
