// This node's live, authenticated sessions by user: where the Bus hands frames over to
// connections. Sharded by user so that fan-out from many threads rarely contends.
#pragma once

#include <array>
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
  void remove(const std::string& user, uint64_t conn_id);
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
  std::array<Shard, 16> shards_;
};

}  // namespace parley::session
