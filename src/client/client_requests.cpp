// The public request methods: each builds an Op, posts it to the I/O thread and returns the
// future of its promise.
#include <random>
#include <utility>

#include "client_impl.h"
#include "parley/wire.h"

namespace parley {
namespace {

namespace json = boost::json;
using namespace detail;  // Clock, milliseconds, Op, OpPtr, the k* constants

template <class T>
OpPtr MakeOp(Op::Kind kind, std::string name, Clock::duration timeout,
             std::shared_ptr<std::promise<T>> promise) {
  auto op = std::make_shared<Op>();
  op->kind = kind;
  op->name = std::move(name);
  op->deadline = Clock::now() + timeout;
  op->on_error = [promise](const Error& e) { promise->set_exception(std::make_exception_ptr(e)); };
  return op;
}

template <class T>
std::future<T> Failed(Error error) {
  std::promise<T> promise;
  promise.set_exception(std::make_exception_ptr(std::move(error)));
  return promise.get_future();
}

}  // namespace

std::string NewClientMsgId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(32);
  for (int i = 0; i < 4; ++i) {
    uint32_t word = rd();
    for (int b = 0; b < 4; ++b) {
      auto byte = static_cast<uint8_t>(word >> (8 * b));
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

// ---------------------------------------------------------------- request builders

std::future<SendAck> Client::Impl::Send(const Target& to, std::string body,
                                        std::string client_msg_id) {
  if (body.empty()) return Failed<SendAck>(Error(errc::kInvalidArgument, "send: empty body"));
  return SubmitSend(to, std::move(body), std::nullopt, std::move(client_msg_id));
}

std::future<SendAck> Client::Impl::SendMedia(const Target& to, MediaSend media,
                                             std::string client_msg_id) {
  if (media.id.empty()) {
    return Failed<SendAck>(Error(errc::kInvalidArgument, "send: media without an id"));
  }
  return SubmitSend(to, {}, std::move(media), std::move(client_msg_id));
}

std::future<SendAck> Client::Impl::SubmitSend(const Target& to, std::string body,
                                              std::optional<MediaSend> media,
                                              std::string client_msg_id) {
  if (!to.is_chat() && to.user.empty()) {
    return Failed<SendAck>(Error(errc::kInvalidArgument, "send: no recipient"));
  }
  if (client_msg_id.empty()) client_msg_id = NewClientMsgId();
  if (client_msg_id.size() > 64) {
    return Failed<SendAck>(Error(errc::kInvalidArgument, "send: client_msg_id over 64 bytes"));
  }
  struct Payload {
    Target to;
    std::string body;
    std::optional<MediaSend> media;
    std::string client_msg_id;
  };
  auto payload = std::make_shared<const Payload>(
      Payload{to, std::move(body), std::move(media), client_msg_id});
  auto promise = std::make_shared<std::promise<SendAck>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kSend, "send", opts_.send_timeout, promise);
  op->encode = [payload](int64_t id) {
    return payload->media
               ? wire::EncodeSendMedia(id, payload->to, payload->client_msg_id, *payload->media)
               : wire::EncodeSend(id, payload->to, payload->client_msg_id, payload->body);
  };
  op->on_ok = [this, payload, promise](const json::value& v) {
    SendAck ack = wire::DecodeSendAck(v);
    ack.client_msg_id = payload->client_msg_id;
    OnOwnAck(ack, payload->to, payload->body, payload->media.has_value());
    promise->set_value(std::move(ack));
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<HistoryPage> Client::Impl::History(const Target& chat,
                                               std::optional<int64_t> before_seq, int limit) {
  if (!chat.is_chat() && chat.user.empty()) {
    return Failed<HistoryPage>(Error(errc::kInvalidArgument, "history: no chat or user"));
  }
  auto promise = std::make_shared<std::promise<HistoryPage>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "history", opts_.request_timeout, promise);
  op->encode = [chat, before_seq, limit](int64_t id) {
    return wire::EncodeHistory(id, chat, before_seq, limit);
  };
  op->on_ok = [this, promise](const json::value& v) {
    HistoryPage page = wire::DecodeHistoryPage(v);
    for (const Message& m : page.messages) Learn(m);
    promise->set_value(std::move(page));
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<HistoryPage> Client::Impl::HistoryAfter(const Target& chat, int64_t after_seq,
                                                    int limit) {
  if (!chat.is_chat() && chat.user.empty()) {
    return Failed<HistoryPage>(Error(errc::kInvalidArgument, "history: no chat or user"));
  }
  auto promise = std::make_shared<std::promise<HistoryPage>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "history", opts_.request_timeout, promise);
  op->encode = [chat, after_seq, limit](int64_t id) {
    return wire::EncodeHistoryAfter(id, chat, after_seq, limit);
  };
  op->on_ok = [promise](const json::value& v) { promise->set_value(wire::DecodeHistoryPage(v)); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<json::value> Client::Impl::Request(std::string type, json::object fields) {
  if (type.empty()) return Failed<json::value>(Error(errc::kInvalidArgument, "request: no type"));
  auto promise = std::make_shared<std::promise<json::value>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kOnce, type, opts_.request_timeout, promise);
  auto shared = std::make_shared<const json::object>(std::move(fields));
  op->encode = [type, shared](int64_t id) { return wire::EncodeRequest(id, type, *shared); };
  op->on_ok = [promise](const json::value& v) { promise->set_value(v); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<ChatList> Client::Impl::Chats(int limit, std::string cursor) {
  auto promise = std::make_shared<std::promise<ChatList>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "chats", opts_.request_timeout, promise);
  op->encode = [limit, cursor = std::move(cursor)](int64_t id) {
    return wire::EncodeChats(id, limit, cursor);
  };
  op->on_ok = [this, promise](const json::value& v) {
    ChatList list = wire::DecodeChatList(v);
    for (const ChatSummary& c : list.chats) {
      chat_peer_[c.chat_id] = c.kind == "group" ? std::string() : c.peer;
      NoteDeliveredSeq(c.chat_id, c.delivered_seq);
    }
    if (opts_.receive_updates) {
      seq_.NotePts(list.pts);
      MaybeSync();
    }
    promise->set_value(std::move(list));
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<SyncResult> Client::Impl::Sync(std::optional<int64_t> pts, int limit) {
  auto promise = std::make_shared<std::promise<SyncResult>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "sync", opts_.request_timeout, promise);
  op->encode = [pts, limit](int64_t id) { return wire::EncodeSync(id, pts, limit); };
  op->on_ok = [promise](const json::value& v) { promise->set_value(wire::DecodeSyncResult(v)); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<int64_t> Client::Impl::Ping() {
  auto promise = std::make_shared<std::promise<int64_t>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "ping", opts_.request_timeout, promise);
  op->encode = [](int64_t id) { return wire::EncodePing(id); };
  op->on_ok = [promise](const json::value& v) { promise->set_value(wire::DecodePingResult(v)); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<MarkResult> Client::Impl::Mark(const Target& chat, std::string kind,
                                           std::optional<int64_t> seq) {
  std::string name = "mark_" + kind;
  if (!chat.is_chat() && chat.user.empty()) {
    return Failed<MarkResult>(Error(errc::kInvalidArgument, name + ": no chat or user"));
  }
  if (seq && *seq < 1) {
    return Failed<MarkResult>(Error(errc::kInvalidArgument, name + ": seq must be at least 1"));
  }
  auto promise = std::make_shared<std::promise<MarkResult>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, name, opts_.request_timeout, promise);
  bool read = kind == "read";
  op->encode = [chat, seq, read](int64_t id) {
    return read ? wire::EncodeMarkRead(id, chat, seq) : wire::EncodeMarkDelivered(id, chat, *seq);
  };
  op->on_ok = [this, promise](const json::value& v) {
    MarkResult r = wire::DecodeMarkResult(v);
    NoteDeliveredSeq(r.chat_id, r.seq);  // reading implies delivered
    if (opts_.receive_updates && r.pts > 0) {
      seq_.NotePts(r.pts);  // our own receipt is in the log: a sync fetches it if no push does
      MaybeSync();
    }
    promise->set_value(std::move(r));
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<bool> Client::Impl::Typing(const Target& chat, TypingState state) {
  if (!chat.is_chat() && chat.user.empty()) {
    return Failed<bool>(Error(errc::kInvalidArgument, "typing: no chat or user"));
  }
  auto promise = std::make_shared<std::promise<bool>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kOnce, "typing", opts_.request_timeout, promise);
  op->encode = [chat, state](int64_t id) { return wire::EncodeTyping(id, chat, state); };
  op->on_ok = [promise](const json::value& v) { promise->set_value(wire::DecodeTypingResult(v)); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<std::vector<PresenceStatus>> Client::Impl::PresenceSubscribe(
    std::vector<std::string> users) {
  using Result = std::vector<PresenceStatus>;
  if (users.empty()) {
    return Failed<Result>(Error(errc::kInvalidArgument, "presence_subscribe: no users"));
  }
  auto promise = std::make_shared<std::promise<Result>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "presence_subscribe", opts_.request_timeout, promise);
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(users));
  op->encode = [shared](int64_t id) { return wire::EncodePresenceSubscribe(id, *shared); };
  op->on_ok = [this, shared, promise](const json::value& v) {
    Result statuses = wire::DecodePresenceResult(v);
    presence_subs_.insert(shared->begin(), shared->end());  // renewed after a reconnect
    promise->set_value(std::move(statuses));
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<void> Client::Impl::PresenceUnsubscribe(std::vector<std::string> users, bool all) {
  if (!all && users.empty()) {
    return Failed<void>(Error(errc::kInvalidArgument, "presence_unsubscribe: no users"));
  }
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "presence_unsubscribe", opts_.request_timeout, promise);
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(users));
  op->encode = [shared, all](int64_t id) {
    return wire::EncodePresenceUnsubscribe(id, *shared, all);
  };
  op->on_ok = [this, shared, all, promise](const json::value&) {
    if (all) {
      presence_subs_.clear();
    } else {
      for (const std::string& u : *shared) presence_subs_.erase(u);
    }
    promise->set_value();
  };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

std::future<UserSettings> Client::Impl::Settings(std::optional<std::string> presence) {
  auto promise = std::make_shared<std::promise<UserSettings>>();
  auto future = promise->get_future();
  OpPtr op = MakeOp(Op::Kind::kRequest, "settings", opts_.request_timeout, promise);
  op->encode = [presence](int64_t id) { return wire::EncodeSettings(id, presence); };
  op->on_ok = [promise](const json::value& v) { promise->set_value(wire::DecodeSettings(v)); };
  if (!Submit(op)) op->on_error(ClosedError());
  return future;
}

// ---------------------------------------------------------------- Client

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Client::~Client() { impl_->Stop(); }

void Client::Start() { impl_->Start(); }
void Client::Stop() { impl_->Stop(); }

std::future<SendAck> Client::Send(const Target& to, std::string body, std::string client_msg_id) {
  return impl_->Send(to, std::move(body), std::move(client_msg_id));
}

std::future<SendAck> Client::SendMedia(const Target& to, MediaSend media,
                                       std::string client_msg_id) {
  return impl_->SendMedia(to, std::move(media), std::move(client_msg_id));
}

std::future<HistoryPage> Client::History(const Target& chat, std::optional<int64_t> before_seq,
                                         int limit) {
  return impl_->History(chat, before_seq, limit);
}

std::future<HistoryPage> Client::HistoryAfter(const Target& chat, int64_t after_seq, int limit) {
  return impl_->HistoryAfter(chat, after_seq, limit);
}

std::future<boost::json::value> Client::Request(std::string type, boost::json::object fields) {
  return impl_->Request(std::move(type), std::move(fields));
}

std::future<ChatList> Client::Chats(int limit, std::string cursor) {
  return impl_->Chats(limit, std::move(cursor));
}

std::future<SyncResult> Client::Sync(std::optional<int64_t> pts, int limit) {
  return impl_->Sync(pts, limit);
}

std::future<int64_t> Client::Ping() { return impl_->Ping(); }

std::future<MarkResult> Client::MarkDelivered(const Target& chat, int64_t seq) {
  return impl_->Mark(chat, "delivered", seq);
}

std::future<MarkResult> Client::MarkRead(const Target& chat, std::optional<int64_t> seq) {
  return impl_->Mark(chat, "read", seq);
}

std::future<bool> Client::Typing(const Target& chat, TypingState state) {
  return impl_->Typing(chat, state);
}

std::future<std::vector<PresenceStatus>> Client::PresenceSubscribe(std::vector<std::string> users) {
  return impl_->PresenceSubscribe(std::move(users));
}

std::future<void> Client::PresenceUnsubscribe(std::vector<std::string> users) {
  return impl_->PresenceUnsubscribe(std::move(users), false);
}

std::future<void> Client::PresenceUnsubscribeAll() { return impl_->PresenceUnsubscribe({}, true); }

std::future<UserSettings> Client::Settings(std::optional<std::string> presence) {
  return impl_->Settings(std::move(presence));
}

ConnectionState Client::state() const { return impl_->state(); }

std::optional<int64_t> Client::cursor() const { return impl_->cursor(); }

}  // namespace parley
