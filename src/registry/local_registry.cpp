#include "registry/local_registry.h"

#include <fmt/format.h>

#include "common/clock.h"

namespace parley {

LocalRegistry::LocalRegistry(std::chrono::milliseconds ttl, Clock clock)
    : ttl_ms_(ttl.count()), clock_(std::move(clock)) {}

int64_t LocalRegistry::now() const { return clock_ ? clock_() : now_ms(); }

void LocalRegistry::attach(const std::string& user, const std::string& device_id, NodeId node,
                           Done done) {
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    auto& e = users_[user][{device_id, node}];
    if (e.expires_at <= t) e.sessions = 0;  // an expired entry (its node had died) starts over
    ++e.sessions;
    e.expires_at = t + ttl_ms_;
    by_node_[node].emplace(user, device_id);
  }
  if (done) done(ok_status());
}

void LocalRegistry::detach(const std::string& user, const std::string& device_id, NodeId node,
                           Done done) {
  {
    std::lock_guard lock(mu_);
    auto u = users_.find(user);
    if (u != users_.end()) {
      auto e = u->second.find({device_id, node});
      if (e != u->second.end() && --e->second.sessions == 0) {
        u->second.erase(e);
        by_node_[node].erase({user, device_id});
        if (u->second.empty()) users_.erase(u);
      }
    }
  }
  if (done) done(ok_status());
}

void LocalRegistry::locate(std::vector<std::string> users,
                           std::function<void(Result<std::vector<UserLocation>>)> done) {
  std::vector<UserLocation> out;
  out.reserve(users.size());
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    for (auto& user : users) {
      UserLocation loc;
      if (auto u = users_.find(user); u != users_.end())
        for (const auto& [key, e] : u->second)
          if (e.expires_at > t) loc.devices.push_back(DeviceLocation{key.first, key.second});
      loc.user = std::move(user);
      out.push_back(std::move(loc));
    }
  }
  done(std::move(out));
}

void LocalRegistry::refresh(NodeId node, Done done) {
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    auto n = by_node_.find(node);
    if (n != by_node_.end()) {
      for (auto it = n->second.begin(); it != n->second.end();) {
        bool keep = false;
        if (auto u = users_.find(it->first); u != users_.end()) {
          if (auto e = u->second.find({it->second, node}); e != u->second.end()) {
            if (e->second.expires_at > t) {
              e->second.expires_at = t + ttl_ms_;
              keep = true;
            } else {  // expired before this refresh came: gone, as it would be in Redis
              u->second.erase(e);
              if (u->second.empty()) users_.erase(u);
            }
          }
        }
        it = keep ? std::next(it) : n->second.erase(it);
      }
    }
  }
  if (done) done(ok_status());
}

void LocalRegistry::reassert(NodeId node, std::vector<SessionEntry> live, Done done) {
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    std::set<std::pair<std::string, std::string>> wanted;  // user, device
    for (auto& e : live) {
      if (e.sessions == 0) continue;
      auto& entry = users_[e.user][{e.device_id, node}];
      entry.sessions = e.sessions;
      entry.expires_at = t + ttl_ms_;
      wanted.emplace(std::move(e.user), std::move(e.device_id));
    }
    // The node's entries that are not live any more.
    for (const auto& [user, device] : by_node_[node]) {
      if (wanted.contains({user, device})) continue;
      auto u = users_.find(user);
      if (u == users_.end()) continue;
      u->second.erase({device, node});
      if (u->second.empty()) users_.erase(u);
    }
    if (wanted.empty())
      by_node_.erase(node);
    else
      by_node_[node] = std::move(wanted);
  }
  if (done) done(ok_status());
}

void LocalRegistry::clear_node(NodeId node, Done done) {
  {
    std::lock_guard lock(mu_);
    auto n = by_node_.find(node);
    if (n != by_node_.end()) {
      for (const auto& [user, device] : n->second) {
        auto u = users_.find(user);
        if (u == users_.end()) continue;
        u->second.erase({device, node});
        if (u->second.empty()) users_.erase(u);
      }
      by_node_.erase(n);
    }
  }
  if (done) done(ok_status());
}

void LocalRegistry::claim_node(NodeId node, const std::string& instance, Done done) {
  Status result = ok_status();
  {
    std::lock_guard lock(mu_);
    const int64_t t = now();
    auto& c = claims_[node];
    if (c.expires_at > t && c.instance != instance)
      result = Error{Errc::conflict,
                     fmt::format("node id {} is held by another node ({}) for up to {} s more",
                                 node, c.instance, (c.expires_at - t + 999) / 1000)};
    else
      c = Claim{instance, t + ttl_ms_};
  }
  if (done) done(result);
}

void LocalRegistry::release_node(NodeId node, const std::string& instance, Done done) {
  {
    std::lock_guard lock(mu_);
    auto c = claims_.find(node);
    if (c != claims_.end() && c->second.instance == instance) claims_.erase(c);
  }
  if (done) done(ok_status());
}

}  // namespace parley
