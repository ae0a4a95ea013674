// RedisClient on hiredis's asynchronous API, driven by Boost.Asio (redis_client.h).
//
// hiredis 0.14 has no Asio adapter: Conn below is one. It watches the context's socket with a
// posix::stream_descriptor (async_wait for readable / writable) and calls
// redisAsyncHandleRead/Write, as hiredis's libevent and libev adapters do. hiredis owns the
// socket: the descriptor is released, never closed, when hiredis cleans the context up.
//
// Every Conn is one connection attempt of a Link (the command link or the Pub/Sub link); a
// Link makes a new Conn after a backoff when its Conn closes. A Conn lives on (shared_ptr)
// while Asio handlers or hiredis may still reach it, and is inert once closed.
#include "redis/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>

namespace parley::redis {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Subscribed to by every Pub/Sub connection for its heartbeat; nothing is published on it.
constexpr const char* kHeartbeatChannel = "__parley:heartbeat";

// --- Reply ---------------------------------------------------------------------------------

std::string Reply::describe() const {
  switch (type) {
    case Type::nil:
      return "(nil)";
    case Type::status:
      return str;
    case Type::error:
      return "(error) " + str;
    case Type::integer:
      return "(integer) " + std::to_string(integer);
    case Type::string:
      return "\"" + str + "\"";
    case Type::array: {
      std::string out = "[";
      for (size_t i = 0; i < elements.size(); ++i) {
        if (i) out += ", ";
        out += elements[i].describe();
      }
      return out + "]";
    }
  }
  return "?";
}

Result<Reply> checked(Result<Reply> reply, std::string_view address) {
  if (reply && reply->is_error()) {
    std::string message = "redis ";
    message += address.empty() ? std::string_view("server") : address;
    message += ": ";
    message += reply->str;
    return Error{Errc::internal, std::move(message)};
  }
  return reply;
}

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

// TCP keepalive: probes after `idle` without traffic, every `idle` / 3, 3 of them.
// (hiredis 0.14's redisEnableKeepAlive has a fixed interval.)
void set_keepalive(int fd, std::chrono::seconds idle) {
  int on = 1;
  int secs = static_cast<int>(std::max<int64_t>(1, idle.count()));
  int interval = std::max(1, secs / 3);
  int count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

std::string hex_sha1(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

// --- Options, scripts, hashing -------------------------------------------------------------

Result<RedisOptions> parse_address(std::string_view address, const RedisOptions& base) {
  RedisOptions out = base;
  std::string_view host = address;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {  // [v6]:port
    auto close = address.find(']');
    if (close == std::string_view::npos)
      return Error{Errc::bad_request, "bad Redis address: " + std::string(address)};
    host = address.substr(1, close - 1);
    auto rest = address.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Error{Errc::bad_request, "bad Redis address: " + std::string(address)};
      port = rest.substr(1);
      if (port.empty())
        return Error{Errc::bad_request, "bad Redis address: " + std::string(address)};
    }
  } else if (auto colon = address.rfind(':'); colon != std::string_view::npos) {
    if (address.find(':') != colon)
      return Error{Errc::bad_request,
                   "bad Redis address (write IPv6 as [addr]:port): " + std::string(address)};
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (port.empty()) return Error{Errc::bad_request, "bad Redis address: " + std::string(address)};
  }
  if (host.empty()) return Error{Errc::bad_request, "bad Redis address: " + std::string(address)};
  out.host = std::string(host);
  out.port = 6379;
  if (!port.empty()) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535)
      return Error{Errc::bad_request, "bad Redis port in " + std::string(address)};
    out.port = p;
  }
  return out;
}

RedisScript::RedisScript(std::string source) : source_(std::move(source)) {
  sha1_ = hex_sha1(source_);
}

// --- RedisLoop -----------------------------------------------------------------------------

class RedisLoop {
 public:
  RedisLoop() : guard_(asio::make_work_guard(ctx_)), thread_([this] { ctx_.run(); }) {}
  ~RedisLoop() {
    guard_.reset();
    ctx_.stop();
    if (thread_.get_id() == std::this_thread::get_id()) {
      // Destroyed from its own thread (a callback held the last reference): cannot join.
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  asio::io_context& context() { return ctx_; }
  bool in_loop() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

std::shared_ptr<RedisLoop> make_redis_loop() { return std::make_shared<RedisLoop>(); }

// --- Connections ---------------------------------------------------------------------------

namespace {

struct Link;

// A command waiting for its reply on the command connection.
struct Pending {
  RedisClient::ReplyCallback done;
  SteadyClock::time_point deadline;
};

// A (p)(un)subscribe waiting for Redis to confirm each of its channels.
struct SubOp {
  size_t remaining = 0;
  RedisClient::StatusCallback done;
  SteadyClock::time_point deadline;
};

// One connection attempt: a hiredis context and its Asio adapter.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(asio::io_context& ctx, Link* l) : sd(ctx), link(l) {}

  asio::posix::stream_descriptor sd;
  Link* link;
  redisAsyncContext* ac = nullptr;
  bool closed = false;
  bool want_read = false, want_write = false;
  bool read_armed = false, write_armed = false;
  bool up = false;                     // PING answered
  SteadyClock::time_point last_reply;  // for the heartbeat
  SteadyClock::time_point connect_deadline;
  std::string reason;                       // why we took it down, when we did
  std::deque<Pending> pending;              // command link
  std::deque<SubOp> ops;                    // Pub/Sub link
  std::unordered_set<std::string> scripts;  // loaded with EVAL on this connection

  std::string close_reason() const {
    if (!reason.empty()) return reason;
    if (ac && ac->err && ac->errstr && *ac->errstr) return ac->errstr;
    return "connection closed";
  }

  void arm_read() {
    if (closed || read_armed || !want_read) return;
    read_armed = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->read_armed = false;
                    if (ec || self->closed) return;
                    if (self->want_read) redisAsyncHandleRead(self->ac);  // may close it
                    self->arm_read();
                  });
  }
  void arm_write() {
    if (closed || write_armed || !want_write) return;
    write_armed = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_write,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->write_armed = false;
                    if (ec || self->closed) return;
                    if (self->want_write) redisAsyncHandleWrite(self->ac);  // may close it
                    self->arm_write();
                  });
  }

  // hiredis's event hooks.
  static void add_read(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->want_read = true;
    c->arm_read();
  }
  static void del_read(void* p) { static_cast<Conn*>(p)->want_read = false; }
  static void add_write(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->want_write = true;
    c->arm_write();
  }
  static void del_write(void* p) { static_cast<Conn*>(p)->want_write = false; }
  static void cleanup(void* p);  // hiredis frees the context: see Link::closed
};

}  // namespace

// --- Impl ----------------------------------------------------------------------------------

namespace {

struct Link {
  RedisClient::Impl* impl = nullptr;
  bool pubsub = false;
  bool started = false;  // Pub/Sub: connected at the first subscribe
  enum class State { connecting, up, down } state = State::down;
  std::string reason = "not connected";
  int attempt = 0;  // failures in a row, for the backoff
  std::shared_ptr<Conn> conn;
  std::unique_ptr<asio::steady_timer> retry;
};

}  // namespace

struct RedisClient::Impl {
  Impl(RedisOptions o, std::shared_ptr<RedisLoop> l)
      : options(std::move(o)),
        loop(l ? std::move(l) : make_redis_loop()),
        ctx(loop->context()),
        address(options.host + ":" + std::to_string(options.port)),
        tick(ctx),
        rng(std::random_device{}()) {
    cmd.impl = this;
    sub.impl = this;
    sub.pubsub = true;
    cmd.retry = std::make_unique<asio::steady_timer>(ctx);
    sub.retry = std::make_unique<asio::steady_timer>(ctx);
    cmd.state = Link::State::connecting;  // as far as callers can tell: it is about to be
    cmd.reason = "connecting";
    update_health();
  }

  // Runs `f` on the loop.
  template <class F>
  void post(F&& f) {
    asio::post(ctx, std::forward<F>(f));
  }

  std::string unavailable_message(const std::string& why) const {
    return "redis " + address + ": " + why;
  }
  Error unavailable(const Link& link) const {
    return Error{Errc::unavailable, unavailable_message(link.reason)};
  }

  // --- connecting ---

  void start() {
    connect(cmd);
    arm_tick();
  }

  void connect(Link& link) {
    if (closing) return;
    link.started = true;
    auto conn = std::make_shared<Conn>(ctx, &link);
    redisAsyncContext* ac = redisAsyncConnect(options.host.c_str(), options.port);
    if (!ac) {
      link.reason = "out of memory";
      link.state = Link::State::down;
      schedule_retry(link);
      return;
    }
    if (ac->err) {
      link.reason = ac->errstr;
      redisAsyncFree(ac);  // nothing attached yet: no hooks run
      link.state = Link::State::down;
      update_health();
      schedule_retry(link);
      return;
    }
    conn->ac = ac;
    ac->data = conn.get();
    ac->ev.data = conn.get();
    ac->ev.addRead = &Conn::add_read;
    ac->ev.delRead = &Conn::del_read;
    ac->ev.addWrite = &Conn::add_write;
    ac->ev.delWrite = &Conn::del_write;
    ac->ev.cleanup = &Conn::cleanup;
    conn->connect_deadline = SteadyClock::now() + options.connect_timeout;
    link.conn = conn;
    link.state = Link::State::connecting;
    // Keeps why the last connection failed, for health() until this one is up.
    std::string last = link.reason;
    if (auto pos = last.find(" (reconnecting)"); pos != std::string::npos) last.resize(pos);
    link.reason = link.attempt > 0 && !last.empty() && last != "connecting"
                      ? "connecting again after: " + last
                      : "connecting";
    update_health();
    boost::system::error_code ec;
    conn->sd.assign(ac->c.fd, ec);
    if (ec) {
      take_down(*conn, "cannot watch the socket: " + ec.message());  // retries
      return;
    }
    if (options.keepalive.count() > 0) set_keepalive(ac->c.fd, options.keepalive);
    // Writable: the connection is made (hiredis checks it). The handshake goes first.
    Conn::add_read(conn.get());
    Conn::add_write(conn.get());
    if (!options.password.empty()) send_handshake(*conn, {"AUTH", options.password});
    if (options.db != 0) send_handshake(*conn, {"SELECT", std::to_string(options.db)});
    send_handshake(*conn, {"PING"});
    if (link.pubsub) resubscribe(*conn);
  }

  void send_handshake(Conn& conn, const std::vector<std::string>& args) {
    send_raw(conn, args, &Impl::on_handshake_reply);
  }

  static int send_raw(Conn& conn, const std::vector<std::string>& args, redisCallbackFn* fn) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(conn.ac, fn, &conn, static_cast<int>(args.size()), argv.data(),
                                 lens.data());
  }

  static void on_handshake_reply(redisAsyncContext*, void* r, void* privdata) {
    auto* conn = static_cast<Conn*>(privdata);
    if (!r || conn->closed) return;  // the connection is closing: Link::closed says why
    auto* reply = static_cast<redisReply*>(r);
    Link& link = *conn->link;
    Impl& self = *link.impl;
    if (reply->type == REDIS_REPLY_ERROR) {
      self.take_down(*conn,
                     std::string("handshake failed: ") + std::string(reply->str, reply->len));
      return;
    }
    if (reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str, reply->len) == "PONG") {
      // Up again after a drop or failed attempts (schedule_retry counted them): the server
      // may have lost its data meanwhile.
      const bool again = link.attempt > 0;
      conn->up = true;
      conn->last_reply = SteadyClock::now();
      link.state = Link::State::up;
      link.attempt = 0;
      link.reason.clear();
      self.update_health();
      if (again && !link.pubsub && !self.closing && self.reconnect_handler)
        self.reconnect_handler();
    }
  }

  // Closes `conn` from our side (timeouts, a failed handshake). hiredis completes its
  // callbacks with no reply and calls Conn::cleanup (at once, or after the callback that is
  // running returns).
  void take_down(Conn& conn, std::string why) {
    if (conn.closed || !conn.ac) return;
    if (conn.reason.empty()) conn.reason = std::move(why);
    mark_down(conn);
    redisAsyncFree(conn.ac);
  }

  // The connection is closing: health() says so before any of its callbacks completes with
  // `unavailable` (closed() follows once hiredis is done with them).
  void mark_down(Conn& conn) {
    Link& link = *conn.link;
    if (link.conn.get() != &conn || link.state == Link::State::down) return;
    link.state = Link::State::down;
    link.reason = closing ? "client closed" : conn.close_reason();
    update_health();
  }

  // From Conn::cleanup: the context is being freed (by hiredis after an error or EOF, or by
  // us). Every pending callback has completed already.
  void closed(Conn& conn) {
    Link& link = *conn.link;
    std::string why = conn.close_reason();
    conn.closed = true;
    boost::system::error_code ec;
    conn.sd.cancel(ec);
    (void)conn.sd.release();
    auto ops = std::move(conn.ops);
    conn.ops.clear();
    // Keep the Conn until hiredis is done with it (after this hook returns).
    if (link.conn.get() == &conn) {
      post([keep = std::move(link.conn)] {});
      link.conn.reset();
      link.state = Link::State::down;
      link.reason = closing ? "client closed" : why;
      update_health();
      schedule_retry(link);
    }
    conn.ac = nullptr;
    for (auto& op : ops)
      if (op.done) op.done(Error{Errc::unavailable, unavailable_message(why)});
  }

  void schedule_retry(Link& link) {
    if (closing) return;
    using namespace std::chrono;
    double d = static_cast<double>(options.reconnect_min.count());
    for (int i = 0; i < link.attempt && d < static_cast<double>(options.reconnect_max.count()); ++i)
      d *= 2;
    d = std::min(d, static_cast<double>(options.reconnect_max.count()));
    double jitter = std::clamp(options.jitter, 0.0, 1.0);
    std::uniform_real_distribution<double> dist(d * (1 - jitter), d);
    auto wait = duration_cast<milliseconds>(duration<double, std::milli>(dist(rng)));
    ++link.attempt;
    if (!link.reason.empty() && link.reason.find("(reconnecting)") == std::string::npos)
      link.reason += " (reconnecting)";
    update_health();
    link.retry->expires_after(wait);
    link.retry->async_wait([this, &link](const boost::system::error_code& ec) {
      if (ec || closing || link.conn) return;
      connect(link);
    });
  }

  // Timeouts: connecting, the oldest command, the oldest subscription change.
  void arm_tick() {
    auto period = std::min(options.command_timeout, options.connect_timeout) / 10;
    period = std::clamp(period, std::chrono::milliseconds(5), std::chrono::milliseconds(100));
    tick.expires_after(period);
    tick.async_wait([this](const boost::system::error_code& ec) {
      if (ec || closing) return;
      check_timeouts(cmd);
      check_timeouts(sub);
      arm_tick();
    });
  }

  void check_timeouts(Link& link) {
    auto conn = link.conn;
    if (!conn || conn->closed) return;
    auto now = SteadyClock::now();
    if (!conn->up && now > conn->connect_deadline) {
      take_down(*conn, "connect timed out after " +
                           std::to_string(options.connect_timeout.count()) + " ms");
    } else if (!conn->pending.empty() && now > conn->pending.front().deadline) {
      take_down(*conn, "command timed out after " +
                           std::to_string(options.command_timeout.count()) + " ms");
    } else if (!conn->ops.empty() && now > conn->ops.front().deadline) {
      take_down(*conn, "subscribe timed out after " +
                           std::to_string(options.command_timeout.count()) + " ms");
    } else if (conn->up && options.heartbeat.count() > 0 && conn->pending.empty() &&
               conn->ops.empty() && now - conn->last_reply >= options.heartbeat) {
      // Idle: ask, so that a server that stopped answering is noticed (the timeouts above).
      conn->last_reply = now;
      if (link.pubsub) {
        // A PING is not answered like a command once subscribed; subscribing again to a
        // channel is (and costs nothing).
        send_sub(*conn, "SUBSCRIBE", {kHeartbeatChannel}, nullptr);
      } else {
        send({"PING"}, [](Result<Reply>) {});
      }
    }
  }

  // --- commands ---

  static void on_command_reply(redisAsyncContext*, void* r, void* privdata) {
    auto* conn = static_cast<Conn*>(privdata);
    conn->last_reply = SteadyClock::now();
    if (conn->pending.empty()) return;
    auto done = std::move(conn->pending.front().done);
    conn->pending.pop_front();
    if (!r) {
      conn->link->impl->mark_down(*conn);
      done(Error{Errc::unavailable, conn->link->impl->unavailable_message(conn->close_reason())});
      return;
    }
    done(convert(static_cast<redisReply*>(r)));
  }

  // On the loop.
  void send(const std::vector<std::string>& args, ReplyCallback done) {
    auto conn = cmd.conn;
    if (!conn || conn->closed || cmd.state == Link::State::down) {
      done(unavailable(cmd));
      return;
    }
    if (send_raw(*conn, args, &Impl::on_command_reply) != REDIS_OK) {
      done(Error{Errc::unavailable, unavailable_message("connection closing")});
      return;
    }
    conn->pending.push_back(Pending{std::move(done), SteadyClock::now() + options.command_timeout});
  }

  void eval(std::shared_ptr<const RedisScript> script, std::vector<std::string> keys,
            std::vector<std::string> args, ReplyCallback done) {
    auto conn = cmd.conn;
    if (!conn || conn->closed || cmd.state == Link::State::down) {
      done(unavailable(cmd));
      return;
    }
    auto command = [&](bool by_sha) {
      std::vector<std::string> argv;
      argv.reserve(3 + keys.size() + args.size());
      argv.emplace_back(by_sha ? "EVALSHA" : "EVAL");
      argv.push_back(by_sha ? script->sha1() : script->source());
      argv.push_back(std::to_string(keys.size()));
      argv.insert(argv.end(), keys.begin(), keys.end());
      argv.insert(argv.end(), args.begin(), args.end());
      return argv;
    };
    if (!conn->scripts.contains(script->sha1())) {
      // EVAL loads it: later calls on this connection send EVALSHA.
      conn->scripts.insert(script->sha1());
      send(command(false), std::move(done));
      return;
    }
    send(command(true), [this, script, keys, args, done = std::move(done),
                         weak = std::weak_ptr<Conn>(conn)](Result<Reply> r) mutable {
      if (r && r->is_error() && r->str.starts_with("NOSCRIPT")) {
        // The server forgot it (SCRIPT FLUSH): EVAL it again, which loads it.
        if (auto c = weak.lock()) c->scripts.erase(script->sha1());
        eval(script, std::move(keys), std::move(args), std::move(done));
        return;
      }
      done(std::move(r));
    });
  }

  // --- Pub/Sub ---

  enum class SubKind { subscribe, unsubscribe, psubscribe, punsubscribe };

  static void on_pubsub_reply(redisAsyncContext*, void* r, void* privdata) {
    auto* conn = static_cast<Conn*>(privdata);
    if (!r || conn->closed) return;
    conn->last_reply = SteadyClock::now();
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    auto str = [&](size_t i) {
      const redisReply* e = reply->element[i];
      return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS
                 ? std::string(e->str, e->len)
                 : std::string();
    };
    std::string kind = str(0);
    Impl& self = *conn->link->impl;
    if (kind == "message") {
      if (self.handler) self.handler(str(1), std::string(), str(2));
    } else if (kind == "pmessage" && reply->elements >= 4) {
      if (self.handler) self.handler(str(2), str(1), str(3));
    } else if (kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" ||
               kind == "punsubscribe") {
      if (conn->ops.empty()) return;
      auto& op = conn->ops.front();
      if (op.remaining > 0) --op.remaining;
      if (op.remaining == 0) {
        auto done = std::move(op.done);
        conn->ops.pop_front();
        if (done) done(ok_status());
      }
    }
  }

  // Sends one (p)(un)subscribe for `names` on the Pub/Sub connection, `done` when confirmed.
  void send_sub(Conn& conn, const char* verb, const std::vector<std::string>& names,
                StatusCallback done) {
    std::vector<std::string> args;
    args.reserve(names.size() + 1);
    args.emplace_back(verb);
    args.insert(args.end(), names.begin(), names.end());
    if (send_raw(conn, args, &Impl::on_pubsub_reply) != REDIS_OK) {
      if (done) done(Error{Errc::unavailable, unavailable_message("connection closing")});
      return;
    }
    conn.ops.push_back(
        SubOp{names.size(), std::move(done), SteadyClock::now() + options.command_timeout});
  }

  void resubscribe(Conn& conn) {
    if (!channels.empty()) send_sub(conn, "SUBSCRIBE", {channels.begin(), channels.end()}, nullptr);
    if (!patterns.empty())
      send_sub(conn, "PSUBSCRIBE", {patterns.begin(), patterns.end()}, nullptr);
  }

  void change_subscriptions(SubKind kind, std::vector<std::string> names, StatusCallback done) {
    const bool adding = kind == SubKind::subscribe || kind == SubKind::psubscribe;
    const bool pattern = kind == SubKind::psubscribe || kind == SubKind::punsubscribe;
    auto& set = pattern ? patterns : channels;
    std::vector<std::string> changed;
    for (auto& n : names) {
      if (adding ? set.insert(n).second : set.erase(n) > 0) changed.push_back(std::move(n));
    }
    if (!sub.started) {
      if (adding) connect(sub);  // subscribes to the whole set once connected
      if (!adding || !sub.conn) {
        if (done) done(adding ? Status(unavailable(sub)) : ok_status());
        return;
      }
      // Done once Redis confirmed the subscriptions that connect() sent.
      after_pending_ops(*sub.conn, std::move(done));
      return;
    }
    auto conn = sub.conn;
    if (!conn || conn->closed || sub.state == Link::State::down) {
      // Kept in the set (or out of it): applied when the connection is back.
      if (done) done(adding ? Status(unavailable(sub)) : ok_status());
      return;
    }
    if (changed.empty()) {
      // Nothing to send: done once what was sent before is confirmed.
      after_pending_ops(*conn, std::move(done));
      return;
    }
    const char* verb = kind == SubKind::subscribe     ? "SUBSCRIBE"
                       : kind == SubKind::unsubscribe ? "UNSUBSCRIBE"
                       : kind == SubKind::psubscribe  ? "PSUBSCRIBE"
                                                      : "PUNSUBSCRIBE";
    send_sub(*conn, verb, changed, std::move(done));
  }

  // `done` (when set) runs when the ops already sent on `conn` are confirmed (or failed), at
  // once when there are none.
  void after_pending_ops(Conn& conn, StatusCallback done) {
    if (!done) return;
    if (conn.ops.empty()) {
      done(ok_status());
      return;
    }
    auto& last = conn.ops.back();
    last.done = [first = std::move(last.done), done = std::move(done)](Status s) {
      if (first) first(s);
      done(s);
    };
  }

  // --- health ---

  void update_health() {
    Health h;
    auto add = [&](const Link& l) {
      if (l.state == Link::State::up) return;
      h.ok = false;
      if (!h.detail.empty()) h.detail += "; ";
      h.detail += "redis " + address + (l.pubsub ? " (pub/sub): " : ": ") + l.reason;
    };
    add(cmd);
    if (sub.started) add(sub);
    std::lock_guard lock(health_mu);
    health = std::move(h);
  }

  // --- closing ---

  void close() {
    if (closing) return;  // closed already (RedisClient::close, then the destructor)
    closing = true;
    tick.cancel();
    for (Link* l : {&cmd, &sub}) {
      l->retry->cancel();
      if (auto conn = l->conn) take_down(*conn, "client closed");
    }
  }

  RedisOptions options;
  std::shared_ptr<RedisLoop> loop;
  asio::io_context& ctx;
  const std::string address;
  Link cmd, sub;
  asio::steady_timer tick;
  std::mt19937_64 rng;
  bool closing = false;
  MessageHandler handler;
  ReconnectHandler reconnect_handler;
  std::set<std::string> channels, patterns;
  mutable std::mutex health_mu;
  Health health;
};

namespace {
void Conn::cleanup(void* p) {
  auto* c = static_cast<Conn*>(p);
  c->link->impl->closed(*c);
}
}  // namespace

// --- RedisClient ---------------------------------------------------------------------------

RedisClient::RedisClient(RedisOptions options, std::shared_ptr<RedisLoop> loop)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(loop))) {
  Impl* impl = impl_.get();
  impl->post([impl] { impl->start(); });
}

RedisClient::~RedisClient() {
  Impl* impl = impl_.get();
  if (impl->loop->in_loop()) {
    impl->close();
    // Handlers still queued on the loop refer to impl: keep it until they ran.
    impl->post([keep = impl_] {});
    return;
  }
  close();
}

void RedisClient::close() {
  Impl* impl = impl_.get();
  std::promise<void> closed;
  impl->post([impl, &closed] {
    impl->close();
    // Cancelled timers and descriptors queue their handlers now; they run before this one.
    impl->post([&closed] { closed.set_value(); });
  });
  closed.get_future().wait();
}

void RedisClient::command(std::vector<std::string> args, ReplyCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, args = std::move(args), done = std::move(done)]() mutable {
    impl->send(args, std::move(done));
  });
}

void RedisClient::pipeline(std::vector<std::vector<std::string>> commands, BatchCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, commands = std::move(commands), done = std::move(done)]() mutable {
    if (commands.empty()) {
      done(std::vector<Reply>{});
      return;
    }
    struct Batch {
      std::vector<Reply> replies;
      size_t left = 0;
      bool failed = false;
      BatchCallback done;
    };
    auto batch = std::make_shared<Batch>();
    batch->replies.resize(commands.size());
    batch->left = commands.size();
    batch->done = std::move(done);
    for (size_t i = 0; i < commands.size(); ++i) {
      impl->send(commands[i], [batch, i](Result<Reply> r) {
        if (batch->failed) return;
        if (!r) {
          batch->failed = true;
          batch->done(r.error());
          return;
        }
        batch->replies[i] = std::move(r.value());
        if (--batch->left == 0) batch->done(std::move(batch->replies));
      });
      if (batch->failed) return;
    }
  });
}

void RedisClient::eval(const RedisScript& script, std::vector<std::string> keys,
                       std::vector<std::string> args, ReplyCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, script = std::make_shared<const RedisScript>(script), keys = std::move(keys),
              args = std::move(args), done = std::move(done)]() mutable {
    impl->eval(std::move(script), std::move(keys), std::move(args), std::move(done));
  });
}

void RedisClient::set_message_handler(MessageHandler handler) {
  Impl* impl = impl_.get();
  impl->post(
      [impl, handler = std::move(handler)]() mutable { impl->handler = std::move(handler); });
}

void RedisClient::set_reconnect_handler(ReconnectHandler handler) {
  Impl* impl = impl_.get();
  impl->post([impl, handler = std::move(handler)]() mutable {
    impl->reconnect_handler = std::move(handler);
  });
}

void RedisClient::subscribe(std::vector<std::string> channels, StatusCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, channels = std::move(channels), done = std::move(done)]() mutable {
    impl->change_subscriptions(Impl::SubKind::subscribe, std::move(channels), std::move(done));
  });
}

void RedisClient::unsubscribe(std::vector<std::string> channels, StatusCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, channels = std::move(channels), done = std::move(done)]() mutable {
    impl->change_subscriptions(Impl::SubKind::unsubscribe, std::move(channels), std::move(done));
  });
}

void RedisClient::psubscribe(std::vector<std::string> patterns, StatusCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, patterns = std::move(patterns), done = std::move(done)]() mutable {
    impl->change_subscriptions(Impl::SubKind::psubscribe, std::move(patterns), std::move(done));
  });
}

void RedisClient::punsubscribe(std::vector<std::string> patterns, StatusCallback done) {
  Impl* impl = impl_.get();
  impl->post([impl, patterns = std::move(patterns), done = std::move(done)]() mutable {
    impl->change_subscriptions(Impl::SubKind::punsubscribe, std::move(patterns), std::move(done));
  });
}

Health RedisClient::health() const {
  std::lock_guard lock(impl_->health_mu);
  return impl_->health;
}

bool RedisClient::wait_ready(std::chrono::milliseconds timeout) const {
  auto until = SteadyClock::now() + timeout;
  while (!health().ok) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

const std::string& RedisClient::address() const { return impl_->address; }

bool RedisClient::on_loop_thread() const { return impl_->loop->in_loop(); }

// --- RedisShards ---------------------------------------------------------------------------

// The handlers of on_reconnected(). They run under the lock, so that reset() returns only
// once a call in progress is over; calls come from the one loop thread, so never wait on it.
struct RedisShards::Subscription::Hooks {
  std::mutex mu;
  uint64_t next_id = 0;
  std::map<uint64_t, RedisShards::ReconnectHandler> handlers;

  void reconnected(size_t shard) {
    std::lock_guard lock(mu);
    for (auto& [id, handler] : handlers) handler(shard);
  }
};

RedisShards::Subscription::Subscription(Subscription&& other) noexcept
    : hooks_(std::move(other.hooks_)), id_(std::exchange(other.id_, 0)) {}

RedisShards::Subscription& RedisShards::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    hooks_ = std::move(other.hooks_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void RedisShards::Subscription::reset() {
  if (auto hooks = hooks_.lock()) {
    std::lock_guard lock(hooks->mu);
    hooks->handlers.erase(id_);
  }
  hooks_.reset();
  id_ = 0;
}

RedisShards::Subscription RedisShards::on_reconnected(ReconnectHandler handler) {
  std::lock_guard lock(hooks_->mu);
  const uint64_t id = ++hooks_->next_id;
  hooks_->handlers.emplace(id, std::move(handler));
  return Subscription(hooks_, id);
}

Result<std::shared_ptr<RedisShards>> RedisShards::open(const std::vector<std::string>& servers,
                                                       const RedisOptions& base) {
  if (servers.empty()) return Error{Errc::bad_request, "no Redis servers"};
  std::vector<RedisOptions> options;
  for (const auto& s : servers) {
    auto o = parse_address(s, base);
    if (!o) return o.error();
    options.push_back(std::move(o.value()));
  }
  std::shared_ptr<RedisShards> shards(new RedisShards());
  auto loop = make_redis_loop();
  shards->hooks_ = std::make_shared<Subscription::Hooks>();
  for (auto& o : options) {
    auto& client = shards->clients_.emplace_back(std::make_unique<RedisClient>(o, loop));
    client->set_reconnect_handler([hooks = shards->hooks_, shard = shards->clients_.size() - 1] {
      hooks->reconnected(shard);
    });
  }
  return shards;
}

void RedisShards::close() {
  for (auto& c : clients_) c->close();
}

Health RedisShards::health() const {
  Health h;
  for (const auto& c : clients_) {
    auto one = c->health();
    if (one.ok) continue;
    h.ok = false;
    if (!h.detail.empty()) h.detail += "; ";
    h.detail += one.detail;
  }
  return h;
}

bool RedisShards::wait_ready(std::chrono::milliseconds timeout) const {
  auto until = SteadyClock::now() + timeout;
  while (!health().ok) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace parley::redis
