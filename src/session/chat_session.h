// One device's WebSocket session: authentication state, rate limits, and dispatch of
// parley.v1 requests to the chat core. Lives on its connection's thread.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "auth/account_service.h"
#include "common/config.h"
#include "core/chat_service.h"
#include "core/typing_service.h"
#include "net/transport.h"
#include "presence/presence_hub.h"
#include "presence/presence_reporter.h"
#include "registry/registry.h"
#include "session/ordered_stream.h"
#include "session/rate_limiter.h"
#include "session/session_hub.h"

namespace parley::session {

// Close codes of docs/PROTOCOL.md §4.
enum CloseCode : uint16_t {
  kCloseGoingAway = 1001,
  kCloseUnauthorized = 4001,
  kCloseRevoked = 4003,
  kCloseFlood = 4029,
};

// What every session of a node shares.
struct SessionDeps {
  const Config& config;
  proto::ParseLimits limits;
  SessionHub& hub;
  Registry& registry;
  NodeId node;
  auth::AccountService& accounts;
  core::ChatService& chats;
  core::TypingService& typing;
  presence::PresenceReporter& presence;  // reports what its calls change
  presence::PresenceHub& presence_hub;
  core::PushNotifier* push = nullptr;  // null: push notifications off
};

class ChatSession final : public net::WsHandler, public std::enable_shared_from_this<ChatSession> {
 public:
  ChatSession(std::shared_ptr<net::Transport> transport, SessionDeps& deps);
  void start();  // arms the authentication timeout

  void on_frame(std::string_view text, bool binary) override;
  void on_close() override;

 private:
  void dispatch(proto::Request req);
  void on_request(std::variant<proto::Request, proto::RequestError> parsed);
  void authenticate(uint64_t id, std::string token, bool batch);
  void reply(uint64_t id, Result<std::string> result);
  void reply_error(std::optional<uint64_t> id, const Error& error,
                   std::optional<uint64_t> retry_after = {});
  void rejected();
  void presence_request(uint64_t id, proto::PresenceRequest req);
  std::string session_key() const;
  std::shared_ptr<OrderedStream> make_stream();
  // Wraps a callback so that it runs on this session's thread, if the session still lives.
  template <class T>
  std::function<void(T)> on_my_thread(std::function<void(std::shared_ptr<ChatSession>, T)> fn);

  std::shared_ptr<net::Transport> transport_;
  SessionDeps& deps_;
  std::shared_ptr<OrderedStream> stream_;  // once authenticated
  TokenBucket bucket_;
  boost::asio::steady_timer auth_timer_;
  std::string user_;
  std::string device_id_;
  bool authenticating_ = false;
  bool authenticated_ = false;
  bool closed_ = false;
  uint32_t inflight_sends_ = 0;
  uint32_t rejects_in_a_row_ = 0;
};

class SessionService final : public net::WsService {
 public:
  explicit SessionService(SessionDeps deps) : deps_(std::move(deps)) {}
  std::shared_ptr<net::WsHandler> on_open(std::shared_ptr<net::Transport> transport) override;

 private:
  SessionDeps deps_;
};

}  // namespace parley::session
