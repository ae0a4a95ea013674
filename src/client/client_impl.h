// Private: the state of parley::Client, shared by client.cpp (connection, requests, auth),
// client_updates.cpp (the update log) and client_requests.cpp (the public request methods).
// Everything below "I/O thread only" is touched only on the client's I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "parley/chat_sequencer.h"
#include "parley/client.h"
#include "parley/update_sequencer.h"
#include "parley/url.h"
#include "ws_connection.h"

namespace parley {
namespace detail {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline constexpr milliseconds kTick{50};          // granularity of timeouts and retries
inline constexpr milliseconds kStopGrace{2000};   // close handshake budget in Stop()
inline constexpr milliseconds kRetryDelay{1000};  // retryable error without retry_after_ms
inline constexpr milliseconds kSyncRetryDelay{1000};
inline constexpr milliseconds kSyncErrorDelay{5000};  // after a non-retryable sync error
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr int kLargeFetchLimit = 200;  // history page size for large-group catch-up
// auto_delivered: at most this many mark_delivered per batch (the rest waits for the next),
// so that a snapshot or a long catch-up stays well under the server's request rate limit.
inline constexpr size_t kMaxDeliveredPerBatch = 16;
// pts-less receipts (large groups) remembered to drop repeats; forgotten beyond this.
inline constexpr size_t kMaxLargeReceipts = 100000;

// One request to the server, possibly sent several times.
struct Op {
  // kRequest: idempotent reads, resent after a reconnect. kSend: resent with its
  // client_msg_id. kOnce: sent at most once (Client::Request); fails with "disconnected" when
  // its connection ends before the answer. kInternal: auth, sync, fetches: one connection.
  enum class Kind { kRequest, kSend, kOnce, kInternal };
  Kind kind = Kind::kRequest;
  std::string name;  // "send", "history", ... (for error messages)
  std::function<std::string(int64_t id)> encode;
  std::function<void(const boost::json::value& result)> on_ok;  // may throw Error
  std::function<void(const Error& error)> on_error;
  Clock::time_point deadline;                                     // give up after this
  Clock::time_point attempt_deadline = Clock::time_point::max();  // resend a send after this
  std::optional<Clock::time_point> retry_at;                      // after a retryable error
  uint64_t sent_on = 0;  // connection generation of the last send
  bool done = false;

  // User requests survive reconnects; auth and sync belong to one connection.
  bool resendable() const { return kind == Kind::kRequest || kind == Kind::kSend; }
  // May go out now: resendable, or a kOnce request that has not been sent yet.
  bool sendable() const { return resendable() || (kind == Kind::kOnce && sent_on == 0); }
};
using OpPtr = std::shared_ptr<Op>;

}  // namespace detail

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  using Clock = detail::Clock;
  using Op = detail::Op;
  using OpPtr = detail::OpPtr;

  explicit Impl(ClientOptions options)
      : opts_(std::move(options)),
        ws_url_(WebSocketUrl(ParseUrl(opts_.server_url))),
        backoff_(opts_.backoff),
        backoff_timer_(ioc_),
        tick_timer_(ioc_),
        stop_timer_(ioc_) {
    if (opts_.token.empty()) throw Error(errc::kInvalidArgument, "ClientOptions::token is empty");
    if (opts_.sync_page_limit < 1) opts_.sync_page_limit = 1;
  }

  ~Impl() {
    if (thread_.joinable()) thread_.detach();  // only when destroyed on its own thread
  }

  void Start();
  void Stop();
  bool Submit(OpPtr op);  // false when the client is not running (op not taken)
  Error ClosedError() const;

  // Request builders (called on the caller's thread).
  std::future<SendAck> Send(const Target& to, std::string body, std::string client_msg_id);
  std::future<SendAck> SendMedia(const Target& to, MediaSend media, std::string client_msg_id);
  std::future<HistoryPage> HistoryAfter(const Target& chat, int64_t after_seq, int limit);
  std::future<boost::json::value> Request(std::string type, boost::json::object fields);
  std::future<HistoryPage> History(const Target& chat, std::optional<int64_t> before_seq,
                                   int limit);
  std::future<ChatList> Chats(int limit, std::string cursor);
  std::future<SyncResult> Sync(std::optional<int64_t> pts, int limit);
  std::future<int64_t> Ping();
  std::future<MarkResult> Mark(const Target& chat, std::string kind, std::optional<int64_t> seq);
  std::future<bool> Typing(const Target& chat, TypingState state);
  std::future<std::vector<PresenceStatus>> PresenceSubscribe(std::vector<std::string> users);
  std::future<void> PresenceUnsubscribe(std::vector<std::string> users, bool all);
  std::future<UserSettings> Settings(std::optional<std::string> presence);

  ConnectionState state() const { return state_.load(); }
  std::optional<int64_t> cursor() const {
    int64_t v = cursor_value_.load();
    return v < 0 ? std::nullopt : std::optional<int64_t>(v);
  }

 private:
  // ---- I/O thread only from here on.
  boost::asio::awaitable<void> Run();
  boost::asio::awaitable<void> ConnectOnce();
  void OnConnectionEnded(const detail::CloseInfo& info, bool opened);
  void Shutdown();
  void DoStop();
  void StartTick();

  void Enqueue(OpPtr op);
  void Transmit(const OpPtr& op);
  void Pump();
  void OnFrame(std::string_view text);
  void Complete(const OpPtr& op, const boost::json::value& result);
  void Fail(const OpPtr& op, const Error& error);
  Error TimeoutError(const Op& op) const;

  void SendAuth();
  void OnAuthenticated(const AuthInfo& auth);
  void OnAuthFailed(const Error& error);

  void MaybeSync();
  void RefreshChats();  // after auth: which chats are large, and how far they are
  void MaybeFetchLarge();
  void OnLargeMessages(const std::vector<Message>& messages);
  void OnLogEvent(const Message& m);  // an event in the update log (group became large, ...)
  void OnSyncResult(const SyncResult& result);
  // A send of ours was acked: apply the message (a text rebuilt from the request; a media
  // message, whose descriptor only the server knows, fetched by a sync or a history page).
  void OnOwnAck(const SendAck& ack, const Target& to, const std::string& body, bool media);
  // Text or media (exactly one of body and media).
  std::future<SendAck> SubmitSend(const Target& to, std::string body,
                                  std::optional<MediaSend> media, std::string client_msg_id);
  void Deliver(const std::vector<Update>& updates);
  void SaveCursor(int64_t pts);
  void Learn(const Message& m);

  void OnReceiptPush(Update update);  // a `receipt` push, with or without pts
  void OnTyping(const TypingEvent& event);
  void OnPresence(const std::vector<PresenceStatus>& presence);
  void Resubscribe();  // presence subscriptions again on a new connection
  // auto_delivered: note an applied message; MaybeMarkDelivered() sends the batch when due
  // (force: now, e.g. before closing).
  void NoteDelivered(const Message& m);
  void MaybeMarkDelivered(bool force = false);
  // The server says our delivered position in a chat is `seq`: no mark up to it is needed.
  void NoteDeliveredSeq(int64_t chat_id, int64_t seq);

  void SetState(ConnectionEvent event);
  void ReportError(const Error& error);
  template <class Fn, class... Args>
  void Notify(const Fn& fn, const Args&... args);

  ClientOptions opts_;
  Url ws_url_;
  boost::asio::io_context ioc_{1};
  std::thread thread_;
  std::mutex join_mu_;

  mutable std::mutex mu_;  // guards the four below
  bool started_ = false;
  bool stop_requested_ = false;
  bool closed_ = false;  // Run() has finished: requests fail at once
  std::optional<Error> closed_error_;

  std::atomic<ConnectionState> state_{ConnectionState::kConnecting};
  std::atomic<int64_t> cursor_value_{-1};

  // I/O thread state.
  bool stopping_ = false;
  bool shut_down_ = false;
  std::optional<Error> fatal_;  // ends the client: auth failed, token revoked
  std::shared_ptr<detail::WsConnection> conn_;
  uint64_t conn_gen_ = 0;
  bool online_ = false;  // authenticated on conn_
  std::optional<AuthInfo> auth_;
  int64_t next_id_ = 1;
  std::list<OpPtr> ops_;                         // unfinished requests, including auth and sync
  std::unordered_map<int64_t, OpPtr> inflight_;  // request id on conn_ -> op
  OpPtr auth_op_;
  OpPtr sync_op_;
  UpdateSequencer seq_;
  ChatSequencer large_;  // large groups: per-chat seq instead of pts
  Clock::time_point large_not_before_{};
  Clock::time_point sync_not_before_{};
  Backoff backoff_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer stop_timer_;
  std::unordered_map<int64_t, std::string> chat_peer_;  // chat -> the other member; "" = group
  std::set<std::string> presence_subs_;                 // acknowledged presence subscriptions
  // auto_delivered: per chat the highest applied seq and whether it was our own message,
  // until the batch goes out at delivered_due_; and the highest seq sent per chat.
  struct Applied {
    int64_t seq = 0;
    bool own = false;
  };
  std::map<int64_t, Applied> delivered_batch_;
  std::unordered_map<int64_t, int64_t> delivered_sent_;
  std::optional<Clock::time_point> delivered_due_;
  bool delivered_unsupported_ = false;  // the server answered mark_delivered unknown_type
  // pts-less receipts: (chat, user, kind) -> highest seq reported.
  std::map<std::tuple<int64_t, std::string, std::string>, int64_t> large_receipts_;
  std::string last_code_;  // why the last connection ended
  std::string last_error_;
  int last_close_code_ = 0;
  std::string abort_reason_;  // set before we abort a connection ourselves
};

// Calls a user callback; what it throws goes to on_error.
template <class Fn, class... Args>
inline void Client::Impl::Notify(const Fn& fn, const Args&... args) {
  if (!fn) return;
  try {
    fn(args...);
  } catch (const std::exception& e) {
    ReportError(Error("callback_failed", e.what()));
  } catch (...) {
    ReportError(Error("callback_failed", "a callback threw a non-exception"));
  }
}

}  // namespace parley
