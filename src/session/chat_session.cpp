#include "session/chat_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "common/clock.h"
#include "common/post_batch.h"

namespace json = boost::json;

namespace parley::session {

ChatSession::ChatSession(std::shared_ptr<net::Transport> transport, SessionDeps& deps)
    : transport_(std::move(transport)),
      deps_(deps),
      bucket_(deps.config.limits.requests_per_second, deps.config.limits.burst),
      auth_timer_(transport_->executor()) {}

void ChatSession::start() {
  auth_timer_.expires_after(std::chrono::seconds(deps_.config.ws.auth_timeout_s));
  auth_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->authenticated_ || self->closed_) return;
    self->transport_->close(kCloseUnauthorized, "authentication timeout");
  });
}

template <class T>
std::function<void(T)> ChatSession::on_my_thread(
    std::function<void(std::shared_ptr<ChatSession>, T)> fn) {
  return [self = shared_from_this(), fn = std::move(fn)](T value) mutable {
    auto exec = self->transport_->executor();
    PostBatch::post(
        exec, [self = std::move(self), fn = std::move(fn), value = std::move(value)]() mutable {
          if (!self->closed_) fn(self, std::move(value));
        });
  };
}

void ChatSession::on_frame(std::string_view text, bool binary) {
  if (closed_) return;
  if (binary)
    return on_request(proto::RequestError{
        std::nullopt, {Errc::bad_request, "binary frames are not supported; send JSON text"}});
  // A message may carry several requests, one per line (PROTOCOL.md §3.1); each is
  // answered, rate-limited and counted on its own. Parse first (messages are bounded by
  // ws.max_frame_bytes), so that every answer, also a rate-limit refusal, carries its id.
  proto::split_requests(text, [this](std::string_view request) {
    if (!closed_) on_request(proto::parse_request(request, deps_.limits));
  });
}

void ChatSession::on_request(std::variant<proto::Request, proto::RequestError> parsed) {
  auto* err = std::get_if<proto::RequestError>(&parsed);
  auto* req = std::get_if<proto::Request>(&parsed);
  std::optional<uint64_t> id = err ? err->id : std::optional<uint64_t>(req->id);
  uint64_t retry_after = 0;
  if (!bucket_.take(TokenBucket::Clock::now(), &retry_after)) {
    reply_error(id, {Errc::rate_limited, "too many requests"}, retry_after);
    return rejected();
  }
  if (!authenticated_ && !authenticating_ && (err || req->type != proto::RequestType::auth)) {
    // The first frame must be a valid auth (PROTOCOL.md §3.2).
    reply_error(id, err ? err->error : Error{Errc::unauthorized, "the first frame must be auth"});
    transport_->close(kCloseUnauthorized, "authenticate first");
    closed_ = true;
    return;
  }
  if (err) {
    reply_error(err->id, err->error);
    return rejected();
  }
  if (!authenticated_) {
    if (authenticating_) {
      reply_error(req->id, {Errc::unauthorized, "authentication in progress"});
      return rejected();
    }
    auto& auth = std::get<proto::AuthRequest>(req->body);
    return authenticate(req->id, std::move(auth.token), auth.batch);
  }
  dispatch(std::move(*req));
}

void ChatSession::rejected() {
  if (++rejects_in_a_row_ >= deps_.config.limits.flood_close_after) {
    spdlog::info("session {}: {} rejected requests in a row; closing", transport_->id(),
                 rejects_in_a_row_);
    transport_->close(kCloseFlood, "too many rejected requests");
    closed_ = true;
  }
}

void ChatSession::authenticate(uint64_t id, std::string token, bool batch) {
  authenticating_ = true;
  deps_.accounts.authenticate(
      std::move(token),
      on_my_thread<Result<auth::Identity>>([id, batch](std::shared_ptr<ChatSession> self,
                                                       Result<auth::Identity> who) {
        self->authenticating_ = false;
        if (!who) {
          self->reply_error(id, who.error());
          self->transport_->close(kCloseUnauthorized, std::string(errc_name(who.error().code)));
          self->closed_ = true;
          return;
        }
        self->authenticated_ = true;
        self->rejects_in_a_row_ = 0;
        if (batch) self->transport_->set_batching(true);
        self->auth_timer_.cancel();
        self->user_ = who->user;
        self->device_id_ = who->device_id;
        // Register before reading pts: whatever commits after the read is pushed, whatever
        // committed before it is at or below the advertised pts. The stream holds the pushes
        // until the pts is known, then sends them in pts order.
        self->stream_ = self->make_stream();
        self->deps_.hub.add(self->user_, self->device_id_, self->transport_, self->stream_);
        self->deps_.presence.touch(self->user_, self->session_key(), now_ms());
        // The device syncs now: pushes queued for it are moot.
        if (self->deps_.push) self->deps_.push->device_online(self->user_, self->device_id_);
        // The answer goes once both of these are done (any thread; the last one sends it).
        struct Answer {
          std::atomic<int> left{2};
          Result<uint64_t> pts = Error{Errc::unavailable, "not read"};
        };
        auto answer = std::make_shared<Answer>();
        auto one_done = [self, id, answer] {
          if (--answer->left > 0) return;
          const auto& pts = answer->pts;
          auto body = json::serialize(json::object{{"user", self->user_},
                                                   {"device_id", self->device_id_},
                                                   {"pts", pts.ok() ? pts.value() : 0}});
          self->stream_->start(pts.ok() ? std::optional<uint64_t>(pts.value()) : std::nullopt,
                               std::make_shared<const std::string>(proto::ok_frame(id, body)));
        };
        // Large groups reach their members by subscription, not through the update log. The
        // device reads them after the answer (history after its seq per chat): the answer
        // waits until the session is in each chat's broadcast list and the chat's stream on
        // this node knows where it starts, so what that read does not return is pushed.
        self->deps_.chats.large_groups(
            self->user_, [self, one_done](Result<std::vector<store::ChatId>> chats) {
              if (!chats || chats->empty()) return one_done();
              auto left = std::make_shared<std::atomic<size_t>>(chats->size());
              for (auto chat : chats.value())
                self->deps_.hub.subscribe(chat, self->user_, self->transport_, [left, one_done] {
                  if (--*left == 0) one_done();
                });
            });
        // The registry tells other nodes where this device is; pts is read once it knows.
        self->deps_.registry.attach(
            self->user_, self->device_id_, self->deps_.node,
            [self, answer, one_done](Status attached) {
              if (!attached)  // other nodes' pushes miss it until the next refresh: gaps heal
                spdlog::warn("session {}: registry: {}", self->transport_->id(),
                             attached.error().message);
              self->deps_.chats.current_pts(self->user_, [answer, one_done](Result<uint64_t> pts) {
                answer->pts = std::move(pts);
                one_done();
              });
            });
      }));
}

void ChatSession::dispatch(proto::Request req) {
  uint64_t id = req.id;
  auto answer = on_my_thread<Result<std::string>>(
      [id](std::shared_ptr<ChatSession> self, Result<std::string> r) {
        self->reply(id, std::move(r));
      });
  switch (req.type) {
    case proto::RequestType::auth:
      reply_error(id, {Errc::already_authenticated, "this connection is authenticated already"});
      return rejected();
    case proto::RequestType::send:
    case proto::RequestType::group:
    case proto::RequestType::mark: {
      if (inflight_sends_ >= deps_.config.limits.max_inflight_sends) {
        reply_error(id, {Errc::rate_limited, "too many writes awaiting commit"}, 10);
        return rejected();
      }
      ++inflight_sends_;
      // The answer takes its place in the device's stream by the write's pts: the device
      // sees it after every update before it and before every update after it.
      auto stream = stream_;
      auto weak = weak_from_this();
      // A send's own message must reach this device through its answer only, also when a
      // gap's catch-up reads it before the answer comes (a slow commit).
      std::string own_send;
      if (req.type == proto::RequestType::send)
        own_send = std::get<proto::SendRequest>(req.body).client_msg_id;
      stream->await_answer(own_send);
      auto committed = [stream, weak, id, own_send](Result<core::Committed> r) {
        stream->answer(r ? r->pts : 0,
                       std::make_shared<const std::string>(r ? proto::ok_frame(id, r->json)
                                                             : proto::error_frame(id, r.error())),
                       own_send);
        PostBatch::post(stream->executor(), [weak] {
          if (auto self = weak.lock()) --self->inflight_sends_;
        });
      };
      if (req.type == proto::RequestType::send)
        deps_.chats.send(user_, transport_->id(), std::move(std::get<proto::SendRequest>(req.body)),
                         committed);
      else if (req.type == proto::RequestType::group)
        deps_.chats.group(user_, transport_->id(),
                          std::move(std::get<proto::GroupRequest>(req.body)), committed);
      else
        deps_.chats.mark(user_, transport_->id(), std::move(std::get<proto::MarkRequest>(req.body)),
                         committed);
      break;
    }
    case proto::RequestType::typing:
      deps_.typing.typing(user_, transport_->id(), std::get<proto::TypingRequest>(req.body),
                          answer);
      break;
    case proto::RequestType::presence:
      presence_request(id, std::move(std::get<proto::PresenceRequest>(req.body)));
      break;
    case proto::RequestType::settings:
      deps_.chats.settings(user_, std::get<proto::SettingsRequest>(req.body), answer);
      break;
    case proto::RequestType::push:
      deps_.chats.push_target(user_, device_id_, std::get<proto::PushRequest>(req.body), answer);
      break;
    case proto::RequestType::mute:
      deps_.chats.mute(user_, std::get<proto::MuteRequest>(req.body), answer);
      break;
    case proto::RequestType::group_info:
      deps_.chats.group_info(user_, std::get<proto::GroupInfoRequest>(req.body).chat_id, answer);
      break;
    case proto::RequestType::sync:
      deps_.chats.sync(user_, std::get<proto::SyncRequest>(req.body), answer);
      break;
    case proto::RequestType::history:
      deps_.chats.history(user_, std::get<proto::HistoryRequest>(req.body), answer);
      break;
    case proto::RequestType::chats:
      deps_.chats.chats(user_, std::get<proto::ChatsRequest>(req.body), answer);
      break;
    case proto::RequestType::ping:
      reply(id, json::serialize(json::object{{"ts", now_ms()}}));
      break;
  }
  rejects_in_a_row_ = 0;
}

void ChatSession::presence_request(uint64_t id, proto::PresenceRequest req) {
  if (!req.subscribe) {
    deps_.presence_hub.unsubscribe(transport_->id(),
                                   req.all ? std::vector<std::string>{} : req.users);
    return reply(id, std::string("{}"));
  }
  deps_.presence_hub.subscribe(
      transport_, user_, std::move(req.users),
      on_my_thread<Result<std::vector<presence::Status>>>(
          [id](std::shared_ptr<ChatSession> self, Result<std::vector<presence::Status>> r) {
            if (!r) return self->reply_error(id, r.error());
            self->reply(id, json::serialize(
                                json::object{{"presence", presence::statuses_array(r.value())}}));
          }));
}

std::shared_ptr<OrderedStream> ChatSession::make_stream() {
  const auto& sync = deps_.config.sync;
  StreamOptions options{std::chrono::milliseconds(sync.gap_hold_ms), sync.gap_retries,
                        sync.max_held_updates};
  auto read = [chats = &deps_.chats](const std::string& user, uint64_t after, uint32_t limit,
                                     std::function<void(Result<CatchUpPage>)> done) {
    chats->update_frames(user, after, limit, std::move(done));
  };
  return OrderedStream::for_device(transport_, user_, options, std::move(read));
}

std::string ChatSession::session_key() const {
  return fmt::format("{}:{}", deps_.node, transport_->id());
}

void ChatSession::reply(uint64_t id, Result<std::string> result) {
  if (!result) return reply_error(id, result.error());
  transport_->send(std::make_shared<const std::string>(proto::ok_frame(id, result.value())),
                   net::FrameKind::answer);
}

void ChatSession::reply_error(std::optional<uint64_t> id, const Error& error,
                              std::optional<uint64_t> retry_after) {
  if (error.code == Errc::internal)
    spdlog::error("session {}: internal error: {}", transport_->id(), error.message);
  transport_->send(std::make_shared<const std::string>(proto::error_frame(id, error, retry_after)),
                   net::FrameKind::answer);
}

void ChatSession::on_close() {
  if (authenticated_ && !user_.empty()) {
    deps_.hub.remove(user_, transport_->id());
    if (stream_) stream_->stop();
    deps_.registry.detach(user_, device_id_, deps_.node, nullptr);
    deps_.typing.connection_closed(transport_->id());
    deps_.presence.drop(user_, session_key(), now_ms());
  }
  deps_.presence_hub.remove_connection(transport_->id());
  authenticated_ = false;
  closed_ = true;
  auth_timer_.cancel();
}

std::shared_ptr<net::WsHandler> SessionService::on_open(std::shared_ptr<net::Transport> transport) {
  auto s = std::make_shared<ChatSession>(std::move(transport), deps_);
  s->start();
  return s;
}

}  // namespace parley::session
