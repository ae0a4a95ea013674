// This node's live, authenticated sessions by user: where envelopes from the Bus become
// frames queued on connections. Sharded by user so that fan-out from many threads rarely
// contends. It also keeps the large-group subscriptions of its sessions, and tells the Bus
// which chats this node needs broadcasts of.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "net/transport.h"
#include "session/ordered_stream.h"

namespace parley::session {

// Reads a large group's messages after `after_seq` as broadcast frames, as `user` (a member
// subscribed on this node) may see them: what a chat's stream reads to fill a gap.
using ChatReader =
    std::function<void(const std::string& user, uint64_t chat_id, uint64_t after_seq,
                       uint32_t limit, std::function<void(Result<CatchUpPage>)> done)>;
// The chat's last committed seq, read as `user`.
using ChatPosition = std::function<void(const std::string& user, uint64_t chat_id,
                                        std::function<void(Result<uint64_t>)> done)>;

class SessionHub {
 public:
  // `bus`: told when this node starts or stops needing a chat's broadcasts (may be null).
  SessionHub(NodeId self, Bus* bus) : self_(self), bus_(bus) {}
  // Large groups' broadcasts are put in seq order per chat (ordered_stream.h) on `executor`,
  // from the chat's position when the node's first subscriber came (`position`), reading
  // gaps with `read`, and reading what was published before the Bus confirmed the node's
  // subscription (up to the position once it did); without this they go out in the order
  // they arrive, and those published before the confirmation are missed.
  void order_chats(boost::asio::any_io_executor executor, StreamOptions options, ChatReader read,
                   ChatPosition position) {
    chat_executor_ = std::move(executor);
    chat_options_ = options;
    read_chat_ = std::move(read);
    chat_position_ = std::move(position);
  }

  // `stream` orders what the session receives of the user's log (ordered_stream.h).
  void add(const std::string& user, const std::string& device_id, std::shared_ptr<net::Transport> t,
           std::shared_ptr<OrderedStream> stream);
  void remove(const std::string& user, uint64_t conn_id);  // also drops its chat subscriptions
  // Adds a live session of `user` to a chat's broadcast list (large groups). `ready` (may be
  // null) runs once the chat's stream on this node knows its position (at once if it did):
  // from then on, whatever of the chat a read started now does not return is pushed to the
  // session. A session's auth answer waits for it (chat_session.cpp), so the device's sync
  // and its pushes leave no gap between them. Runs on any thread, also inline.
  void subscribe(uint64_t chat_id, const std::string& user, std::shared_ptr<net::Transport> t,
                 std::function<void()> ready = nullptr);
  // Calls fn(user, device_id, conn_id) for every live session (the presence refresh). Holds
  // one shard's lock at a time: fn must not call back into the hub.
  void for_each(const std::function<void(const std::string& user, const std::string& device_id,
                                         uint64_t conn_id)>& fn);
  // What an envelope addressed to this node asks for (bus/envelope.h). Presence envelopes
  // are not the hub's: they go to the presence hook.
  void handle(const Envelope& env);
  void set_on_presence(std::function<void(const Envelope&)> fn) { on_presence_ = std::move(fn); }

 private:
  struct Entry {
    std::string device_id;
    std::shared_ptr<net::Transport> transport;
    std::shared_ptr<OrderedStream> stream;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<Entry>> users;
  };
  Shard& shard(const std::string& user);
  struct Target {
    std::shared_ptr<net::Transport> transport;
    std::shared_ptr<OrderedStream> stream;
  };
  // The user's sessions on this node but `except`.
  std::vector<Target> sessions_of(const std::string& user, SessionRef except);
  void deliver(const Envelope& env);
  void unsubscribe(uint64_t chat_id, uint64_t conn_id);
  void broadcast(const Envelope& env);
  // Queues `frame` on every subscriber of the chat on this node but connection `except`.
  void fan_out(uint64_t chat_id, std::shared_ptr<const std::string> frame, uint64_t except);
  std::shared_ptr<OrderedStream> make_chat_stream(uint64_t chat_id);
  // What the chat's stream does once the Bus confirmed the node's subscription.
  Bus::Subscribed on_subscribed(const std::shared_ptr<OrderedStream>& order, uint64_t chat_id,
                                const std::string& user);
  // Whether a chat's stream knows its position yet, and the `ready` of subscribe() waiting
  // for it. Shared with the position read's callback, which may outlive the hub's entry.
  struct StreamStart {
    std::mutex mu;
    bool started = false;
    std::vector<std::function<void()>> waiting;
    void when_started(std::function<void()> ready);  // at once if it has
    void start();                                    // runs the waiting (idempotent)
  };
  void start_chat_stream(const std::shared_ptr<OrderedStream>& stream,
                         const std::shared_ptr<StreamStart>& started, uint64_t chat_id,
                         const std::string& user);

  const NodeId self_;
  Bus* const bus_;
  std::function<void(const Envelope&)> on_presence_;
  std::array<Shard, 16> shards_;

  // Large-group subscriptions: chat -> sessions (and their users, for catch-up reads) and
  // the chat's order on this node, and per session its chats (to clean up).
  struct ChatSubs {
    std::vector<std::shared_ptr<net::Transport>> sessions;
    std::vector<std::string> users;  // parallel to sessions
    std::shared_ptr<OrderedStream> order;
    std::shared_ptr<StreamStart> started;  // with `order`
  };
  struct ChatShard {
    std::mutex mu;
    std::unordered_map<uint64_t, ChatSubs> chats;
  };
  boost::asio::any_io_executor chat_executor_;
  StreamOptions chat_options_;
  ChatReader read_chat_;
  ChatPosition chat_position_;
  std::array<ChatShard, 16> chat_shards_;
  std::mutex conn_chats_mu_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> conn_chats_;
};

}  // namespace parley::session
