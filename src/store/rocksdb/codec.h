// Byte encodings for RocksDB keys and values.
//
// Keys are prefix-encoded so that one user's or one chat's rows are contiguous and sort
// by number: strings as a length byte + bytes, integers as 8 big-endian bytes.
// Values are a compact tagged-free layout: varint lengths, fixed fields in a fixed order,
// with a leading version byte so that the layout can evolve.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "store/types.h"

namespace parley::store::rocks {

// The byte codec of common/bytes.h, under the names this backend has always used.
using Encoder = ByteWriter;
using Decoder = ByteReader;

// Keys (one column family each; see rocks_store.cpp for the families).
std::string user_key(std::string_view user);                                  // users
std::string device_key(std::string_view user, std::string_view device);       // devices
std::string token_key(std::string_view token_hash);                           // tokens
std::string chat_key(ChatId chat);                                            // chats
std::string pair_key(std::string_view a, std::string_view b);                 // pairs (sorted)
std::string message_key(ChatId chat, uint64_t seq);                           // messages
std::string user_chat_key(std::string_view user, ChatId chat);                // user_chats
std::string user_prefix(std::string_view user);                               // prefix of the above
std::string update_key(std::string_view user, uint64_t pts);                  // updates
std::string idem_key(std::string_view user, std::string_view client_msg_id);  // idem
std::string user_pts_key(std::string_view user);                              // meta
std::string group_count_key(std::string_view user);                           // meta
std::string settings_key(std::string_view user);                              // meta
std::string member_key(ChatId chat, std::string_view user);                   // members
std::string chat_prefix(ChatId chat);  // prefix of a chat's member keys

// Media (the `media` family). One byte says what a row is, so each kind is contiguous:
//   'm' id                    record: MediaRecord (its `referenced` is derived, not stored)
//   'o' id user               owner mark: `user` uploaded the bytes (empty value)
//   'u' user id               the user's media: an owner mark or a reference of the user
//                             exists for id (empty value; what delete_user walks)
//   'r' id sender chat_id     reference: a message of `sender` in the chat refers to id
//                             (empty value; written once, whatever the number of messages)
//   'p' uploaded_at id        pending: the record has no reference; ordered by uploaded_at
//                             (8 big-endian bytes, sign bit flipped) for sweep_media
// Invariants (kept by the writer): 'p' exists iff the record exists and no 'r' does, at the
// record's uploaded_at; 'u' user id exists iff 'o' id user or some 'r' id user * does.
std::string media_key(std::string_view id);
std::string media_owner_key(std::string_view id, std::string_view user);
std::string media_owner_prefix(std::string_view id);
std::string media_user_key(std::string_view user, std::string_view id);
std::string media_user_prefix(std::string_view user);
std::string media_ref_key(std::string_view id, std::string_view sender, ChatId chat);
std::string media_ref_prefix(std::string_view id);
std::string media_ref_prefix(std::string_view id, std::string_view sender);
std::string media_pending_key(int64_t uploaded_at, std::string_view id);
std::string media_pending_bound(int64_t uploaded_at);  // sorts before every key at uploaded_at
std::string media_pending_prefix();                    // prefix of every pending key
// The rows in [prefix, prefix_end(prefix)) are those starting with prefix.
std::string prefix_end(std::string prefix);
// The parts of the keys above: nullopt for a key of another kind or a malformed one.
// Owner keys give (id, user), user keys (user, id), pending keys (uploaded_at, id).
struct MediaRefKey {
  std::string id;
  UserId sender;
  ChatId chat = 0;
};
std::optional<MediaRefKey> decode_media_ref_key(std::string_view key);
std::optional<std::pair<std::string, UserId>> decode_media_owner_key(std::string_view key);
std::optional<std::pair<UserId, std::string>> decode_media_user_key(std::string_view key);
std::optional<std::pair<int64_t, std::string>> decode_media_pending_key(std::string_view key);

// Push notifications (the `push` family, docs/PUSH.md). One byte says what a row is:
//   't' user device                      target: PushTarget (provider, token, app_id,
//                                        created_at); one per device
//   'j' user device chat_id              job: PushJob without its target (count, last_seq,
//                                        last_sender, created_at, due_at, attempts, version,
//                                        lease_until)
//   'd' due_at user device chat_id       due index (empty value): claim_push_jobs scans it
//                                        from the start while due_at <= now
//   'c' created_at user device chat_id   age index (empty value): the oldest job for stats
//   'x' failed_at user device chat_id    dead letter: the job's fields (attempts including
//                                        the last one) + the last error
//   'm' user chat_id                     mute: muted_until (ms; INT64_MAX = forever); no row
//                                        = not muted
//   'n' 'j' / 'n' 'x'                    counters (8 big-endian bytes): jobs / dead letters
// Times in keys are 8 big-endian bytes with the sign bit flipped, so they sort as numbers.
// Invariants (kept by the writer): a 'j' row exists iff its 'd' row at its due_at and its
// 'c' row at its created_at do; 'n' 'j' is the number of 'j' rows, 'n' 'x' of 'x' rows; a
// job exists only while its device has a target (removing, revoking or deleting the target
// removes the jobs).
std::string push_target_key(std::string_view user, std::string_view device);
std::string push_target_prefix(std::string_view user);
std::string push_job_key(std::string_view user, std::string_view device, ChatId chat);
std::string push_job_prefix(std::string_view user);
std::string push_job_prefix(std::string_view user, std::string_view device);
std::string push_due_key(int64_t due_at, std::string_view user, std::string_view device,
                         ChatId chat);
std::string push_due_bound(int64_t due_at);  // sorts before every due key at due_at
std::string push_due_prefix();
std::string push_created_key(int64_t created_at, std::string_view user, std::string_view device,
                             ChatId chat);
std::string push_created_prefix();
std::string push_dead_key(int64_t failed_at, std::string_view user, std::string_view device,
                          ChatId chat);
std::string push_mute_key(std::string_view user, ChatId chat);
std::string push_mute_prefix(std::string_view user);
std::string push_job_count_key();
std::string push_dead_count_key();
// The parts of a push key: `ts` is 0 for target, job and mute keys, `device` empty for
// mute keys, `chat` 0 for target keys. nullopt for a key of another kind or a malformed one.
struct PushKey {
  int64_t ts = 0;
  UserId user;
  std::string device;
  ChatId chat = 0;
};
std::optional<PushKey> decode_push_target_key(std::string_view key);
std::optional<PushKey> decode_push_job_key(std::string_view key);
std::optional<PushKey> decode_push_due_key(std::string_view key);
std::optional<PushKey> decode_push_created_key(std::string_view key);
std::optional<PushKey> decode_push_mute_key(std::string_view key);

// Values.
// A user row: version 2 added flags (1: deleted). A deleted user keeps its row, so that its
// name stays taken, but no longer exists for reads, logins and new chats.
struct UserRow {
  UserRecord user;
  bool deleted = false;
};
struct ChatRecord {
  ChatKind kind = ChatKind::direct;
  uint64_t last_seq = 0;
  std::string created_by;
  int64_t created_at = 0;
  std::vector<UserId> members;  // direct chats only; groups keep members in their own family
  std::string name;
  int64_t last_ts = 0;
  uint32_t member_count = 0;
  bool large = false;
  bool full_history = false;
  bool deleted = false;
};
struct UserChatRecord {
  ChatKind kind = ChatKind::direct;
  UserId peer;
  uint64_t read_seq = 0;  // receipts: only move forward
  uint64_t delivered_seq = 0;
};
struct UpdateRecord {
  UpdateKind kind = UpdateKind::message;
  ChatId chat_id = 0;
  uint64_t seq = 0;
  UserId by;       // receipts: whose position moved
  int64_t ts = 0;  // receipts
};
struct IdemRecord {
  ChatId chat_id = 0;
  uint64_t seq = 0;
  uint64_t sender_pts = 0;
};
// A job given up on (finish_push_job dead): the job as it stood, and why.
struct PushDeadLetter {
  PushJob job;  // without its target; attempts: the sends tried, the last one included
  int64_t failed_at = 0;
  std::string error;
};

std::string encode(const UserRecord& v);  // a live user
std::string encode(const UserRow& v);
std::string encode(const DeviceRecord& v);
std::string encode(const Message& v);
std::string encode(const ChatRecord& v);
std::string encode(const UserChatRecord& v);
std::string encode(const UpdateRecord& v);
std::string encode(const IdemRecord& v);
std::string encode(const Member& v);
std::string encode(const UserSettings& v);
std::string encode(const MediaRecord& v);     // all but id (in the key) and referenced
std::string encode(const PushTarget& v);      // all but user and device (in the key)
std::string encode(const PushJob& v);         // all but the key's parts and the target
std::string encode(const PushDeadLetter& v);  // all but the key's parts
std::string encode_mute(int64_t muted_until);
std::string encode_token(std::string_view user, std::string_view device);

std::optional<UserRow> decode_user(std::string_view user, std::string_view in);
std::optional<DeviceRecord> decode_device(std::string_view in);
std::optional<Message> decode_message(ChatId chat, uint64_t seq, std::string_view in);
std::optional<ChatRecord> decode_chat(std::string_view in);
std::optional<UserChatRecord> decode_user_chat(std::string_view in);
std::optional<UpdateRecord> decode_update(std::string_view in);
std::optional<IdemRecord> decode_idem(std::string_view in);
std::optional<Member> decode_member(std::string_view user, std::string_view in);
std::optional<UserSettings> decode_settings(std::string_view in);
std::optional<MediaRecord> decode_media(std::string_view id, std::string_view in);
std::optional<PushTarget> decode_push_target(std::string_view user, std::string_view device,
                                             std::string_view in);
std::optional<PushJob> decode_push_job(std::string_view user, std::string_view device, ChatId chat,
                                       std::string_view in);
std::optional<PushDeadLetter> decode_push_dead_letter(const PushKey& key, std::string_view in);
std::optional<int64_t> decode_mute(std::string_view in);
std::optional<std::pair<UserId, std::string>> decode_token(std::string_view in);
uint64_t decode_u64be(std::string_view in);  // trailing 8 bytes of a key

}  // namespace parley::store::rocks
