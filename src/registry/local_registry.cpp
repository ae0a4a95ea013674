#include "registry/local_registry.h"

namespace parley {

void LocalRegistry::add(const std::string& user, NodeId node) {
  std::lock_guard lock(mu_);
  ++sessions_[user][node];
}

void LocalRegistry::remove(const std::string& user, NodeId node) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(user);
  if (it == sessions_.end()) return;
  auto n = it->second.find(node);
  if (n != it->second.end() && --n->second == 0) it->second.erase(n);
  if (it->second.empty()) sessions_.erase(it);
}

std::vector<NodeId> LocalRegistry::nodes_of(const std::string& user) {
  std::lock_guard lock(mu_);
  std::vector<NodeId> out;
  auto it = sessions_.find(user);
  if (it != sessions_.end())
    for (const auto& [node, count] : it->second) out.push_back(node);
  return out;
}

}  // namespace parley
