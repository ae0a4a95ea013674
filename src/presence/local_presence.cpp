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

// Called with the user's shard locked: versions of one user follow the order of its
// transitions.
Transition LocalPresence::transition(const std::string& user, bool online, int64_t last_seen) {
  return Transition{user, online, last_seen, version_.fetch_add(1) + 1};
}

void LocalPresence::touch(std::vector<SessionTouch> sessions, int64_t now_ms, Done done) {
  for (const auto& t : sessions)
    if (t.user.empty() || t.session_key.empty()) {
      if (done) done(Error{Errc::bad_request, "presence touch: empty user or session key"});
      return;
    }
  std::vector<Transition> out;
  for (auto& t : sessions) {
    auto& s = shard(t.user);
    std::lock_guard lock(s.mu);
    auto& u = s.users[t.user];
    bool was_online = !u.sessions.empty();
    auto [it, added] = u.sessions.try_emplace(std::move(t.session_key), now_ms);
    if (!added) it->second = std::max(it->second, now_ms);
    if (!was_online) out.push_back(transition(t.user, true, now_ms));
  }
  if (done) done(std::move(out));
}

void LocalPresence::drop(const std::string& user, const std::string& session_key, int64_t now_ms,
                         Done done) {
  if (user.empty() || session_key.empty()) {
    if (done) done(Error{Errc::bad_request, "presence drop: empty user or session key"});
    return;
  }
  std::vector<Transition> out;
  {
    auto& s = shard(user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(user);
    if (it != s.users.end()) {
      auto& u = it->second;
      if (u.sessions.erase(session_key) == 1 && u.sessions.empty()) {
        u.last_seen = now_ms;
        out.push_back(transition(user, false, now_ms));
      }
    }
  }
  if (done) done(std::move(out));
}

void LocalPresence::expire(int64_t now_ms, Done done) {
  std::vector<Transition> out;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.users.begin(); it != s.users.end();) {
      auto& u = it->second;
      if (u.sessions.empty()) {
        // Offline since before this pass: its caller has had its last_seen for a while.
        it = s.users.erase(it);
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
        out.push_back(transition(it->first, false, newest_gone));
      }
      ++it;
    }
  }
  if (done) done(std::move(out));
}

void LocalPresence::status(std::vector<std::string> users, StatusDone done) const {
  for (const auto& user : users)
    if (user.empty()) return done(Error{Errc::bad_request, "presence status: empty user"});
  std::vector<Status> out;
  out.reserve(users.size());
  for (auto& user : users) {
    const auto& s = shard(user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(user);
    if (it == s.users.end()) {
      out.push_back(Status{std::move(user), false, 0, false});
      continue;
    }
    const auto& u = it->second;
    if (u.sessions.empty()) {
      out.push_back(Status{std::move(user), false, u.last_seen, false});
      continue;
    }
    int64_t latest = 0;
    for (const auto& [key, touched] : u.sessions) latest = std::max(latest, touched);
    out.push_back(Status{std::move(user), true, latest, false});
  }
  done(std::move(out));
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
