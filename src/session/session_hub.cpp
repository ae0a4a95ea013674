#include "session/session_hub.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <functional>

#include <fmt/format.h>

#include "common/post_batch.h"
#include "proto/frames.h"

namespace parley::session {

SessionHub::Shard& SessionHub::shard(const std::string& user) {
  return shards_[std::hash<std::string>{}(user) % shards_.size()];
}

void SessionHub::add(const std::string& user, const std::string& device_id,
                     std::shared_ptr<net::Transport> t, std::shared_ptr<OrderedStream> stream) {
  auto& s = shard(user);
  std::lock_guard lock(s.mu);
  s.users[user].push_back(Entry{device_id, std::move(t), std::move(stream)});
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

void SessionHub::StreamStart::when_started(std::function<void()> ready) {
  {
    std::lock_guard lock(mu);
    if (!started) return waiting.push_back(std::move(ready));
  }
  ready();
}

void SessionHub::StreamStart::start() {
  std::vector<std::function<void()>> run;
  {
    std::lock_guard lock(mu);
    started = true;
    run = std::move(waiting);
    waiting.clear();
  }
  for (auto& ready : run) ready();
}

void SessionHub::subscribe(uint64_t chat_id, const std::string& user,
                           std::shared_ptr<net::Transport> t, std::function<void()> ready) {
  uint64_t conn = t->id();
  bool already = false;
  {
    std::lock_guard lock(conn_chats_mu_);
    auto& chats = conn_chats_[conn];
    already = std::find(chats.begin(), chats.end(), chat_id) != chats.end();
    if (!already) chats.push_back(chat_id);
  }
  auto& cs = chat_shards_[chat_id % chat_shards_.size()];
  bool first = false;
  std::shared_ptr<OrderedStream> order;
  std::shared_ptr<StreamStart> started;
  {
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(chat_id);
    if (!already) {
      if (it == cs.chats.end()) it = cs.chats.emplace(chat_id, ChatSubs{}).first;
      auto& subs = it->second;
      first = subs.sessions.empty();
      subs.sessions.push_back(std::move(t));
      subs.users.push_back(user);
      if (first && read_chat_) {
        order = subs.order = make_chat_stream(chat_id);
        subs.started = std::make_shared<StreamStart>();
      }
    }
    if (it != cs.chats.end()) started = it->second.started;
  }
  if (ready) {
    if (started)
      started->when_started(std::move(ready));
    else
      ready();  // no order, so no position to wait for
  }
  // Outside the shard's lock: the stream's sink takes it.
  if (order) start_chat_stream(order, started, chat_id, user);
  // The first session of this node in the chat: the node needs its broadcasts now.
  if (first && bus_) bus_->subscribe_chat(chat_id, on_subscribed(order, chat_id, user));
}

// The Bus confirms the subscription later (RedisBus: once Redis answered, without holding
// this thread), and what was published to the chat until then never reaches this node. So
// once confirmed, the chat's position is read again and the stream reads from the store
// whatever lies between the position it started from and that one: a message published in
// the window reaches the subscribers as a gap's catch-up would bring it, not at the chat's
// next message (or never, for the last one).
Bus::Subscribed SessionHub::on_subscribed(const std::shared_ptr<OrderedStream>& order,
                                          uint64_t chat_id, const std::string& user) {
  if (!order || !chat_position_) return nullptr;
  return [weak = std::weak_ptr<OrderedStream>(order), position = chat_position_, chat_id,
          user](Status) {
    // Also when not subscribed yet (Redis down): the store may still answer.
    if (weak.expired()) return;  // the chat's last subscriber left meanwhile
    position(user, chat_id, [weak](Result<uint64_t> seq) {
      if (auto stream = weak.lock(); stream && seq) stream->expect(seq.value());
    });
  };
}

std::shared_ptr<OrderedStream> SessionHub::make_chat_stream(uint64_t chat_id) {
  auto read = [this, chat_id](uint64_t after, uint32_t limit,
                              std::function<void(Result<CatchUpPage>)> done) {
    // Read as one of the chat's subscribers on this node: a member, who may see it.
    std::string reader;
    {
      auto& cs = chat_shards_[chat_id % chat_shards_.size()];
      std::lock_guard lock(cs.mu);
      auto it = cs.chats.find(chat_id);
      if (it != cs.chats.end() && !it->second.users.empty()) reader = it->second.users.front();
    }
    if (reader.empty()) return done(Error{Errc::not_found, "no subscriber left"});
    read_chat_(reader, chat_id, after, limit, std::move(done));
  };
  auto sink = [this, chat_id](std::shared_ptr<const std::string> frame, net::FrameKind,
                              uint64_t except) { fan_out(chat_id, std::move(frame), except); };
  StreamOptions options = chat_options_;
  options.run_inline = true;  // no hop: in-order messages keep the commit's order
  return std::make_shared<OrderedStream>(chat_executor_, fmt::format("chat {}", chat_id), options,
                                         std::move(read), std::move(sink));
}

void SessionHub::start_chat_stream(const std::shared_ptr<OrderedStream>& stream,
                                   const std::shared_ptr<StreamStart>& started, uint64_t chat_id,
                                   const std::string& user) {
  // Messages up to the chat's position now are in the subscribers' sync; what arrives
  // meanwhile waits. Without a position, the first message that arrives sets it.
  if (!chat_position_) {
    stream->start(std::nullopt, nullptr);
    return started->start();
  }
  chat_position_(user, chat_id, [stream, started](Result<uint64_t> seq) {
    stream->start(seq ? std::optional<uint64_t>(seq.value()) : std::nullopt, nullptr);
    started->start();
  });
}

void SessionHub::unsubscribe(uint64_t chat_id, uint64_t conn_id) {
  auto& cs = chat_shards_[chat_id % chat_shards_.size()];
  bool last = false;
  std::shared_ptr<OrderedStream> order;
  std::shared_ptr<StreamStart> started;
  {
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(chat_id);
    if (it == cs.chats.end()) return;
    auto& subs = it->second;
    for (size_t i = 0; i < subs.sessions.size();) {
      if (subs.sessions[i]->id() == conn_id) {
        subs.sessions.erase(subs.sessions.begin() + static_cast<std::ptrdiff_t>(i));
        subs.users.erase(subs.users.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    if (subs.sessions.empty()) {
      order = std::move(subs.order);
      started = std::move(subs.started);
      cs.chats.erase(it);
      last = true;
    }
  }
  if (started) started->start();  // nothing left to wait for
  if (order) order->stop();
  if (last && bus_) bus_->unsubscribe_chat(chat_id);
}

void SessionHub::broadcast(const Envelope& env) {
  std::shared_ptr<OrderedStream> order;
  {
    auto& cs = chat_shards_[env.chat_id % chat_shards_.size()];
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(env.chat_id);
    if (it == cs.chats.end()) return;
    order = it->second.order;
  }
  const uint64_t except = env.except.node == self_ ? env.except.conn : 0;
  auto frame = std::make_shared<const std::string>(env.payload);
  // A message (seq) goes through the chat's order; a receipt or typing signal (no seq) goes
  // through it at once, behind what it sent before.
  if (order) return order->push(env.seq, std::move(frame), except);
  fan_out(env.chat_id, std::move(frame), except);
}

void SessionHub::fan_out(uint64_t chat_id, std::shared_ptr<const std::string> frame,
                         uint64_t except) {
  std::vector<std::shared_ptr<net::Transport>> subs;
  {
    auto& cs = chat_shards_[chat_id % chat_shards_.size()];
    std::lock_guard lock(cs.mu);
    auto it = cs.chats.find(chat_id);
    if (it == cs.chats.end()) return;
    subs = it->second.sessions;
  }
  // One task per I/O thread queues the shared frame for that thread's subscribers, so that
  // a large fan-out is spread over the threads instead of running on the caller's.
  std::vector<std::pair<boost::asio::any_io_executor, std::vector<std::shared_ptr<net::Transport>>>>
      by_thread;
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

std::vector<SessionHub::Target> SessionHub::sessions_of(const std::string& user,
                                                        SessionRef except) {
  const uint64_t skip = except.node == self_ ? except.conn : 0;
  std::vector<Target> out;
  auto& s = shard(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return out;
  for (const auto& e : it->second)
    if (skip == 0 || e.transport->id() != skip) out.push_back(Target{e.transport, e.stream});
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
    if (shared) {
      for (auto& e : targets) e.transport->send(shared);
      continue;
    }
    // An update of the recipient's log: each device's stream sends it in pts order.
    auto frame = std::make_shared<const std::string>(env.payload_kind == Envelope::Payload::message
                                                         ? proto::message_push(r.pts, env.payload)
                                                         : proto::receipt_push(r.pts, env.payload));
    for (auto& e : targets) e.stream->push(r.pts, frame);
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
      for (auto& e : sessions_of(env.user, {})) subscribe(env.chat_id, env.user, e.transport);
      return;
    case Envelope::Kind::unsubscribe:
      for (auto& e : sessions_of(env.user, {})) {
        const uint64_t conn = e.transport->id();
        unsubscribe(env.chat_id, conn);
        std::lock_guard lock(conn_chats_mu_);
        auto it = conn_chats_.find(conn);
        if (it != conn_chats_.end()) std::erase(it->second, env.chat_id);
      }
      return;
  }
}

}  // namespace parley::session
