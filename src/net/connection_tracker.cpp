#include "net/connection_tracker.h"

#include <vector>

#include "net/ws_connection.h"

namespace parley::net {

bool ConnectionTracker::try_open() {
  if (open_.fetch_add(1) >= max_) {
    --open_;
    return false;
  }
  return true;
}

void ConnectionTracker::closed() { --open_; }

void ConnectionTracker::add_ws(uint64_t id, std::weak_ptr<WsConnection> ws) {
  std::lock_guard lock(mu_);
  ws_.emplace(id, std::move(ws));
}

void ConnectionTracker::remove_ws(uint64_t id) {
  std::lock_guard lock(mu_);
  ws_.erase(id);
}

void ConnectionTracker::close_all_ws(uint16_t code, const std::string& reason) {
  std::vector<std::shared_ptr<WsConnection>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, weak] : ws_)
      if (auto t = weak.lock()) live.push_back(std::move(t));
  }
  for (auto& t : live) t->close(code, reason);
}

size_t ConnectionTracker::ws_count() {
  std::lock_guard lock(mu_);
  return ws_.size();
}

void ConnectionTracker::abort_all_ws() {
  std::vector<std::shared_ptr<WsConnection>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, weak] : ws_)
      if (auto t = weak.lock()) live.push_back(std::move(t));
  }
  for (auto& t : live) t->abort();
}

}  // namespace parley::net
