// The writer thread's side of the RocksDB backend: its counters and caches (WriterState) and
// the batch being built (WriteTxn). Only the writer thread touches either.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "store/rocksdb/codec.h"
#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_store.h"

namespace parley::store::rocks {

// Writer-owned counters and caches. Only the writer thread touches them. They are an
// overlay of the database: on a failed commit they are dropped and reloaded.
struct RocksStore::WriterState {
  uint64_t next_chat_id = 1;
  std::unordered_map<ChatId, ChatRecord> chats;
  std::unordered_map<UserId, uint64_t> pts;
  std::unordered_map<std::string, ChatId> pairs;
  // Active members of small groups (large groups are never loaded whole).
  std::unordered_map<ChatId, std::unordered_map<UserId, Member>> group_members;
  // Dirty in the current batch: written once at the end of it.
  std::unordered_set<ChatId> dirty_chats;
  bool next_chat_id_dirty = false;

  void drop_caches() {
    chats.clear();
    pts.clear();
    pairs.clear();
    group_members.clear();
  }
};

// One group commit in the making: a RocksDB WriteBatch plus reads that see the batch's own
// earlier writes (so two ops in one batch behave as if committed one after the other).
class WriteTxn {
 public:
  explicit WriteTxn(RocksStore& s) : s_(s) {}

  std::optional<std::string> get(RocksStore::Cf cf, const std::string& key) {
    auto it = overlay_[cf].find(key);
    if (it != overlay_[cf].end()) return it->second;
    std::string value;
    auto st = s_.db_->Get(rocksdb::ReadOptions(), s_.cf_[cf], key, &value);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw std::runtime_error(st.ToString());
    return value;
  }
  void put(RocksStore::Cf cf, std::string key, std::string value) {
    batch_.Put(s_.cf_[cf], key, value);
    overlay_[cf][std::move(key)] = std::move(value);
  }
  // A write that nothing in the batch reads back.
  void put_blind(RocksStore::Cf cf, const std::string& key, const std::string& value) {
    batch_.Put(s_.cf_[cf], key, value);
  }
  void del(RocksStore::Cf cf, std::string key) {
    batch_.Delete(s_.cf_[cf], key);
    overlay_[cf][std::move(key)] = std::nullopt;
  }
  void delete_range(RocksStore::Cf cf, const std::string& from, const std::string& to) {
    batch_.DeleteRange(s_.cf_[cf], from, to);
  }

  // At most `limit` rows of `cf` in [from, to) in key order, as this batch sees them: the
  // database merged with the batch's own put() and del() (as they stand when called; later
  // writes do not change the result; put_blind and delete_range are not seen). An empty
  // `to` is no upper bound.
  std::vector<std::pair<std::string, std::string>> scan(RocksStore::Cf cf, const std::string& from,
                                                        const std::string& to,
                                                        size_t limit = SIZE_MAX);
  // Whether a row of `cf` starts with `prefix`, as this batch sees it.
  bool any(RocksStore::Cf cf, const std::string& prefix) {
    return !scan(cf, prefix, prefix_end(prefix), 1).empty();
  }

  RocksStore::WriterState& state() { return *s_.ws_; }

  std::optional<Member> get_member(ChatId chat, const UserId& user) {
    auto raw = get(RocksStore::kMembers, member_key(chat, user));
    if (!raw) return std::nullopt;
    return decode_member(user, *raw);
  }

  // Active members of a small group, loaded once into the writer cache. Every member write
  // goes through put_member, which keeps a loaded cache current.
  std::unordered_map<UserId, Member>& active_members(ChatId chat);

  rocksdb::Iterator* iterator(RocksStore::Cf cf) {
    return s_.db_->NewIterator(rocksdb::ReadOptions(), s_.cf_[cf]);
  }

  void put_member(ChatId chat, const Member& m);

  // Appends a message reference to the user's update log; returns its pts.
  Delivery log(const UserId& user, ChatId chat, uint64_t seq) {
    return log(user, UpdateRecord{UpdateKind::message, chat, seq, {}, 0});
  }
  Delivery log(const UserId& user, const UpdateRecord& rec);

  std::optional<UserChatRecord> get_user_chat(const UserId& user, ChatId chat) {
    auto raw = get(RocksStore::kUserChats, user_chat_key(user, chat));
    if (!raw) return std::nullopt;
    return decode_user_chat(*raw);
  }
  void put_user_chat(const UserId& user, ChatId chat, const UserChatRecord& rec) {
    put(RocksStore::kUserChats, user_chat_key(user, chat), encode(rec));
  }
  // A user (re)joins a chat at `seq` (rules::joined_at).
  void join_user_chat(const UserId& user, ChatId chat, ChatKind kind, const UserId& peer,
                      uint64_t seq);
  // The user's own message at `seq` (rules::after_own_message).
  void own_message(const UserId& user, ChatId chat, uint64_t seq);

  // Number of groups the user is an active member of.
  uint64_t group_count(const UserId& user) {
    auto raw = get(RocksStore::kMeta, group_count_key(user));
    return raw ? decode_u64be(*raw) : 0;
  }
  void set_group_count(const UserId& user, uint64_t n) {
    put(RocksStore::kMeta, group_count_key(user), Encoder().u64be(n).take());
  }
  const SyncConfig& sync_config() const { return s_.sync_cfg_; }

  ChatRecord* load_chat(ChatId id);

  uint64_t next_pts(const UserId& user);

  // Writes the chat records whose metadata changed once per batch, then the batch itself.
  rocksdb::Status commit(const rocksdb::WriteOptions& wo);

 private:
  RocksStore& s_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<std::string, std::optional<std::string>> overlay_[RocksStore::kCfCount];
};

}  // namespace parley::store::rocks
