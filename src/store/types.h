// Records that cross the Store seam. Plain values; no backend types leak through here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::store {

using UserId = std::string;
using ChatId = uint64_t;

enum class ChatKind : uint8_t { direct = 1, group = 2 };
// media: `body` is the JSON media descriptor (docs/MEDIA.md, "Media messages").
enum class MessageKind : uint8_t { text = 1, event = 2, media = 3 };
// Group roles, weakest first (docs/GROUPS.md has the table of who may do what).
enum class Role : uint8_t { member = 1, admin = 2, owner = 3 };
// Kinds of update-log entries: a message, or a receipt (a user's read or delivered
// position in a chat moved forward).
enum class UpdateKind : uint8_t { message = 1, read = 2, delivered = 3 };
// Who may see a user's presence (docs/PROTOCOL.md §3.13).
enum class PresenceVisibility : uint8_t { everyone = 0, contacts = 1, nobody = 2 };

struct UserRecord {
  UserId id;
  std::string password_hash;  // argon2id string; empty for users created from a JWT
  int64_t created_at = 0;
};

struct DeviceRecord {
  UserId user;
  std::string device_id;
  std::string name;
  std::string token_hash;  // SHA-256 of the token; the token itself is never stored
  int64_t created_at = 0;
  bool revoked = false;
};

struct Message {
  ChatId chat_id = 0;
  uint64_t seq = 0;
  uint64_t message_id = 0;
  int64_t ts = 0;
  UserId sender;
  UserId to;  // the other member of a direct chat
  MessageKind kind = MessageKind::text;
  std::string body;  // text; for events a JSON object describing the event
  std::string client_msg_id;
};

// What the sender asks for; the store assigns chat (for to_user), seq, message_id and pts.
struct AppendRequest {
  UserId sender;
  UserId to_user;      // direct chat with this user (created on first message), or
  ChatId chat_id = 0;  // an existing chat the sender is a member of
  MessageKind kind = MessageKind::text;
  std::string body;
  std::string client_msg_id;
  int64_t ts = 0;           // acceptance time, set by the caller
  uint64_t message_id = 0;  // set by the caller (Snowflake)
  // Media objects the message refers to (kind media: the object and its thumbnail). Each
  // must have a MediaRecord (else not_found, nothing stored); the append records a
  // reference (id, sender, chat) in the same commit, which keeps the object from
  // housekeeping and lets the chat's members download it.
  std::vector<std::string> media_ids;
};

// One member's new update-log entry for an appended message.
struct Delivery {
  UserId user;
  uint64_t pts = 0;
};

struct AppendResult {
  Message message;
  uint64_t sender_pts = 0;
  bool duplicate = false;            // an earlier append with the same client_msg_id
  std::vector<Delivery> deliveries;  // members whose update log got it (not for large groups)
  bool broadcast = false;  // a large group: deliver to the chat's subscribers, no per-user log
};

// Group management (docs/GROUPS.md). One request, one event message in the chat's seq.
enum class GroupOp : uint8_t {
  create,
  rename,
  add,
  remove,
  promote,
  demote,
  leave,
  transfer,
  remove_group,
  set_full_history
};

struct GroupLimits {
  uint32_t max_members = 1024;
  uint32_t max_groups_per_user = 1000;
  uint32_t large_threshold = 256;  // above this many members: fan-out on read
  uint32_t max_name_bytes = 128;
};

struct GroupRequest {
  GroupOp op = GroupOp::create;
  UserId actor;
  ChatId chat_id = 0;         // all but create
  std::string name;           // create, rename
  std::vector<UserId> users;  // create (initial members), add; [0]: remove/promote/demote/transfer
  bool flag = false;          // set_full_history
  int64_t ts = 0;
  uint64_t message_id = 0;  // of the event message
  GroupLimits limits;
};

struct Member {
  UserId user;
  Role role = Role::member;
  uint64_t joined_seq = 0;
  uint64_t left_seq = 0;  // 0 while a member
  // Receipt positions (group_info only; kept with the user's chat row, not here).
  uint64_t read_seq = 0;
  uint64_t delivered_seq = 0;
};

struct ChatInfo {
  ChatId chat_id = 0;
  ChatKind kind = ChatKind::group;
  std::string name;
  UserId created_by;
  int64_t created_at = 0;
  uint64_t last_seq = 0;
  uint32_t member_count = 0;
  bool large = false;
  bool full_history = false;
  std::vector<Member> members;  // active members (group_info only)
};

struct GroupResult {
  ChatInfo chat;               // after the change
  AppendResult event;          // the event message and whose logs got it
  std::vector<UserId> joined;  // users who became members
  std::vector<UserId> left;    // users who stopped being members
};

// A user's read or delivered position in a chat moved forward to `seq`.
struct Receipt {
  ChatId chat_id = 0;
  UserId user;  // whose position moved
  UpdateKind kind = UpdateKind::read;
  uint64_t seq = 0;
  int64_t ts = 0;
};

// Marks a chat read or delivered up to a seq (docs/PROTOCOL.md §3.11).
struct ReceiptRequest {
  UserId user;
  ChatId chat_id = 0;  // or
  UserId with;         // the peer of a direct chat
  UpdateKind kind = UpdateKind::read;
  std::optional<uint64_t> seq;  // unset: the last seq the user may read
  int64_t ts = 0;
};

struct ReceiptResult {
  Receipt receipt;  // the position after the request (unchanged if not advanced)
  bool advanced = false;
  uint64_t unread = 0;    // the user's unread count in the chat afterwards
  uint64_t user_pts = 0;  // the receipt's pts in the user's own log, 0 if it is not there
  std::vector<Delivery> deliveries;  // whose logs got the receipt
  bool broadcast = false;            // a large group: push to the chat's subscribers
};

// Who hears an ephemeral signal (typing) in a chat.
struct Audience {
  ChatId chat_id = 0;  // 0: a direct chat with `with` that has no message yet
  ChatKind kind = ChatKind::direct;
  bool large = false;           // large groups: broadcast to the chat's subscribers
  std::vector<UserId> members;  // active members, the asking user included (not for large)
};

struct UserSettings {
  PresenceVisibility presence = PresenceVisibility::everyone;
  int64_t last_seen = 0;      // ms; 0 = never seen
  int64_t dnd_until = 0;      // push: do not disturb until this time (ms); 0 = off
  bool push_preview = false;  // push: include the message text (off: no content leaves)
};

struct Update {
  uint64_t pts = 0;
  UpdateKind kind = UpdateKind::message;
  Message message;  // kind message
  Receipt receipt;  // kind read / delivered
};

struct UpdatesPage {
  std::vector<Update> updates;
  uint64_t pts = 0;  // position after the last update returned
  bool has_more = false;
  bool limited = false;  // the log no longer holds the updates right after the asked pts
};

struct ChatSummary {
  ChatId chat_id = 0;
  ChatKind kind = ChatKind::direct;
  UserId peer;  // direct chats: the other member
  uint64_t last_seq = 0;
  uint64_t last_pts = 0;  // the user's pts at the chat's last activity
  std::optional<Message> last_message;
  std::string name;     // groups
  bool large = false;   // groups above the fan-out threshold: sync per chat by seq
  bool member = true;   // false once the user left or was removed
  int64_t last_ts = 0;  // time of the last message: orders the chat list
  // Read state: the user's own positions, its unread count, and the positions of the
  // other active members (direct: the peer; large groups: none).
  uint64_t read_seq = 0;
  uint64_t delivered_seq = 0;
  uint64_t unread = 0;
  std::vector<Member> reads;  // user, read_seq, delivered_seq
};

struct ChatWindow {
  ChatSummary chat;
  std::vector<Message> messages;  // oldest first
  bool has_more = false;
  uint64_t older = 0;  // messages the user may read before the first of `messages`
};

struct Snapshot {
  uint64_t pts = 0;
  std::vector<ChatWindow> chats;
  // Chats of the user that live on a storage server that cannot be reached now (a sharded
  // store with a server down): left out of `chats`; ask for them again later.
  std::vector<ChatId> unavailable;
};

struct HistoryQuery {
  UserId user;
  ChatId chat_id = 0;       // or
  UserId with;              // the peer of a direct chat
  uint64_t before_seq = 0;  // 0 = newest
  uint32_t limit = 50;
  std::optional<uint64_t> after_seq =
      std::nullopt;  // set: the messages after it, oldest first (per-chat sync)
};

struct HistoryPage {
  ChatId chat_id = 0;
  std::vector<Message> messages;  // oldest first
  bool has_more = false;
};

// A position in the chat list (newest activity first): the list continues after the chat
// with this last_ts and chat_id. {0, 0}: from the start.
struct ChatListCursor {
  int64_t last_ts = 0;
  ChatId chat_id = 0;
  bool from_start() const { return last_ts == 0 && chat_id == 0; }
};

struct ChatList {
  std::vector<ChatSummary> chats;  // newest activity first
  bool has_more = false;
  uint64_t pts = 0;
  uint64_t unread_total = 0;  // over all the user's chats, not only this page
  uint32_t unread_chats = 0;
  // As in Snapshot: chats left out (and out of the unread counts) because the server that
  // holds them cannot be reached now.
  std::vector<ChatId> unavailable;
};

// Media objects (docs/MEDIA.md). The bytes live in the MediaStore; the Store keeps what the
// server worked out about them, who uploaded them and which messages refer to them.
struct MediaRecord {
  std::string id;     // SHA-256 hex of the bytes (the MediaStore id)
  std::string mime;   // detected from the bytes
  std::string kind;   // "image", "video", "audio", "file"
  uint64_t size = 0;  // bytes
  int32_t width = 0;  // images: as displayed; else 0
  int32_t height = 0;
  std::string thumb_id;  // images: the thumbnail's MediaRecord id; else empty
  int32_t thumb_width = 0;
  int32_t thumb_height = 0;
  int64_t uploaded_at = 0;  // ms of the latest upload of these bytes (any user)
  bool referenced = false;  // some message refers to it (read-only: set by the store)
};

// A user's data removed (delete_user).
struct DeleteUserResult {
  std::vector<std::string> devices;        // device ids that were live: close them
  std::vector<std::string> removed_media;  // records removed: remove these objects too
};

// Push notifications (docs/PUSH.md).
enum class PushProvider : uint8_t { webhook = 1, fcm = 2, apns = 3 };

// Where a device's notifications go. One per device; registering again replaces it.
struct PushTarget {
  UserId user;
  std::string device_id;
  PushProvider provider = PushProvider::webhook;
  std::string token;   // FCM registration token, APNs device token, or the webhook's opaque id
  std::string app_id;  // FCM: unused; APNs: the bundle id (apns-topic); webhook: free text
  int64_t created_at = 0;
};

// A message reached `user`: every device of the user that has a target and is not in
// `connected` (its live devices, which got the message pushed) gets a job.
struct PushEnqueue {
  UserId user;
  std::vector<std::string> connected;  // device ids
  ChatId chat_id = 0;
  uint64_t seq = 0;  // the message
  UserId sender;
  int64_t due_at = 0;  // when the job may be sent at the earliest (ms): a collapse window
};

// One pending notification: every message of one chat for one device since the job was
// created collapses into it (count).
struct PushJob {
  UserId user;
  std::string device_id;
  ChatId chat_id = 0;
  uint32_t count = 0;     // messages in this notification
  uint64_t last_seq = 0;  // the latest of them
  UserId last_sender;
  int64_t created_at = 0;   // ms, first message
  int64_t due_at = 0;       // ms, next attempt
  uint32_t attempts = 0;    // sends tried so far
  uint64_t version = 0;     // bumped by every collapse: a finish of an older version re-queues
  int64_t lease_until = 0;  // ms; claimed by a worker until then
  PushTarget target;        // the device's target when claimed
};

enum class PushOutcome : uint8_t {
  sent,        // delivered to the provider: remove (unless messages collapsed in meanwhile)
  retry,       // try again at retry_at, attempts + 1
  dead,        // give up: a dead-letter record, the job removed
  token_gone,  // the provider says the token is gone: remove the target and its jobs
};

struct PushQueueStats {
  uint64_t depth = 0;             // jobs queued
  int64_t oldest_created_at = 0;  // ms; 0 when empty
  uint64_t dead_letters = 0;
};

}  // namespace parley::store
