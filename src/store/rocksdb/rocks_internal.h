// Internals of the RocksDB backend that more than one of its files uses: derived counters,
// the op adapters, and helpers of the users, settings, media and push families. Not part of
// the Store seam; only src/store/rocksdb includes it.
#pragma once

#include <fmt/format.h>
#include <rocksdb/db.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "store/rocksdb/codec.h"
#include "store/rocksdb/rocks_store.h"
#include "store/rules/read_state.h"

namespace parley::store::rocks {

// The meta row that keeps the next chat id (rewritten by a batch that created chats).
inline const std::string kNextChatIdKey = "next_chat_id";

inline Error unavailable() { return Error{Errc::unavailable, "store is closed"}; }

// Derived counters (rocks_store.cpp) ------------------------------------------------------

// The last row under `prefix` in `cf` at `snap` (nullptr: the latest state), if any.
std::optional<std::pair<std::string, std::string>> last_under(rocksdb::DB& db,
                                                              rocksdb::ColumnFamilyHandle* cf,
                                                              const rocksdb::Snapshot* snap,
                                                              const std::string& prefix);
// A chat's last seq and ts from its last message (the record is not rewritten per message).
void apply_last_message(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* messages,
                        const rocksdb::Snapshot* snap, ChatId chat, ChatRecord& rec);
// A user's pts from the last entry of its update log.
uint64_t last_pts(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* updates,
                  rocksdb::ColumnFamilyHandle* meta, const rocksdb::Snapshot* snap,
                  const UserId& user);

// A user's chat row's positions, as the read-state rules see them.
inline rules::ReadPositions positions(const UserChatRecord& r) {
  return rules::ReadPositions{r.read_seq, r.delivered_seq};
}
inline void set_positions(UserChatRecord& r, const rules::ReadPositions& p) {
  r.read_seq = p.read_seq;
  r.delivered_seq = p.delivered_seq;
}

// Account writes: a function over the transaction and a completion.
struct FnOp final : RocksStore::Op {
  std::function<Status(WriteTxn&)> fn;
  Callback<Unit> done;
  std::optional<Status> result;

  void apply(WriteTxn& txn) override { result = fn(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }
};

// Writes with a value: a function over the transaction and a completion.
template <class T>
struct ValueOp final : RocksStore::Op {
  std::function<Result<T>(WriteTxn&)> fn;
  Callback<T> done;
  std::optional<Result<T>> result;

  void apply(WriteTxn& txn) override { result = fn(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }
};

// Users and settings (rocks_accounts.cpp) -------------------------------------------------

// Whether the user exists and is not deleted (a deleted user keeps its row: the name stays
// taken).
bool live_user(WriteTxn& txn, const UserId& user);
// Settings writes: read-modify-write of the user's settings row on the writer thread.
Status update_settings(WriteTxn& txn, const UserId& user,
                       const std::function<void(UserSettings&)>& change);

// Media ------------------------------------------------------------------------------------

// Ids that fit in a key (key_str keeps 255 bytes).
inline bool valid_media_id(std::string_view id) { return !id.empty() && id.size() <= 255; }

inline Error no_media(std::string_view id) {
  return Error{Errc::not_found, fmt::format("no such media {}", id)};
}

// Push jobs and targets (rocks_push.cpp) ---------------------------------------------------

// The device's target and its queued jobs go (logout, revocation, a dead token).
void drop_push_device(WriteTxn& txn, const UserId& user, const std::string& device);
// Everything push keeps for the user: targets, jobs and mutes (delete_user).
void drop_push_user(WriteTxn& txn, const UserId& user);

}  // namespace parley::store::rocks
