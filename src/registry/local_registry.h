// The Registry in process memory: one node, or several nodes of one test process sharing
// it. Completions run inline.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

#include "registry/registry.h"

namespace parley {

class LocalRegistry final : public Registry {
 public:
  using Clock = std::function<int64_t()>;  // ms; injectable for tests of the TTL
  explicit LocalRegistry(std::chrono::milliseconds ttl = std::chrono::seconds(60),
                         Clock clock = nullptr);

  void attach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  void detach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  void locate(std::vector<std::string> users,
              std::function<void(Result<std::vector<UserLocation>>)> done) override;
  void refresh(NodeId node, Done done) override;
  void reassert(NodeId node, std::vector<SessionEntry> live, Done done) override;
  void clear_node(NodeId node, Done done) override;
  void claim_node(NodeId node, const std::string& instance, Done done) override;
  void release_node(NodeId node, const std::string& instance, Done done) override;
  Health health() const override { return {}; }

 private:
  struct Entry {
    uint32_t sessions = 0;
    int64_t expires_at = 0;  // ms
  };
  using Key = std::pair<std::string, NodeId>;  // device, node
  int64_t now() const;

  const int64_t ttl_ms_;
  const Clock clock_;
  std::mutex mu_;
  // user -> (device, node) -> entry; a user has a few devices: an ordered map stays small.
  std::unordered_map<std::string, std::map<Key, Entry>> users_;
  std::unordered_map<NodeId, std::set<std::pair<std::string, std::string>>>
      by_node_;  // user, device
  struct Claim {
    std::string instance;
    int64_t expires_at = 0;  // ms
  };
  std::unordered_map<NodeId, Claim> claims_;
};

}  // namespace parley
