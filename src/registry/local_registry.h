// Registry for a single node: a counted set in process memory.
#pragma once

#include <boost/container/flat_map.hpp>
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
  // user -> node -> sessions there; a flat map per user: one or a few nodes each.
  std::unordered_map<std::string, boost::container::flat_map<NodeId, uint32_t>> sessions_;
};

}  // namespace parley
