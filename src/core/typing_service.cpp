#include "core/typing_service.h"

#include <fmt/format.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace parley::core {

TypingService::TypingService(store::Store& store, Router& router, const TypingConfig& config)
    : store_(store), router_(router), config_(config) {}

TypingService::~TypingService() { stop(); }

void TypingService::start(boost::asio::any_io_executor executor) {
  std::lock_guard lock(mu_);
  stopped_ = false;
  timer_ = std::make_unique<boost::asio::steady_timer>(executor);
  arm();
}

void TypingService::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  if (timer_) timer_->cancel();
}

// Sweeps a few times per TTL: a stop arrives at most a quarter TTL late.
void TypingService::arm() {
  if (stopped_ || !timer_) return;
  timer_->expires_after(std::chrono::milliseconds(std::max(50u, config_.ttl_ms / 4)));
  timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    expire(Clock::now());
    std::lock_guard lock(mu_);
    arm();
  });
}

void TypingService::typing(const std::string& user, uint64_t conn_id,
                           const proto::TypingRequest& req,
                           std::function<void(Result<std::string>)> done) {
  store_.audience(
      user, req.chat_id, req.with,
      [this, user, conn_id, start = req.start, done](Result<store::Audience> aud) {
        if (!aud) return done(aud.error());
        Key key{user, aud->chat_id, aud->chat_id ? "" : aud->members.back()};
        auto now = Clock::now();
        bool forwarded = false;
        Entry snapshot;
        {
          std::lock_guard lock(mu_);
          auto it = entries_.find(key);
          if (start) {
            if (it == entries_.end()) {
              it = entries_.emplace(key, Entry{std::move(aud.value()), conn_id, {}, {}}).first;
              forwarded = true;
            } else {
              it->second.audience = std::move(aud.value());
              forwarded = now - it->second.last_forward >=
                          std::chrono::milliseconds(config_.min_interval_ms);
            }
            it->second.conn_id = conn_id;
            it->second.expires = now + std::chrono::milliseconds(config_.ttl_ms);
            if (forwarded) it->second.last_forward = now;
            snapshot = it->second;
          } else if (it != entries_.end()) {
            snapshot = std::move(it->second);
            snapshot.audience = std::move(aud.value());
            entries_.erase(it);
            forwarded = true;
          }
        }
        if (forwarded) forward(key, snapshot, start, conn_id);
        done(boost::json::serialize(boost::json::object{{"forwarded", forwarded}}));
      });
}

void TypingService::forward(const Key& key, const Entry& e, bool start, uint64_t except_conn) {
  std::string frame = proto::typing_push(key.chat_id, key.user, start, config_.ttl_ms);
  if (e.audience.large) return router_.broadcast(key.chat_id, std::move(frame), except_conn);
  // Every member's sessions (the typist's other devices too) but the connection it typed on.
  std::vector<Recipient> members;
  members.reserve(e.audience.members.size());
  for (const auto& member : e.audience.members) members.push_back(Recipient{member, 0});
  router_.deliver(Envelope::Payload::frame, std::move(frame), std::move(members), except_conn);
}

void TypingService::message_sent(const store::Message& m) {
  std::vector<std::pair<Key, Entry>> stopped;
  {
    std::lock_guard lock(mu_);
    for (Key key : {Key{m.sender, m.chat_id, ""}, Key{m.sender, 0, m.to}}) {
      if (key.chat_id == 0 && key.peer.empty()) continue;
      auto it = entries_.find(key);
      if (it == entries_.end()) continue;
      stopped.emplace_back(it->first, std::move(it->second));
      entries_.erase(it);
    }
  }
  for (auto& [key, e] : stopped) forward(key, e, false, 0);
}

void TypingService::connection_closed(uint64_t conn_id) {
  std::vector<std::pair<Key, Entry>> stopped;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.conn_id == conn_id) {
        stopped.emplace_back(it->first, std::move(it->second));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [key, e] : stopped) forward(key, e, false, 0);
}

void TypingService::expire(Clock::time_point now) {
  std::vector<std::pair<Key, Entry>> stopped;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.expires <= now) {
        stopped.emplace_back(it->first, std::move(it->second));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [key, e] : stopped) forward(key, e, false, 0);
}

size_t TypingService::active() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace parley::core
