// Routes frames to a user's live sessions wherever they are: the Registry says which
// nodes, the Bus carries the frame there.
#pragma once

#include <memory>
#include <string>

#include "bus/bus.h"
#include "registry/registry.h"

namespace parley::core {

class Router {
 public:
  Router(Registry& registry, Bus& bus) : registry_(registry), bus_(bus) {}

  void deliver(const std::string& user, std::shared_ptr<const std::string> frame,
               uint64_t except_conn);
  void close_device(const std::string& user, const std::string& device_id, uint16_t code);
  // To every session subscribed to the chat, wherever it is.
  void broadcast(uint64_t chat_id, std::shared_ptr<const std::string> frame, uint64_t except_conn);
  // The user's live sessions start or stop receiving the chat's broadcasts.
  void subscribe(const std::string& user, uint64_t chat_id, bool on);

 private:
  Registry& registry_;
  Bus& bus_;
};

}  // namespace parley::core
