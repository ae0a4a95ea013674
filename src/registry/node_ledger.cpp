#include "registry/node_ledger.h"

namespace parley {

void NodeLedger::queue(std::function<void()> call) { queued_.push_back(std::move(call)); }

void NodeLedger::issue() {
  std::unique_lock lock(mu_);
  if (issuing_) return;  // that thread issues what was queued here too, in order
  issuing_ = true;
  while (!queued_.empty()) {
    auto call = std::move(queued_.front());
    queued_.pop_front();
    lock.unlock();
    call();
    lock.lock();
  }
  issuing_ = false;
}

void NodeLedger::attach(const std::string& user, const std::string& device_id, NodeId node,
                        Done done) {
  if (node != node_) return registry_.attach(user, device_id, node, std::move(done));
  {
    std::lock_guard lock(mu_);
    ++sessions_[{user, device_id}];
    queue([this, user, device_id, done = std::move(done)]() mutable {
      registry_.attach(user, device_id, node_, std::move(done));
    });
  }
  issue();
}

void NodeLedger::detach(const std::string& user, const std::string& device_id, NodeId node,
                        Done done) {
  if (node != node_) return registry_.detach(user, device_id, node, std::move(done));
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find({user, device_id});
    if (it != sessions_.end() && --it->second == 0) sessions_.erase(it);
    queue([this, user, device_id, done = std::move(done)]() mutable {
      registry_.detach(user, device_id, node_, std::move(done));
    });
  }
  issue();
}

std::vector<SessionEntry> NodeLedger::snapshot() const {
  std::vector<SessionEntry> out;
  out.reserve(sessions_.size());
  for (const auto& [key, count] : sessions_)
    out.push_back(SessionEntry{key.first, key.second, count});
  return out;
}

void NodeLedger::reassert(Done done) {
  {
    std::lock_guard lock(mu_);
    queue([this, live = snapshot(), done = std::move(done)]() mutable {
      registry_.reassert(node_, std::move(live), std::move(done));
    });
  }
  issue();
}

void NodeLedger::reassert(NodeId node, std::vector<SessionEntry> live, Done done) {
  if (node != node_) return registry_.reassert(node, std::move(live), std::move(done));
  reassert(std::move(done));
}

void NodeLedger::clear_node(NodeId node, Done done) {
  if (node != node_) return registry_.clear_node(node, std::move(done));
  {
    std::lock_guard lock(mu_);
    queue(
        [this, done = std::move(done)]() mutable { registry_.clear_node(node_, std::move(done)); });
  }
  issue();
}

std::vector<SessionEntry> NodeLedger::entries() {
  std::lock_guard lock(mu_);
  return snapshot();
}

}  // namespace parley
