// Registry for a single node: a counted set in process memory.
#pragma once

#include <mutex>
#include <unordered_map>

#include "registry/registry.h"

namespace parley {

class LocalRegistry final : public Registry {
 public:
  void add(const std::string& user, NodeId node) override;
  void remove(const std::string& user, NodeId node) override;
  std::vector<NodeId> nodes_of(const std::string& user) override;

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::unordered_map<NodeId, uint32_t>> sessions_;
};

}  // namespace parley
