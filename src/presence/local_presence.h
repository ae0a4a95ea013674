// Presence for a single node: a TTL map in process memory, sharded by user.
//
// Memory: one entry per online user (its sessions and their last touch), plus offline
// users whose transition was reported but who have not been swept yet: expire() forgets
// an offline user once its last_seen went out through on_change. Call expire() a few
// times per TTL (it also does that sweep).
#pragma once

#include <array>
#include <boost/container/flat_map.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "presence/presence.h"

namespace parley::presence {

class LocalPresence final : public Presence {
 public:
  explicit LocalPresence(std::chrono::milliseconds ttl);

  void touch(const std::string& user, const std::string& session_key, int64_t now_ms) override;
  void drop(const std::string& user, const std::string& session_key, int64_t now_ms) override;
  Status status(const std::string& user) const override;
  void expire(int64_t now_ms) override;
  void set_on_change(std::function<void(const Status&)> fn) override;

  // Users held in memory (online, or offline and not yet forgotten).
  size_t tracked_users() const;

 private:
  using Callback = std::function<void(const Status&)>;
  struct User {
    // session key -> last touch (ms); a user has a session or a few: a flat map allocates
    // one small array instead of a hash table's buckets and a node per session.
    boost::container::flat_map<std::string, int64_t> sessions;
    int64_t last_seen = 0;    // when it last went offline
    uint32_t unreported = 0;  // transitions queued, not yet delivered
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, User> users;
    std::deque<Status> reports;  // transitions in the order they happened
    bool reporting = false;      // a thread is delivering `reports`
  };
  Shard& shard(const std::string& user);
  const Shard& shard(const std::string& user) const;
  void queue(Shard& s, User& u, Status st);
  // Delivers the shard's queued transitions in order, releasing `lock` around each call.
  void report(Shard& s, std::unique_lock<std::mutex>& lock);

  const int64_t ttl_ms_;
  std::array<Shard, 16> shards_;
  mutable std::mutex on_change_mu_;
  std::shared_ptr<const Callback> on_change_;
};

}  // namespace parley::presence
