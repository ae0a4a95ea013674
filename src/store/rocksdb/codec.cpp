#include "store/rocksdb/codec.h"

namespace parley::store::rocks {
namespace {
constexpr uint8_t kVersion = 1;
}

std::string user_key(std::string_view user) { return Encoder().key_str(user).take(); }
std::string device_key(std::string_view user, std::string_view device) {
  return Encoder().key_str(user).key_str(device).take();
}
std::string token_key(std::string_view token_hash) { return std::string(token_hash); }
std::string chat_key(ChatId chat) { return Encoder().u64be(chat).take(); }
std::string pair_key(std::string_view a, std::string_view b) {
  if (b < a) std::swap(a, b);
  return Encoder().key_str(a).key_str(b).take();
}
std::string message_key(ChatId chat, uint64_t seq) {
  return Encoder().u64be(chat).u64be(seq).take();
}
std::string user_chat_key(std::string_view user, ChatId chat) {
  return Encoder().key_str(user).u64be(chat).take();
}
std::string user_prefix(std::string_view user) { return Encoder().key_str(user).take(); }
std::string update_key(std::string_view user, uint64_t pts) {
  return Encoder().key_str(user).u64be(pts).take();
}
std::string idem_key(std::string_view user, std::string_view client_msg_id) {
  return Encoder().key_str(user).str(client_msg_id).take();
}
std::string user_pts_key(std::string_view user) { return Encoder().u8('p').key_str(user).take(); }
std::string settings_key(std::string_view user) { return Encoder().u8('s').key_str(user).take(); }
std::string group_count_key(std::string_view user) {
  return Encoder().u8('g').key_str(user).take();
}
std::string member_key(ChatId chat, std::string_view user) {
  return Encoder().u64be(chat).key_str(user).take();
}
std::string chat_prefix(ChatId chat) { return Encoder().u64be(chat).take(); }

namespace {
constexpr uint8_t kMediaRecord = 'm', kMediaOwner = 'o', kMediaUser = 'u', kMediaRef = 'r',
                  kMediaPending = 'p';
// Signed times sort as unsigned big-endian once the sign bit is flipped.
uint64_t ordered(int64_t ts) { return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63); }
}  // namespace

std::string media_key(std::string_view id) { return Encoder().u8(kMediaRecord).key_str(id).take(); }
std::string media_owner_key(std::string_view id, std::string_view user) {
  return Encoder().u8(kMediaOwner).key_str(id).key_str(user).take();
}
std::string media_owner_prefix(std::string_view id) {
  return Encoder().u8(kMediaOwner).key_str(id).take();
}
std::string media_user_key(std::string_view user, std::string_view id) {
  return Encoder().u8(kMediaUser).key_str(user).key_str(id).take();
}
std::string media_user_prefix(std::string_view user) {
  return Encoder().u8(kMediaUser).key_str(user).take();
}
std::string media_ref_key(std::string_view id, std::string_view sender, ChatId chat) {
  return Encoder().u8(kMediaRef).key_str(id).key_str(sender).u64be(chat).take();
}
std::string media_ref_prefix(std::string_view id) {
  return Encoder().u8(kMediaRef).key_str(id).take();
}
std::string media_ref_prefix(std::string_view id, std::string_view sender) {
  return Encoder().u8(kMediaRef).key_str(id).key_str(sender).take();
}
std::string media_pending_key(int64_t uploaded_at, std::string_view id) {
  return Encoder().u8(kMediaPending).u64be(ordered(uploaded_at)).key_str(id).take();
}
std::string media_pending_bound(int64_t uploaded_at) {
  return Encoder().u8(kMediaPending).u64be(ordered(uploaded_at)).take();
}
std::string media_pending_prefix() { return Encoder().u8(kMediaPending).take(); }

std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;  // empty: no end
}

std::optional<MediaRefKey> decode_media_ref_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kMediaRef) return std::nullopt;
  MediaRefKey k;
  k.id = d.key_str();
  k.sender = d.key_str();
  k.chat = d.u64be();
  if (!d.done()) return std::nullopt;
  return k;
}
std::optional<std::pair<std::string, UserId>> decode_media_owner_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kMediaOwner) return std::nullopt;
  auto id = d.key_str();
  auto user = d.key_str();
  if (!d.done()) return std::nullopt;
  return std::make_pair(std::move(id), std::move(user));
}
std::optional<std::pair<UserId, std::string>> decode_media_user_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kMediaUser) return std::nullopt;
  auto user = d.key_str();
  auto id = d.key_str();
  if (!d.done()) return std::nullopt;
  return std::make_pair(std::move(user), std::move(id));
}
std::optional<std::pair<int64_t, std::string>> decode_media_pending_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kMediaPending) return std::nullopt;
  auto ts = static_cast<int64_t>(d.u64be() ^ (uint64_t{1} << 63));
  auto id = d.key_str();
  if (!d.done()) return std::nullopt;
  return std::make_pair(ts, std::move(id));
}

namespace {
constexpr uint8_t kPushTarget = 't', kPushJob = 'j', kPushDue = 'd', kPushCreated = 'c',
                  kPushDead = 'x', kPushMute = 'm', kPushCounter = 'n';
int64_t unordered(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }
std::string push_timed_key(uint8_t kind, int64_t ts, std::string_view user, std::string_view device,
                           ChatId chat) {
  return Encoder().u8(kind).u64be(ordered(ts)).key_str(user).key_str(device).u64be(chat).take();
}
std::optional<PushKey> decode_push_timed_key(uint8_t kind, std::string_view key) {
  Decoder d(key);
  if (d.u8() != kind) return std::nullopt;
  PushKey k;
  k.ts = unordered(d.u64be());
  k.user = d.key_str();
  k.device = d.key_str();
  k.chat = d.u64be();
  if (!d.done()) return std::nullopt;
  return k;
}
}  // namespace

std::string push_target_key(std::string_view user, std::string_view device) {
  return Encoder().u8(kPushTarget).key_str(user).key_str(device).take();
}
std::string push_target_prefix(std::string_view user) {
  return Encoder().u8(kPushTarget).key_str(user).take();
}
std::string push_job_key(std::string_view user, std::string_view device, ChatId chat) {
  return Encoder().u8(kPushJob).key_str(user).key_str(device).u64be(chat).take();
}
std::string push_job_prefix(std::string_view user) {
  return Encoder().u8(kPushJob).key_str(user).take();
}
std::string push_job_prefix(std::string_view user, std::string_view device) {
  return Encoder().u8(kPushJob).key_str(user).key_str(device).take();
}
std::string push_due_key(int64_t due_at, std::string_view user, std::string_view device,
                         ChatId chat) {
  return push_timed_key(kPushDue, due_at, user, device, chat);
}
std::string push_due_bound(int64_t due_at) {
  return Encoder().u8(kPushDue).u64be(ordered(due_at)).take();
}
std::string push_due_prefix() { return Encoder().u8(kPushDue).take(); }
std::string push_created_key(int64_t created_at, std::string_view user, std::string_view device,
                             ChatId chat) {
  return push_timed_key(kPushCreated, created_at, user, device, chat);
}
std::string push_created_prefix() { return Encoder().u8(kPushCreated).take(); }
std::string push_dead_key(int64_t failed_at, std::string_view user, std::string_view device,
                          ChatId chat) {
  return push_timed_key(kPushDead, failed_at, user, device, chat);
}
std::string push_mute_key(std::string_view user, ChatId chat) {
  return Encoder().u8(kPushMute).key_str(user).u64be(chat).take();
}
std::string push_mute_prefix(std::string_view user) {
  return Encoder().u8(kPushMute).key_str(user).take();
}
std::string push_job_count_key() { return Encoder().u8(kPushCounter).u8(kPushJob).take(); }
std::string push_dead_count_key() { return Encoder().u8(kPushCounter).u8(kPushDead).take(); }

std::optional<PushKey> decode_push_target_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kPushTarget) return std::nullopt;
  PushKey k;
  k.user = d.key_str();
  k.device = d.key_str();
  if (!d.done()) return std::nullopt;
  return k;
}
std::optional<PushKey> decode_push_job_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kPushJob) return std::nullopt;
  PushKey k;
  k.user = d.key_str();
  k.device = d.key_str();
  k.chat = d.u64be();
  if (!d.done()) return std::nullopt;
  return k;
}
std::optional<PushKey> decode_push_due_key(std::string_view key) {
  return decode_push_timed_key(kPushDue, key);
}
std::optional<PushKey> decode_push_created_key(std::string_view key) {
  return decode_push_timed_key(kPushCreated, key);
}
std::optional<PushKey> decode_push_mute_key(std::string_view key) {
  Decoder d(key);
  if (d.u8() != kPushMute) return std::nullopt;
  PushKey k;
  k.user = d.key_str();
  k.chat = d.u64be();
  if (!d.done()) return std::nullopt;
  return k;
}

// Version 2 added the flags byte (1: deleted); version 1 rows read as live users.
std::string encode(const UserRecord& v) { return encode(UserRow{v, false}); }
std::string encode(const UserRow& v) {
  return Encoder()
      .u8(2)
      .str(v.user.password_hash)
      .varint(static_cast<uint64_t>(v.user.created_at))
      .u8(v.deleted ? 1 : 0)
      .take();
}
std::optional<UserRow> decode_user(std::string_view user, std::string_view in) {
  Decoder d(in);
  UserRow r;
  r.user.id = user;
  uint8_t version = d.u8();
  r.user.password_hash = d.str();
  r.user.created_at = static_cast<int64_t>(d.varint());
  if (version >= 2) r.deleted = (d.u8() & 1) != 0;
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const DeviceRecord& v) {
  return Encoder()
      .u8(kVersion)
      .str(v.user)
      .str(v.device_id)
      .str(v.name)
      .str(v.token_hash)
      .varint(static_cast<uint64_t>(v.created_at))
      .u8(v.revoked ? 1 : 0)
      .take();
}
std::optional<DeviceRecord> decode_device(std::string_view in) {
  Decoder d(in);
  DeviceRecord r;
  d.u8();
  r.user = d.str();
  r.device_id = d.str();
  r.name = d.str();
  r.token_hash = d.str();
  r.created_at = static_cast<int64_t>(d.varint());
  r.revoked = d.u8() != 0;
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const Message& v) {
  return Encoder()
      .u8(kVersion)
      .varint(v.message_id)
      .varint(static_cast<uint64_t>(v.ts))
      .str(v.sender)
      .str(v.to)
      .u8(static_cast<uint8_t>(v.kind))
      .str(v.body)
      .str(v.client_msg_id)
      .take();
}
std::optional<Message> decode_message(ChatId chat, uint64_t seq, std::string_view in) {
  Decoder d(in);
  Message m;
  m.chat_id = chat;
  m.seq = seq;
  d.u8();
  m.message_id = d.varint();
  m.ts = static_cast<int64_t>(d.varint());
  m.sender = d.str();
  m.to = d.str();
  m.kind = static_cast<MessageKind>(d.u8());
  m.body = d.str();
  m.client_msg_id = d.str();
  if (!d.ok()) return std::nullopt;
  return m;
}

std::string encode(const ChatRecord& v) {
  Encoder e;
  e.u8(kVersion)
      .u8(static_cast<uint8_t>(v.kind))
      .varint(v.last_seq)
      .str(v.created_by)
      .varint(static_cast<uint64_t>(v.created_at))
      .varint(v.members.size());
  for (const auto& m : v.members) e.str(m);
  e.str(v.name)
      .varint(static_cast<uint64_t>(v.last_ts))
      .varint(v.member_count)
      .u8(static_cast<uint8_t>((v.large ? 1 : 0) | (v.full_history ? 2 : 0) | (v.deleted ? 4 : 0)));
  return e.take();
}
std::optional<ChatRecord> decode_chat(std::string_view in) {
  Decoder d(in);
  ChatRecord r;
  d.u8();
  r.kind = static_cast<ChatKind>(d.u8());
  r.last_seq = d.varint();
  r.created_by = d.str();
  r.created_at = static_cast<int64_t>(d.varint());
  uint64_t n = d.varint();
  for (uint64_t i = 0; i < n && d.ok(); ++i) r.members.push_back(d.str());
  r.name = d.str();
  r.last_ts = static_cast<int64_t>(d.varint());
  r.member_count = static_cast<uint32_t>(d.varint());
  uint8_t flags = d.u8();
  r.large = flags & 1;
  r.full_history = flags & 2;
  r.deleted = flags & 4;
  if (!d.ok()) return std::nullopt;
  return r;
}

// Version 2 added the receipt positions; version 1 rows read as 0.
std::string encode(const UserChatRecord& v) {
  return Encoder()
      .u8(2)
      .u8(static_cast<uint8_t>(v.kind))
      .str(v.peer)
      .varint(v.read_seq)
      .varint(v.delivered_seq)
      .take();
}
std::optional<UserChatRecord> decode_user_chat(std::string_view in) {
  Decoder d(in);
  UserChatRecord r;
  uint8_t version = d.u8();
  r.kind = static_cast<ChatKind>(d.u8());
  r.peer = d.str();
  if (version >= 2) {
    r.read_seq = d.varint();
    r.delivered_seq = d.varint();
  }
  if (!d.ok()) return std::nullopt;
  return r;
}

// Message entries are the hot path: kind, chat, seq only. Receipts add who and when.
std::string encode(const UpdateRecord& v) {
  Encoder e;
  e.u8(kVersion).u8(static_cast<uint8_t>(v.kind)).varint(v.chat_id).varint(v.seq);
  if (v.kind != UpdateKind::message) e.str(v.by).varint(static_cast<uint64_t>(v.ts));
  return e.take();
}
std::optional<UpdateRecord> decode_update(std::string_view in) {
  Decoder d(in);
  UpdateRecord r;
  d.u8();
  r.kind = static_cast<UpdateKind>(d.u8());
  r.chat_id = d.varint();
  r.seq = d.varint();
  if (r.kind != UpdateKind::message) {
    r.by = d.str();
    r.ts = static_cast<int64_t>(d.varint());
  }
  if (!d.ok()) return std::nullopt;
  return r;
}

// Version 2 added the push settings (dnd_until, flags: 1 push_preview); version 1 rows read
// as dnd off and no previews.
std::string encode(const UserSettings& v) {
  return Encoder()
      .u8(2)
      .u8(static_cast<uint8_t>(v.presence))
      .varint(static_cast<uint64_t>(v.last_seen))
      .varint(static_cast<uint64_t>(v.dnd_until))
      .u8(v.push_preview ? 1 : 0)
      .take();
}
std::optional<UserSettings> decode_settings(std::string_view in) {
  Decoder d(in);
  UserSettings r;
  uint8_t version = d.u8();
  uint8_t p = d.u8();
  if (p > static_cast<uint8_t>(PresenceVisibility::nobody)) return std::nullopt;
  r.presence = static_cast<PresenceVisibility>(p);
  r.last_seen = static_cast<int64_t>(d.varint());
  if (version >= 2) {
    r.dnd_until = static_cast<int64_t>(d.varint());
    r.push_preview = (d.u8() & 1) != 0;
  }
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const MediaRecord& v) {
  return Encoder()
      .u8(kVersion)
      .str(v.mime)
      .str(v.kind)
      .varint(v.size)
      .varint(static_cast<uint32_t>(v.width))
      .varint(static_cast<uint32_t>(v.height))
      .str(v.thumb_id)
      .varint(static_cast<uint32_t>(v.thumb_width))
      .varint(static_cast<uint32_t>(v.thumb_height))
      .varint(static_cast<uint64_t>(v.uploaded_at))
      .take();
}
std::optional<MediaRecord> decode_media(std::string_view id, std::string_view in) {
  Decoder d(in);
  MediaRecord r;
  r.id = id;
  d.u8();
  r.mime = d.str();
  r.kind = d.str();
  r.size = d.varint();
  r.width = static_cast<int32_t>(static_cast<uint32_t>(d.varint()));
  r.height = static_cast<int32_t>(static_cast<uint32_t>(d.varint()));
  r.thumb_id = d.str();
  r.thumb_width = static_cast<int32_t>(static_cast<uint32_t>(d.varint()));
  r.thumb_height = static_cast<int32_t>(static_cast<uint32_t>(d.varint()));
  r.uploaded_at = static_cast<int64_t>(d.varint());
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const PushTarget& v) {
  return Encoder()
      .u8(kVersion)
      .u8(static_cast<uint8_t>(v.provider))
      .str(v.token)
      .str(v.app_id)
      .varint(static_cast<uint64_t>(v.created_at))
      .take();
}
std::optional<PushTarget> decode_push_target(std::string_view user, std::string_view device,
                                             std::string_view in) {
  Decoder d(in);
  PushTarget t;
  t.user = user;
  t.device_id = device;
  d.u8();
  uint8_t provider = d.u8();
  if (provider < static_cast<uint8_t>(PushProvider::webhook) ||
      provider > static_cast<uint8_t>(PushProvider::apns))
    return std::nullopt;
  t.provider = static_cast<PushProvider>(provider);
  t.token = d.str();
  t.app_id = d.str();
  t.created_at = static_cast<int64_t>(d.varint());
  if (!d.ok()) return std::nullopt;
  return t;
}

namespace {
void encode_job_fields(Encoder& e, const PushJob& v) {
  e.varint(v.count)
      .varint(v.last_seq)
      .str(v.last_sender)
      .varint(static_cast<uint64_t>(v.created_at))
      .varint(static_cast<uint64_t>(v.due_at))
      .varint(v.attempts)
      .varint(v.version)
      .varint(static_cast<uint64_t>(v.lease_until));
}
void decode_job_fields(Decoder& d, PushJob& r) {
  r.count = static_cast<uint32_t>(d.varint());
  r.last_seq = d.varint();
  r.last_sender = d.str();
  r.created_at = static_cast<int64_t>(d.varint());
  r.due_at = static_cast<int64_t>(d.varint());
  r.attempts = static_cast<uint32_t>(d.varint());
  r.version = d.varint();
  r.lease_until = static_cast<int64_t>(d.varint());
}
}  // namespace

std::string encode(const PushJob& v) {
  Encoder e;
  e.u8(kVersion);
  encode_job_fields(e, v);
  return e.take();
}
std::optional<PushJob> decode_push_job(std::string_view user, std::string_view device, ChatId chat,
                                       std::string_view in) {
  Decoder d(in);
  PushJob r;
  r.user = user;
  r.device_id = device;
  r.chat_id = chat;
  d.u8();
  decode_job_fields(d, r);
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const PushDeadLetter& v) {
  Encoder e;
  e.u8(kVersion);
  encode_job_fields(e, v.job);
  e.str(v.error);
  return e.take();
}
std::optional<PushDeadLetter> decode_push_dead_letter(const PushKey& key, std::string_view in) {
  Decoder d(in);
  PushDeadLetter r;
  r.job.user = key.user;
  r.job.device_id = key.device;
  r.job.chat_id = key.chat;
  r.failed_at = key.ts;
  d.u8();
  decode_job_fields(d, r.job);
  r.error = d.str();
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode_mute(int64_t muted_until) {
  return Encoder().u8(kVersion).varint(static_cast<uint64_t>(muted_until)).take();
}
std::optional<int64_t> decode_mute(std::string_view in) {
  Decoder d(in);
  d.u8();
  auto v = static_cast<int64_t>(d.varint());
  if (!d.ok()) return std::nullopt;
  return v;
}

std::string encode(const IdemRecord& v) {
  return Encoder().u8(kVersion).varint(v.chat_id).varint(v.seq).varint(v.sender_pts).take();
}
std::optional<IdemRecord> decode_idem(std::string_view in) {
  Decoder d(in);
  IdemRecord r;
  d.u8();
  r.chat_id = d.varint();
  r.seq = d.varint();
  r.sender_pts = d.varint();
  if (!d.ok()) return std::nullopt;
  return r;
}

std::string encode(const Member& v) {
  return Encoder()
      .u8(kVersion)
      .u8(static_cast<uint8_t>(v.role))
      .varint(v.joined_seq)
      .varint(v.left_seq)
      .take();
}
std::optional<Member> decode_member(std::string_view user, std::string_view in) {
  Decoder d(in);
  Member m;
  m.user = user;
  d.u8();
  m.role = static_cast<Role>(d.u8());
  m.joined_seq = d.varint();
  m.left_seq = d.varint();
  if (!d.ok()) return std::nullopt;
  return m;
}

std::string encode_token(std::string_view user, std::string_view device) {
  return Encoder().u8(kVersion).str(user).str(device).take();
}
std::optional<std::pair<UserId, std::string>> decode_token(std::string_view in) {
  Decoder d(in);
  d.u8();
  auto user = d.str();
  auto device = d.str();
  if (!d.ok()) return std::nullopt;
  return std::make_pair(std::move(user), std::move(device));
}

uint64_t decode_u64be(std::string_view in) {
  if (in.size() < 8) return 0;
  Decoder d(in.substr(in.size() - 8));
  return d.u64be();
}

}  // namespace parley::store::rocks
