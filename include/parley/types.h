// Plain structs for what the server sends and what the client asks for (PROTOCOL.md §3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley {

// A chat message (PROTOCOL.md §3.4). Group changes are messages of kind "event": their
// `event` holds the event object as compact JSON text (§3.9) and their body is empty.
struct Message {
  int64_t chat_id = 0;
  int64_t seq = 0;
  std::string message_id;  // decimal digits (64-bit Snowflake id)
  std::string sender;
  std::string to;  // the other member of a direct chat; empty in groups
  std::string kind = "text";
  std::string body;
  int64_t ts = 0;             // ms since the Unix epoch
  std::string client_msg_id;  // may be empty
  std::string event;          // kind "event": {"event":"members_added","by":"alice",...}

  friend bool operator==(const Message&, const Message&) = default;
};

// One entry of the user's update log. `message` is set for kind "message"; other kinds (later
// protocol versions) only advance the cursor. The message push of a large group carries no
// pts (§3.4 "Large groups"): pts is 0 then.
struct Update {
  int64_t pts = 0;
  std::string kind = "message";
  std::optional<Message> message;
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
};

// Result of `sync` (§3.5): either updates or, when `snapshot`, chats.
struct SyncResult {
  bool snapshot = false;
  bool limited = false;
  int64_t pts = 0;  // position after the last returned update
  std::vector<Update> updates;
  bool has_more = false;
  std::vector<SnapshotChat> chats;  // only in a snapshot; most recently active first
};

// Result of `history` (§3.6).
struct HistoryPage {
  int64_t chat_id = 0;            // 0 when `with` names a user you have no chat with
  std::vector<Message> messages;  // oldest first
  bool has_more = false;          // older messages exist (before_seq) / newer ones (after_seq)
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
};

// Result of `chats` (§3.7).
struct ChatList {
  std::vector<ChatSummary> chats;  // newest activity first
  bool has_more = false;
  int64_t pts = 0;
};

// Result of POST /v1/login (§2).
struct LoginResult {
  std::string user;
  std::string device_id;
  std::string token;
};

}  // namespace parley
