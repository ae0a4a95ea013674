#include "session/session_hub.h"

#include <algorithm>
#include <functional>

namespace parley::session {

SessionHub::Shard& SessionHub::shard(const std::string& user) {
  return shards_[std::hash<std::string>{}(user) % shards_.size()];
}

void SessionHub::add(const std::string& user, const std::string& device_id,
                     std::shared_ptr<net::Transport> t) {
  auto& s = shard(user);
  std::lock_guard lock(s.mu);
  s.users[user].push_back(Entry{device_id, std::move(t)});
}

void SessionHub::remove(const std::string& user, uint64_t conn_id) {
  auto& s = shard(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(),
                         [&](const Entry& e) { return e.transport->id() == conn_id; }),
          v.end());
  if (v.empty()) s.users.erase(it);
}

void SessionHub::handle(const Envelope& env) {
  // Copy the targets out so that no lock is held while frames are queued.
  std::vector<std::shared_ptr<net::Transport>> targets;
  {
    auto& s = shard(env.user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(env.user);
    if (it == s.users.end()) return;
    for (const auto& e : it->second) {
      if (env.kind == Envelope::Kind::deliver && e.transport->id() != env.except_conn)
        targets.push_back(e.transport);
      if (env.kind == Envelope::Kind::close_device && e.device_id == env.device_id)
        targets.push_back(e.transport);
    }
  }
  for (auto& t : targets) {
    if (env.kind == Envelope::Kind::deliver)
      t->send(env.frame);
    else
      t->close(env.close_code, "token revoked");
  }
}

}  // namespace parley::session
