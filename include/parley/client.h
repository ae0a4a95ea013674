// parley::Client: a WebSocket client for parley.v1 (PROTOCOL.md §3) on its own I/O thread.
//
//   parley::ClientOptions options;
//   options.server_url = "http://127.0.0.1:8080";
//   options.token = login.token;
//   options.cursor_file = "/home/me/.local/state/app/cursor";
//   options.on_message = [](const parley::Message& m, int64_t pts) { ... };
//   parley::Client client(std::move(options));
//   client.Start();
//   parley::SendAck ack = client.Send(parley::Target::User("bob"), "hi bob").get();
//   client.Stop();
//
// Threading: every public method may be called from any thread; the work is posted to the
// client's I/O thread. Callbacks run on that thread, one at a time, in order: keep them short,
// and do not call Stop() or destroy the Client from inside one (Stop() from a callback only
// starts the shutdown; the destructor then must run on another thread).
//
// Delivery: the client keeps the local pts (the cursor) and applies the user's update log in
// order, exactly once (§3.4): on_message sees every message update once, in pts order,
// including this client's own sends; after each update on_cursor gets the new cursor (and the
// cursor file is rewritten) so a restart resumes where it stopped. A new device starts at the
// cursor its login gave (LoginResult::pts); a device without any cursor first gets a
// snapshot (§3.5) through on_snapshot. Receipt updates (§3.11) advance the cursor
// the same way and reach on_receipt; update kinds this version does not know only advance it.
//
// Receipts: with auto_delivered (the default) the client tells the server what it received:
// after applying messages of other users (pushes, sync pages, snapshots) it sends, after a
// short delay that batches them, one mark_delivered per chat for the highest seq. Reading is
// the application's call: MarkRead().
//
// Reconnect: a lost connection is reopened with exponential backoff and jitter; then the
// client authenticates again, syncs from its cursor and resends unanswered requests. Sends
// keep their client_msg_id across retries, so a retry never duplicates a message (§3.3).
// Authentication failures (close 4001) and logout (close 4003) are final: state kClosed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "parley/backoff.h"
#include "parley/error.h"
#include "parley/types.h"

namespace parley {

enum class ConnectionState {
  kConnecting,  // resolving, connecting, WebSocket handshake, auth
  kOnline,      // authenticated; requests are sent
  kWaiting,     // disconnected; reconnecting after ConnectionEvent::retry_in
  kClosed,      // final: Stop() was called, or authentication failed / token revoked
};
const char* ToString(ConnectionState state);

struct ConnectionEvent {
  ConnectionState state = ConnectionState::kConnecting;
  // Why the previous connection ended or why the client closed: empty, or an error code
  // ("connection_failed", "disconnected", "unauthorized", "token_expired", "token_revoked",
  // "timeout", ...) and a human message.
  std::string code;
  std::string message;
  int close_code = 0;                     // WebSocket close code from the server, 0 if none
  std::chrono::milliseconds retry_in{0};  // kWaiting: delay before the next attempt
  std::optional<AuthInfo> auth;           // kOnline: who we are and the server's pts
};

struct ClientOptions {
  // http://host:port[/prefix] (the WebSocket is at /v1/ws below it) or a ws:// URL.
  std::string server_url = "http://127.0.0.1:8080";
  std::string token;  // login token or JWT

  // Update tracking. false: no sync, pushes are ignored (one-shot tools that only send/read).
  bool receive_updates = true;
  // Initial cursor; ignored if cursor_file holds one. A device made by Login() (or a device
  // link) starts at LoginResult::pts: it then receives every update since its login. nullopt:
  // a device that has no cursor gets a snapshot first (recent chats; SnapshotChat::older says
  // what History() can page), unless start_at_first_auth.
  std::optional<int64_t> cursor;
  // Without a cursor, take the first auth's pts as the cursor instead of asking for a
  // snapshot: for a device that is created by that auth (a JWT naming a new device), which
  // then receives everything after it as updates.
  bool start_at_first_auth = false;
  // If set, the cursor is read from this file at Start() and rewritten after every update.
  std::string cursor_file;
  int sync_page_limit = 100;  // `limit` of each sync request
  // Send mark_delivered (§3.11) for the messages of other users this client applied: one per
  // chat for the highest seq, after auto_delivered_delay (which batches what arrives
  // meanwhile). A chat whose highest applied message is this user's own is skipped (sending
  // moved the position already). Needs receive_updates.
  bool auto_delivered = true;
  std::chrono::milliseconds auto_delivered_delay{100};

  std::chrono::milliseconds connect_timeout{10000};  // TCP connect + WebSocket handshake
  std::chrono::milliseconds request_timeout{10000};  // answer to one request (and to auth)
  std::chrono::milliseconds send_timeout{60000};     // give up a send after this (all retries)
  std::chrono::milliseconds idle_timeout{30000};     // ping when idle; drop after this silence
  BackoffPolicy backoff;                             // reconnect delays
  size_t max_frame_bytes = 64 << 20;                 // largest server frame accepted
  std::string user_agent = "libparley/0.1";

  // Callbacks, all on the client's I/O thread. Exceptions they throw are caught and reported
  // to on_error.
  // Every message once: update-log messages in pts order; messages of large groups (not in
  // the log, §3.4) with pts 0, in seq order per chat.
  std::function<void(const Message& message, int64_t pts)> on_message;
  std::function<void(const SyncResult& snapshot)> on_snapshot;  // chats of a snapshot sync
  // Every receipt once (§3.11): update-log receipts in pts order (also this user's own reads,
  // for its other devices); receipts of large groups (pushed without pts) with pts 0, only
  // when they move a position further than the last one seen. Needs receive_updates.
  std::function<void(const Receipt& receipt, int64_t pts)> on_receipt;
  // Typing pushes (§3.12) and presence pushes (§3.13), whatever receive_updates says. After a
  // reconnect the client subscribes to presence again and reports the current state of every
  // subscribed user through on_presence (it may have changed while the connection was down).
  std::function<void(const TypingEvent& event)> on_typing;
  std::function<void(const std::vector<PresenceStatus>& presence)> on_presence;
  std::function<void(int64_t pts)> on_cursor;  // after each applied update / snapshot
  std::function<void(const ConnectionEvent& event)> on_state;
  std::function<void(const Error& error)> on_error;  // non-fatal problems (bad frames, ...)
};

class Client {
 public:
  explicit Client(ClientOptions options);  // throws Error for a bad server_url
  ~Client();                               // Stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the I/O thread and connects. Call once.
  void Start();
  // Closes the connection with 1000, fails unfinished requests with "stopped", joins the I/O
  // thread. Idempotent.
  void Stop();

  // Sends `body` as a text message. client_msg_id: the idempotency key, generated (16 random
  // bytes, hex) when empty. The request is resent with the same key after a reconnect or a
  // request_timeout without answer, until acked or send_timeout. The future holds the ack or
  // a parley::Error (a server code such as "not_found", or "timeout", "stopped", ...).
  std::future<SendAck> Send(const Target& to, std::string body, std::string client_msg_id = {});
  // Sends a media message (docs/MEDIA.md "Media messages") for an object uploaded with
  // UploadMedia() (http_api.h), or one this user may already read (forwarding): media.id is
  // required, name and caption optional. Retried and idempotent exactly like Send(). The
  // server fills in the descriptor (type, size, dimensions, thumbnail); with receive_updates
  // the client fetches the stored message through a sync (it cannot rebuild it from the
  // request) and reports it through on_message like any own send. Errors: "not_found" (no
  // such object, or one this user may not read), "bad_request", "too_large" (caption).
  std::future<SendAck> SendMedia(const Target& to, MediaSend media, std::string client_msg_id = {});
  // Messages of a chat with seq < before_seq (nullopt: the newest), oldest first (§3.6).
  std::future<HistoryPage> History(const Target& chat, std::optional<int64_t> before_seq = {},
                                   int limit = 50);
  // Messages of a chat with seq > after_seq, oldest first; has_more if newer ones remain.
  std::future<HistoryPage> HistoryAfter(const Target& chat, int64_t after_seq, int limit = 50);
  // The user's chats, most recent activity first (§3.7); `cursor`: the next_cursor of the
  // previous page (empty: the first page).
  std::future<ChatList> Chats(int limit = 100, std::string cursor = {});
  // Any other request, e.g. group_create (§3.9): {"type":type,"id":..} plus `fields`; the
  // future holds the `result`. Sent at most once: if its connection closes before the answer
  // the future fails with "disconnected" (it may or may not have been applied).
  std::future<boost::json::value> Request(std::string type, boost::json::object fields = {});
  // A raw sync request (§3.5). It does not touch the client's own cursor or callbacks.
  std::future<SyncResult> Sync(std::optional<int64_t> pts, int limit = 100);
  // Application-level ping (§3.10); the server's ts.
  std::future<int64_t> Ping();

  // Receipts (§3.11): your delivered / read position in a chat (Target::User: the direct
  // chat). MarkRead without seq: up to the chat's last message. Positions only move forward:
  // one that would not is answered advanced = false with the current position. Resent after
  // a reconnect, like reads.
  std::future<MarkResult> MarkDelivered(const Target& chat, int64_t seq);
  std::future<MarkResult> MarkRead(const Target& chat, std::optional<int64_t> seq = {});
  // Typing (§3.12): start (renew every few seconds while the user types) or stop. The future
  // holds `forwarded`. Sent at most once (a stale typing state is not worth resending).
  std::future<bool> Typing(const Target& chat, TypingState state);
  // Presence (§3.13): adds users to this client's subscriptions and returns their current
  // state; changes then arrive through on_presence. Subscriptions are kept across reconnects.
  std::future<std::vector<PresenceStatus>> PresenceSubscribe(std::vector<std::string> users);
  std::future<void> PresenceUnsubscribe(std::vector<std::string> users);
  std::future<void> PresenceUnsubscribeAll();
  // Settings (§3.14): with presence ("everyone", "contacts", "nobody") changes who sees your
  // presence; without, just reads. The future holds the settings after the request.
  std::future<UserSettings> Settings(std::optional<std::string> presence = {});

  ConnectionState state() const;
  // The local pts (last applied update); nullopt before the first sync of a new device.
  std::optional<int64_t> cursor() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

// 16 random bytes as 32 lowercase hex digits.
std::string NewClientMsgId();

}  // namespace parley
