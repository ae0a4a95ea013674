// Plain structs for what the server sends and what the client asks for (PROTOCOL.md §3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley {

// A thumbnail the server made of an image (docs/MEDIA.md, "Inspection and thumbnails"): a
// baseline JPEG, itself a media object that can be downloaded by its id. In a message only
// id, width and height are given; an upload result also has type and size.
struct MediaThumbnail {
  std::string id;
  std::string type;  // "image/jpeg"; empty when not given
  int64_t size = 0;  // bytes; 0 when not given
  int64_t width = 0;
  int64_t height = 0;

  friend bool operator==(const MediaThumbnail&, const MediaThumbnail&) = default;
};

// The answer to an upload, POST /v1/media (docs/MEDIA.md, "HTTP API"). Everything in it was
// worked out by the server from the bytes; nothing the client declared is trusted.
struct MediaInfo {
  std::string id;     // lowercase hex SHA-256 of the bytes (64 characters)
  std::string type;   // the detected MIME type, e.g. "image/png"
  std::string kind;   // "image", "video", "audio" or "file"
  int64_t size = 0;   // bytes
  int64_t width = 0;  // images: as displayed; 0 otherwise
  int64_t height = 0;
  std::optional<MediaThumbnail> thumbnail;  // images the server could make one of

  friend bool operator==(const MediaInfo&, const MediaInfo&) = default;
};

// The media descriptor of a message of kind "media" (docs/MEDIA.md, "Media messages"): filled
// in by the server from the upload, plus the name and caption the sender gave.
struct MediaRef {
  std::string id;
  std::string type;  // detected MIME type
  std::string kind;  // "image", "video", "audio" or "file"
  int64_t size = 0;
  std::string name;   // file name to show (sanitized by the server); may be empty
  int64_t width = 0;  // images; 0 otherwise
  int64_t height = 0;
  std::string caption;  // may be empty
  std::optional<MediaThumbnail> thumbnail;

  friend bool operator==(const MediaRef&, const MediaRef&) = default;
};

// What a sender says about an uploaded object in a media message (`media` of a `send`).
struct MediaSend {
  std::string id;       // required: an object the sender uploaded or may already read
  std::string name;     // optional: the file name to show
  std::string caption;  // optional: UTF-8, at most limits.max_message_bytes
};

// POST /v1/media/{id}/url: a URL anyone may GET until expires_at. `url` is relative to the
// server's origin ("/v1/media/<id>?exp=...&sig=...").
struct SignedMediaUrl {
  std::string url;
  int64_t expires_at = 0;  // Unix seconds
};

// A chat message (PROTOCOL.md §3.4). Group changes are messages of kind "event": their
// `event` holds the event object as compact JSON text (§3.9) and their body is empty. Media
// messages are of kind "media": `media` holds the descriptor and the body is empty.
struct Message {
  int64_t chat_id = 0;
  int64_t seq = 0;
  std::string message_id;  // decimal digits (64-bit Snowflake id)
  std::string sender;
  std::string to;  // the other member of a direct chat; empty in groups
  std::string kind = "text";
  std::string body;
  int64_t ts = 0;                 // ms since the Unix epoch
  std::string client_msg_id;      // may be empty
  std::string event;              // kind "event": {"event":"members_added","by":"alice",...}
  std::optional<MediaRef> media;  // kind "media"

  friend bool operator==(const Message&, const Message&) = default;
};

// A read or delivered position that moved (§3.11): `user` has read (or received) chat
// `chat_id` up to `seq`.
struct Receipt {
  int64_t chat_id = 0;
  std::string user;  // whose position moved
  std::string kind;  // "read" or "delivered"
  int64_t seq = 0;   // the new position
  int64_t ts = 0;    // ms since the Unix epoch; 0 when the server did not say
  bool operator==(const Receipt&) const = default;
};

// One entry of the user's update log. `message` is set for kind "message", `receipt` for the
// kinds "read" and "delivered" (§3.11); other kinds (later protocol versions) only advance
// the cursor. Pushes of large groups (messages, receipts) carry no pts: pts is 0 then.
struct Update {
  int64_t pts = 0;
  std::string kind = "message";
  std::optional<Message> message;
  std::optional<Receipt> receipt;
};

// Who a request is about: a user (direct chat, `to`/`with`) or a chat by id.
struct Target {
  std::string user;     // set for a user target
  int64_t chat_id = 0;  // set (> 0) for a chat target

  static Target User(std::string name) { return Target{std::move(name), 0}; }
  static Target Chat(int64_t id) { return Target{{}, id}; }
  bool is_chat() const { return chat_id > 0; }
};

// Result of a successful `auth` (§3.2).
struct AuthInfo {
  std::string user;
  std::string device_id;
  int64_t pts = 0;  // the user's current committed update position
};

// Result of `send` (§3.3).
struct SendAck {
  int64_t chat_id = 0;
  int64_t seq = 0;
  std::string message_id;
  int64_t ts = 0;
  int64_t pts = 0;  // 0 for a send to a large group (not in the update log)
  bool duplicate = false;
  std::string client_msg_id;  // the idempotency key the client used (not on the wire)
};

// One chat of a snapshot (§3.5).
struct SnapshotChat {
  int64_t chat_id = 0;
  std::string kind;  // "direct" or "group"
  std::string peer;  // direct chats
  std::string name;  // groups
  int64_t last_seq = 0;
  std::vector<Message> messages;  // oldest first
  bool has_more = false;          // older messages exist (page them with history)
  int64_t older = 0;              // how many: readable messages before messages.front()
};

// Result of `sync` (§3.5): either updates or, when `snapshot`, chats.
struct SyncResult {
  bool snapshot = false;
  bool limited = false;
  int64_t pts = 0;  // position after the last returned update
  std::vector<Update> updates;
  bool has_more = false;
  std::vector<SnapshotChat> chats;  // only in a snapshot; most recently active first
  // Only in a snapshot: chats left out because the server's storage that holds them cannot
  // be reached now (a cluster with a database shard down); ask for them later.
  std::vector<int64_t> unavailable;
};

// Result of `history` (§3.6).
struct HistoryPage {
  int64_t chat_id = 0;            // 0 when `with` names a user you have no chat with
  std::vector<Message> messages;  // oldest first
  bool has_more = false;          // older messages exist (before_seq) / newer ones (after_seq)
};

// Another member's positions in a group chat (`reads` of §3.7).
struct ReadPosition {
  std::string user;
  int64_t read_seq = 0;
  int64_t delivered_seq = 0;
  bool operator==(const ReadPosition&) const = default;
};

// One entry of `chats` (§3.7).
struct ChatSummary {
  int64_t chat_id = 0;
  std::string kind;      // "direct" or "group"
  std::string peer;      // direct chats
  std::string name;      // groups
  bool large = false;    // groups: messages come without pts (§3.4 "Large groups")
  bool member = true;    // groups: false once you left or were removed
  int64_t last_seq = 0;  // for a former member: the last seq you may read
  std::optional<Message> last_message;
  // Read state (§3.11); 0 when the server does not send it.
  int64_t unread = 0;    // messages (events included) after read_seq up to last_seq
  int64_t read_seq = 0;  // your own positions
  int64_t delivered_seq = 0;
  int64_t peer_read_seq = 0;  // direct chats: the peer's positions
  int64_t peer_delivered_seq = 0;
  std::vector<ReadPosition> reads;  // groups that are not large: the other active members
};

// Result of `chats` (§3.7).
struct ChatList {
  std::vector<ChatSummary> chats;  // newest activity first
  bool has_more = false;
  int64_t pts = 0;
  int64_t unread_total = 0;  // over all your chats, not only this page: the badge
  int64_t unread_chats = 0;  // chats with unread > 0, over all your chats
  std::string next_cursor;   // with has_more: pass to Chats() for the next page
  // Chats left out (and out of the unread counts) because the server's storage that holds
  // them cannot be reached now; ask again later.
  std::vector<int64_t> unavailable;
};

// Result of `mark_read` / `mark_delivered` (§3.11): your position after the request.
struct MarkResult {
  int64_t chat_id = 0;
  std::string kind;  // "read" or "delivered"
  int64_t seq = 0;
  bool advanced = false;  // false: it would not have moved forward; nothing was stored
  int64_t unread = 0;     // your unread count in the chat
  int64_t pts = 0;        // the receipt's position in your update log; 0 if it is not there
};

// `typing` (§3.12).
enum class TypingState { kStart, kStop };
const char* ToString(TypingState state);  // "start", "stop"

// A `typing` push: `user` started or stopped typing in `chat_id`.
struct TypingEvent {
  int64_t chat_id = 0;
  std::string user;
  TypingState state = TypingState::kStart;
  int64_t expires_ms = 0;  // start: how long it holds unless renewed; 0 when not given
  bool operator==(const TypingEvent&) const = default;
};

// One user's presence (§3.13), from `presence_subscribe` or a `presence` push.
struct PresenceStatus {
  std::string user;
  bool online = false;
  int64_t last_seen = 0;  // ms since the Unix epoch when offline; 0 when not given
  bool hidden = false;    // you may not see this user's presence (or it does not exist)
  bool operator==(const PresenceStatus&) const = default;
};

// `settings` (§3.14).
struct UserSettings {
  std::string presence;  // who sees your presence: "everyone", "contacts" or "nobody"
};

// Result of POST /v1/login (§2).
struct LoginResult {
  std::string user;
  std::string device_id;
  std::string token;
  // The user's update position just before the device was created: the device's first
  // cursor. Give it to ClientOptions::cursor (and save it), and the new device receives every
  // update since the login, in order, instead of a snapshot (PROTOCOL.md §2).
  int64_t pts = 0;
};

}  // namespace parley
