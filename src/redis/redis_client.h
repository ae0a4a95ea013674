// An asynchronous Redis client on hiredis, driven by Boost.Asio on a thread of its own, and
// client-side sharding over several Redis servers (RedisShards). The Registry, Bus and
// Presence backends for clusters are built on it.
//
// Threads. A client runs on a RedisLoop: one io_context and its thread, shared by the clients
// of one RedisShards (a client makes its own when given none). Every call may be made from
// any thread and returns at once: it posts the work to the loop. Every callback runs on the
// loop thread, never inline in the call; callbacks must not block, and must not destroy the
// client. Calls made from one thread are sent in the order they were made, and the replies of
// one connection come in the order of its commands.
//
// Connections. A client has one connection for commands, connected at construction, and one
// for Pub/Sub, connected at the first subscribe(). Each one is (re)connected by itself:
// - connect_timeout bounds a connection attempt; after a failure or a drop the next attempt
//   waits an exponential backoff (reconnect_min doubling up to reconnect_max) with jitter, so
//   a Redis that comes back is used again without a restart;
// - a command is sent at once when a connection is up or being made; while it is down
//   (waiting to reconnect) the command fails at once with `unavailable` and the reason: the
//   client never queues work for a server that is not there;
// - a command that has no reply within command_timeout takes its connection down (a reply
//   cannot be skipped): every command pending on it completes with `unavailable`, as when
//   the connection drops;
// - a new connection sends AUTH/SELECT when configured, then PING: it counts as up (health)
//   only when the PING answered, which also tells Redis from a server that is not Redis;
// - an idle connection is asked every `heartbeat`, so that one that stopped answering is
//   taken down by the command timeout, as above;
// - the Pub/Sub connection subscribes again to every channel and pattern on reconnect;
// - a server may have lost its data while the connection was down (restarted empty): the
//   reconnect handler (set_reconnect_handler; RedisShards::on_reconnected) is where its users
//   write again what they keep there;
// - a host name is resolved on the loop thread (hiredis resolves synchronously): give
//   addresses, or names that resolve locally.
//
// Replies. A Reply is a value copied out of hiredis's redisReply. A Redis error reply (the
// command ran and failed, e.g. WRONGTYPE) is a Reply of type error; the Result is an Error
// only when no reply came (`unavailable`, with the server's address and the reason).
// checked() turns error replies into Errors where that is simpler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/errc.h"
#include "common/hash.h"
#include "common/health.h"

namespace parley::redis {

struct Reply {
  enum class Type : uint8_t { nil, status, error, integer, string, array };
  Type type = Type::nil;
  int64_t integer = 0;          // integer
  std::string str;              // status, error, string
  std::vector<Reply> elements;  // array

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  bool operator==(const Reply&) const = default;
  // For messages and tests: "(error) ERR ...", "(integer) 3", "\"text\"", "[...]".
  std::string describe() const;
};

// An error reply as an Error (Errc::internal, "redis <address>: <message>"); others as they are.
Result<Reply> checked(Result<Reply> reply, std::string_view address = {});

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when not empty
  int db = 0;            // SELECT when not 0
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // A reconnect waits a delay drawn from [d * (1 - jitter), d] for the backoff's d.
  double jitter = 0.5;
  std::chrono::seconds keepalive{10};  // TCP keepalive on both connections (0: off)
  // A connection idle this long is asked (PING; SUBSCRIBE again on the Pub/Sub connection), so
  // that a server that stopped answering (hung, or a network gone quiet) is noticed within
  // heartbeat + command_timeout and the connection made again (0: off).
  std::chrono::milliseconds heartbeat{1000};
};

// "host:port" (port 6379 when left out) into options, the rest copied from `base`.
Result<RedisOptions> parse_address(std::string_view address, const RedisOptions& base = {});

// A Lua script, sent with EVALSHA once the connection has it, EVAL before (which loads it).
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lowercase hex, as Redis names it

 private:
  std::string source_;
  std::string sha1_;
};

// One io_context and its thread, for one or more clients.
class RedisLoop;
std::shared_ptr<RedisLoop> make_redis_loop();

class RedisClient {
 public:
  using ReplyCallback = std::function<void(Result<Reply>)>;
  using BatchCallback = std::function<void(Result<std::vector<Reply>>)>;
  using StatusCallback = std::function<void(Status)>;
  // A Pub/Sub message: its channel, the pattern that matched (empty for SUBSCRIBE), payload.
  using MessageHandler = std::function<void(const std::string& channel, const std::string& pattern,
                                            const std::string& payload)>;

  // Starts connecting at once.
  explicit RedisClient(RedisOptions options, std::shared_ptr<RedisLoop> loop = nullptr);
  // Closes both connections: pending callbacks complete with `unavailable` before it returns.
  // Never from the client's own callbacks.
  ~RedisClient();
  // The same, keeping the object: commands sent from now on complete at once with
  // `unavailable`, and the client does not connect again. Not from the loop thread.
  void close();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command, e.g. {"HSET", key, field, value}. Arguments are binary-safe.
  void command(std::vector<std::string> args, ReplyCallback done);
  // Several commands sent together (one round trip); `done` gets every reply in order, or
  // the Error when the connection could not answer them all.
  void pipeline(std::vector<std::vector<std::string>> commands, BatchCallback done);
  // EVALSHA (EVAL the first time on a connection, and again after NOSCRIPT). The retry after
  // NOSCRIPT (the server's scripts were flushed) runs after commands sent meanwhile.
  void eval(const RedisScript& script, std::vector<std::string> keys, std::vector<std::string> args,
            ReplyCallback done);

  // Pub/Sub on the client's second connection. Set the handler before subscribing; it runs
  // on the loop thread. The client keeps the set of channels and patterns and subscribes to
  // them again after a reconnect. `done` (optional) runs when Redis confirmed every one, or
  // with `unavailable` when the connection is down (they stay in the set and are subscribed
  // when it comes back). Subscribing twice to a channel is subscribing once (no count).
  void set_message_handler(MessageHandler handler);
  void subscribe(std::vector<std::string> channels, StatusCallback done = nullptr);
  void unsubscribe(std::vector<std::string> channels, StatusCallback done = nullptr);
  void psubscribe(std::vector<std::string> patterns, StatusCallback done = nullptr);
  void punsubscribe(std::vector<std::string> patterns, StatusCallback done = nullptr);

  // Runs on the loop thread each time the command connection is up (its PING answered) after
  // the client had none: after a drop or a timeout, or after failed attempts (a server that
  // was down when the client started); not when the first attempt connects. The server may
  // have restarted meanwhile and lost what was written to it. It runs before the callbacks of
  // commands sent on the new connection, and must not block. RedisShards sets it on its
  // clients: use RedisShards::on_reconnected there.
  using ReconnectHandler = std::function<void()>;
  void set_reconnect_handler(ReconnectHandler handler);

  // ok while the command connection (and the Pub/Sub connection, once used) is up; otherwise
  // why not: "redis 127.0.0.1:6379: Connection refused (reconnecting)".
  Health health() const;
  // Waits until health() is ok (true), or for `timeout` (false). For start-up and tests.
  bool wait_ready(std::chrono::milliseconds timeout) const;
  const std::string& address() const;  // "host:port"
  // Whether the caller runs on this client's loop thread (in one of its callbacks, or of
  // another client on the same loop): there, waiting for a callback would never end.
  bool on_loop_thread() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Client-side sharding over several Redis servers: a key's server is fnv1a64(key) modulo the
// number of servers, where the key is what the caller shards by (a user id, or a node or chat
// id written in decimal). The list's order is part of the data layout: every node of a
// deployment must be given the same list in the same order, and changing it (adding a
// server) moves keys between servers. Entries with a TTL (registry, presence) heal by
// themselves within their TTL after such a change; nothing is migrated.
class RedisShards {
 public:
  // One client per "host:port", all on one RedisLoop. bad_request for an empty list or a
  // bad address.
  static Result<std::shared_ptr<RedisShards>> open(const std::vector<std::string>& servers,
                                                   const RedisOptions& base = {});

  size_t size() const { return clients_.size(); }
  size_t shard_of(std::string_view key) const { return fnv1a64(key) % clients_.size(); }
  RedisClient& at(size_t shard) { return *clients_.at(shard); }
  RedisClient& for_key(std::string_view key) { return at(shard_of(key)); }

  // A handler of on_reconnected(), called until the Subscription is reset or destroyed.
  // Resetting it (from any thread, but not from a handler) waits for a call in progress;
  // after that the handler is never called again.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription() { reset(); }
    void reset();
    struct Hooks;

   private:
    friend class RedisShards;
    Subscription(std::weak_ptr<Hooks> hooks, uint64_t id) : hooks_(std::move(hooks)), id_(id) {}
    std::weak_ptr<Hooks> hooks_;
    uint64_t id_ = 0;
  };
  using ReconnectHandler = std::function<void(size_t shard)>;
  // `handler(shard)` runs on the loop thread each time that server's command connection is up
  // again after it was lost (RedisClient::set_reconnect_handler): what the caller keeps there
  // may be gone (a server restarted empty) and is to be written again. The handlers of one
  // RedisShards run one at a time; they must not block (post the work elsewhere), subscribe,
  // or reset a Subscription.
  [[nodiscard]] Subscription on_reconnected(ReconnectHandler handler);

  // ok when every server is; otherwise the reasons of those that are not.
  Health health() const;
  bool wait_ready(std::chrono::milliseconds timeout) const;
  // Closes every client (RedisClient::close): the callbacks of commands still on their way
  // complete now, with `unavailable`, and none runs later. A node calls it before its
  // components go, since those callbacks call into them. Not from the loop thread.
  void close();

 private:
  RedisShards() = default;
  std::shared_ptr<Subscription::Hooks> hooks_;  // shared with the clients' reconnect handlers
  std::vector<std::unique_ptr<RedisClient>> clients_;
};

}  // namespace parley::redis
