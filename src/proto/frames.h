// parley.v1 frames: parsing and validating client requests, serializing responses and
// pushes (docs/PROTOCOL.md §3). Pure functions, no I/O.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/errc.h"
#include "store/types.h"

namespace parley::proto {

enum class RequestType {
  auth,
  send,
  sync,
  history,
  chats,
  ping,
  group,
  group_info,
  mark,
  typing,
  presence,
  settings,
  push,
  mute
};

struct AuthRequest {
  std::string token;
  bool batch = false;  // the client reads messages holding several frames (§3.1)
};
// A media attachment of a send (docs/MEDIA.md, "Media messages"): what the client may say;
// the server fills in the rest from the upload.
struct MediaSend {
  std::string id;       // the object's SHA-256 hex (validated)
  std::string name;     // file name to show; sanitized by the server
  std::string caption;  // may be empty
};
struct SendRequest {
  std::string to;
  uint64_t chat_id = 0;
  std::string client_msg_id;
  std::string body;                // text messages
  std::optional<MediaSend> media;  // media messages (then body is empty)
};
struct SyncRequest {
  std::optional<uint64_t> pts;
  uint32_t limit = 100;
};
struct HistoryRequest {
  uint64_t chat_id = 0;
  std::string with;
  uint64_t before_seq = 0;
  std::optional<uint64_t> after_seq =
      std::nullopt;  // set: page forwards from it (0 = from the start)
  uint32_t limit = 50;
};
// Every group_* request but group_info; `op` says which (docs/PROTOCOL.md §3.9).
struct GroupRequest {
  store::GroupOp op = store::GroupOp::create;
  uint64_t chat_id = 0;
  std::string name;
  std::vector<std::string> users;
  bool full_history = false;
};
struct GroupInfoRequest {
  uint64_t chat_id = 0;
};
struct ChatsRequest {
  uint32_t limit = 100;
  store::ChatListCursor cursor;  // "cursor": where the previous page ended
};
struct PingRequest {};
// mark_read / mark_delivered (docs/PROTOCOL.md §3.11).
struct MarkRequest {
  store::UpdateKind kind = store::UpdateKind::read;
  uint64_t chat_id = 0;
  std::string with;
  std::optional<uint64_t> seq;  // mark_read may leave it out: the last message
};
struct TypingRequest {
  uint64_t chat_id = 0;
  std::string with;
  bool start = true;
};
// presence_subscribe / presence_unsubscribe (§3.13).
struct PresenceRequest {
  bool subscribe = true;
  std::vector<std::string> users;
  bool all = false;  // unsubscribe from everyone
};
struct SettingsRequest {
  std::optional<store::PresenceVisibility> presence;  // unset fields are left as they are
  std::optional<int64_t> dnd_until;                   // ms; 0 = off
  std::optional<bool> push_preview;
  bool changes() const { return presence || dnd_until || push_preview; }
};
// push_register / push_unregister for the connection's device (docs/PUSH.md).
struct PushRequest {
  bool register_target = true;
  store::PushProvider provider = store::PushProvider::webhook;
  std::string token;
  std::string app_id;
};
// Mutes a chat's push notifications for the user until `until` (ms; 0 unmutes; -1 ever).
struct MuteRequest {
  uint64_t chat_id = 0;
  std::string with;
  int64_t until = 0;
};

using RequestBody =
    std::variant<AuthRequest, SendRequest, SyncRequest, HistoryRequest, ChatsRequest, PingRequest,
                 GroupRequest, GroupInfoRequest, MarkRequest, TypingRequest, PresenceRequest,
                 SettingsRequest, PushRequest, MuteRequest>;

struct Request {
  uint64_t id = 0;
  RequestType type = RequestType::ping;
  RequestBody body;
};

// The bounds parsing enforces (from LimitsConfig).
struct ParseLimits {
  uint32_t max_message_bytes = 4096;
  uint32_t max_sync_page = 1000;
  uint32_t max_history_page = 200;
  uint32_t max_chats_page = 500;
  uint32_t max_group_name_bytes = 128;
  uint32_t max_users_per_request = 1000;
};

// A request that could not be accepted; id is known when the frame got that far.
struct RequestError {
  std::optional<uint64_t> id;
  Error error;
};

std::variant<Request, RequestError> parse_request(std::string_view text, const ParseLimits& limits);

// The requests of one WebSocket message (§3.1): JSON texts separated by a newline outside
// any string and outside any object or array, so that a pretty-printed object is one
// request. Pieces holding only whitespace are skipped (a message of nothing else is one
// piece); a malformed text stays one piece (parse_request then says why). Calls `each` with
// every piece in order.
void split_requests(std::string_view message, const std::function<void(std::string_view)>& each);

// Serialization. `result` is a JSON object text (e.g. from serialize_*).
std::string ok_frame(uint64_t id, std::string_view result_json);
std::string error_frame(std::optional<uint64_t> id, const Error& error,
                        std::optional<uint64_t> retry_after_ms = std::nullopt);
std::string message_json(const store::Message& m);
std::string message_push(uint64_t pts, std::string_view message_json);

std::string send_result_json(const store::AppendResult& r);
// Pages (sync, history, chats) stop early once the answer would grow past `max_bytes`
// (limits.max_response_bytes), keeping at least one item, and then say has_more: one answer
// always fits in what a connection may queue (docs/PROTOCOL.md §3.1). A cut sync page ends
// at its last update's pts; a cut history page keeps the messages nearest to where it
// started (before_seq: the newest, after_seq: the oldest); a cut snapshot keeps every chat
// and the newest messages of each, taken in turns, and counts the rest in `older`.
std::string updates_json(const store::UpdatesPage& page, size_t max_bytes);
std::string snapshot_json(const store::Snapshot& snap, bool limited, size_t max_bytes);
std::string history_json(const store::HistoryPage& page, bool forwards, size_t max_bytes);
std::string chats_json(const store::ChatList& list, size_t max_bytes);
// The chat list's cursor on the wire ("<last_ts>.<chat_id>"), and back; nullopt if malformed.
std::string chat_cursor(const store::ChatListCursor& c);
std::optional<store::ChatListCursor> parse_chat_cursor(std::string_view s);
std::string group_result_json(const store::GroupResult& r);
std::string group_info_json(const store::ChatInfo& info);
std::string chat_push(std::string_view message_json);  // large groups: no pts

// Receipts, typing, settings (§3.11–3.14).
std::string receipt_json(const store::Receipt& r);
// pts 0: a large group's receipt, pushed without pts.
std::string receipt_push(uint64_t pts, std::string_view receipt_json);
std::string mark_result_json(const store::ReceiptResult& r);
std::string typing_push(uint64_t chat_id, std::string_view user, bool start, uint32_t expires_ms);
std::string_view visibility_name(store::PresenceVisibility v);
std::optional<store::PresenceVisibility> parse_visibility(std::string_view name);
std::string settings_json(const store::UserSettings& s);

}  // namespace parley::proto
