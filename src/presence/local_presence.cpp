#include "presence/local_presence.h"

#include <algorithm>

namespace parley::presence {

LocalPresence::LocalPresence(std::chrono::milliseconds ttl) : ttl_ms_(ttl.count()) {}

LocalPresence::Shard& LocalPresence::shard(const std::string& user) {
  return shards_[std::hash<std::string>{}(user) % shards_.size()];
}

const LocalPresence::Shard& LocalPresence::shard(const std::string& user) const {
  return shards_[std::hash<std::string>{}(user) % shards_.size()];
}

void LocalPresence::set_on_change(std::function<void(const Status&)> fn) {
  auto cb = fn ? std::make_shared<const Callback>(std::move(fn)) : nullptr;
  std::lock_guard lock(on_change_mu_);
  on_change_ = std::move(cb);
}

void LocalPresence::queue(Shard& s, User& u, Status st) {
  ++u.unreported;
  s.reports.push_back(std::move(st));
}

// Transitions leave in the order they were queued: a thread that finds another one already
// reporting leaves its transition to it instead of racing it, so that a user's "offline"
// can never overtake the "online" that came before it.
void LocalPresence::report(Shard& s, std::unique_lock<std::mutex>& lock) {
  if (s.reporting) return;
  s.reporting = true;
  while (!s.reports.empty()) {
    Status st = std::move(s.reports.front());
    s.reports.pop_front();
    lock.unlock();
    std::shared_ptr<const Callback> cb;
    {
      std::lock_guard cb_lock(on_change_mu_);
      cb = on_change_;
    }
    if (cb) (*cb)(st);
    lock.lock();
    auto it = s.users.find(st.user);
    if (it != s.users.end() && it->second.unreported > 0) --it->second.unreported;
  }
  s.reporting = false;
}

void LocalPresence::touch(const std::string& user, const std::string& session_key, int64_t now_ms) {
  auto& s = shard(user);
  std::unique_lock lock(s.mu);
  auto& u = s.users[user];
  bool was_online = !u.sessions.empty();
  auto [it, added] = u.sessions.try_emplace(session_key, now_ms);
  if (!added) it->second = std::max(it->second, now_ms);
  if (was_online) return;
  queue(s, u, Status{user, true, now_ms, false});
  report(s, lock);
}

void LocalPresence::drop(const std::string& user, const std::string& session_key, int64_t now_ms) {
  auto& s = shard(user);
  std::unique_lock lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return;
  auto& u = it->second;
  if (u.sessions.erase(session_key) == 0 || !u.sessions.empty()) return;
  u.last_seen = now_ms;
  queue(s, u, Status{user, false, now_ms, false});
  report(s, lock);
}

Status LocalPresence::status(const std::string& user) const {
  const auto& s = shard(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return Status{user, false, 0, false};
  const auto& u = it->second;
  if (u.sessions.empty()) return Status{user, false, u.last_seen, false};
  int64_t latest = 0;
  for (const auto& [key, touched] : u.sessions) latest = std::max(latest, touched);
  return Status{user, true, latest, false};
}

void LocalPresence::expire(int64_t now_ms) {
  for (auto& s : shards_) {
    std::unique_lock lock(s.mu);
    for (auto it = s.users.begin(); it != s.users.end();) {
      auto& u = it->second;
      if (u.sessions.empty()) {
        // Offline and its last_seen reported: the application has it now.
        if (u.unreported == 0) {
          it = s.users.erase(it);
          continue;
        }
        ++it;
        continue;
      }
      int64_t newest_gone = 0;
      for (auto s_it = u.sessions.begin(); s_it != u.sessions.end();) {
        if (now_ms - s_it->second <= ttl_ms_) {
          ++s_it;
          continue;
        }
        newest_gone = std::max(newest_gone, s_it->second);
        s_it = u.sessions.erase(s_it);
      }
      if (u.sessions.empty()) {
        // Last seen when its node last refreshed it, not when we noticed it was gone.
        u.last_seen = newest_gone;
        queue(s, u, Status{it->first, false, newest_gone, false});
      }
      ++it;
    }
    report(s, lock);
  }
}

size_t LocalPresence::tracked_users() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.users.size();
  }
  return n;
}

}  // namespace parley::presence
