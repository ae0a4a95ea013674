#include "session/session_hub.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <functional>

#include "common/post_batch.h"
#include "proto/frames.h"

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
  {
    auto& s = shard(user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(user);
    if (it != s.users.end()) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(),
                             [&](const Entry& e) { return e.transport->id() == conn_id; }),
              v.end());
      if (v.empty()) s.users.erase(it);
    }
  }
  std::vector<uint64_t> chats;
  {
    std::lock_guard lock(conn_chats_mu_);
    auto it = conn_chats_.find(conn_id);
    if (it == conn_chats_.end()) return;
    chats = std::move(it->second);
    conn_chats_.erase(it);
  }
  for (uint64_t chat : chats) unsubscribe(chat, conn_id);
}

void SessionHub::for_each(
    const std::function<void(const std::string& user, const std::string& device_id,
                             uint64_t conn_id)>& fn) {
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [user, entries] : s.users)
      for (const auto& e : entries) fn(user, e.device_id, e.transport->id());
  }
}

void SessionHub::subscribe(uint64_t chat_id, std::shared_ptr<net::Transport> t) {
  uint64_t conn = t->id();
  {
    std::lock_guard lock(conn_chats_mu_);
    auto& chats = conn_chats_[conn];
    if (std::find(chats.begin(), chats.end(), chat_id) != chats.end()) return;  // already
    chats.push_back(chat_id);
  }
  auto& cs = chat_shards_[chat_id % chat_shards_.size()];
  bool first = false;
  {
    std::lock_guard lock(cs.mu);
    auto& subs = cs.chats[chat_id];
    first = subs.empty();
    subs.push_back(std::move(t));
  }
  // The first session of this node in the chat: the node needs its broadcasts now.
  if (first && bus_) bus_->subscribe_chat(chat_id);
}

void SessionHub::unsubscribe(uint64_t chat_id, uint64_t conn_id) {
  auto& cs = chat_shards_[chat_id % chat_shards_.size()];
  bool last = false;
  {
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(chat_id);
    if (it == cs.chats.end()) return;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& t) { return t->id() == conn_id; }),
            v.end());
    if (v.empty()) {
      cs.chats.erase(it);
      last = true;
    }
  }
  if (last && bus_) bus_->unsubscribe_chat(chat_id);
}

void SessionHub::broadcast(const Envelope& env) {
  std::vector<std::shared_ptr<net::Transport>> subs;
  {
    auto& cs = chat_shards_[env.chat_id % chat_shards_.size()];
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(env.chat_id);
    if (it == cs.chats.end()) return;
    subs = it->second;
  }
  // One task per I/O thread queues the shared frame for that thread's subscribers, so that
  // a large fan-out is spread over the threads instead of running on the caller's.
  std::vector<std::pair<boost::asio::any_io_executor, std::vector<std::shared_ptr<net::Transport>>>>
      by_thread;
  const uint64_t except = env.except.node == self_ ? env.except.conn : 0;
  auto frame = std::make_shared<const std::string>(env.payload);
  for (auto& t : subs) {
    if (except != 0 && t->id() == except) continue;
    auto exec = t->executor();
    auto it =
        std::find_if(by_thread.begin(), by_thread.end(), [&](auto& p) { return p.first == exec; });
    if (it == by_thread.end()) it = by_thread.insert(by_thread.end(), {exec, {}});
    it->second.push_back(std::move(t));
  }
  // Through the commit's PostBatch when there is one: the sender's ack and the pushes of the
  // same commit then reach each I/O thread in one task, in commit (seq) order.
  for (auto& [exec, targets] : by_thread)
    PostBatch::post(exec, [targets = std::move(targets), frame] {
      for (const auto& t : targets) t->send(frame);
    });
}

std::vector<std::shared_ptr<net::Transport>> SessionHub::sessions_of(const std::string& user,
                                                                     SessionRef except) {
  const uint64_t skip = except.node == self_ ? except.conn : 0;
  std::vector<std::shared_ptr<net::Transport>> out;
  auto& s = shard(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return out;
  for (const auto& e : it->second)
    if (skip == 0 || e.transport->id() != skip) out.push_back(e.transport);
  return out;
}

void SessionHub::deliver(const Envelope& env) {
  // A whole frame is shared by every recipient; an update gets each recipient's pts.
  std::shared_ptr<const std::string> shared;
  if (env.payload_kind == Envelope::Payload::frame)
    shared = std::make_shared<const std::string>(env.payload);
  for (const auto& r : env.recipients) {
    // Copy the targets out so that no lock is held while frames are queued.
    auto targets = sessions_of(r.user, env.except);
    if (targets.empty()) continue;
    std::shared_ptr<const std::string> frame = shared;
    if (!frame)
      frame = std::make_shared<const std::string>(env.payload_kind == Envelope::Payload::message
                                                      ? proto::message_push(r.pts, env.payload)
                                                      : proto::receipt_push(r.pts, env.payload));
    for (auto& t : targets) t->send(frame);
  }
}

void SessionHub::handle(const Envelope& env) {
  switch (env.kind) {
    case Envelope::Kind::deliver:
      return deliver(env);
    case Envelope::Kind::broadcast:
      return broadcast(env);
    case Envelope::Kind::presence:
      if (on_presence_) on_presence_(env);
      return;
    case Envelope::Kind::close_device: {
      std::vector<std::shared_ptr<net::Transport>> targets;
      {
        auto& s = shard(env.user);
        std::lock_guard lock(s.mu);
        auto it = s.users.find(env.user);
        if (it == s.users.end()) return;
        for (const auto& e : it->second)
          if (e.device_id == env.device_id) targets.push_back(e.transport);
      }
      for (auto& t : targets) t->close(env.close_code, "token revoked");
      return;
    }
    case Envelope::Kind::subscribe:
      for (auto& t : sessions_of(env.user, {})) subscribe(env.chat_id, t);
      return;
    case Envelope::Kind::unsubscribe:
      for (auto& t : sessions_of(env.user, {})) {
        const uint64_t conn = t->id();
        unsubscribe(env.chat_id, conn);
        std::lock_guard lock(conn_chats_mu_);
        auto it = conn_chats_.find(conn);
        if (it != conn_chats_.end()) std::erase(it->second, env.chat_id);
      }
      return;
  }
}

}  // namespace parley::session
