// This node's live, authenticated sessions by user: where the Bus hands frames over to
// connections. Sharded by user so that fan-out from many threads rarely contends.
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
  void add(const std::string& user, const std::string& device_id,
           std::shared_ptr<net::Transport> t);
  void remove(const std::string& user, uint64_t conn_id);  // also drops its chat subscriptions
  // Adds a live session to a chat's broadcast list (large groups).
  void subscribe(uint64_t chat_id, std::shared_ptr<net::Transport> t);
  // The device ids of the user's live sessions on this node (a device may appear twice).
  std::vector<std::string> devices(const std::string& user);
  // Calls fn(user, conn_id) for every live session (presence refresh). Holds one shard's
  // lock at a time: fn must not call back into the hub.
  void for_each(const std::function<void(const std::string& user, uint64_t conn_id)>& fn);
  // Delivers a frame or closes a device's connections, as the envelope says.
  void handle(const Envelope& env);

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
  void unsubscribe(uint64_t chat_id, uint64_t conn_id);
  void broadcast(const Envelope& env);
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
