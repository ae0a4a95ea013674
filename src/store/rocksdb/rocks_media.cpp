// Media records (docs/MEDIA.md): uploads, owner marks, references from messages, access
// checks and the sweep of unreferenced records.
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"

namespace parley::store::rocks {

// Media ------------------------------------------------------------------------------------
// Rows and invariants: codec.h. Writes run on the writer thread, so a sweep and an append
// that refer to the same record are ordered by their commits.

namespace {
// Whether a row of `cf` starts with `prefix`, in the database at `ro`.
bool has_prefix(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::ReadOptions& ro,
                const std::string& prefix) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  it->Seek(prefix);
  return it->Valid() && it->key().starts_with(prefix);
}
}  // namespace

void RocksStore::put_media(MediaRecord record, UserId uploader, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [record = std::move(record), uploader = std::move(uploader)](WriteTxn& txn) -> Status {
    if (!valid_media_id(record.id)) return Error{Errc::bad_request, "bad media id"};
    if (!live_user(txn, uploader))
      return Error{Errc::not_found, fmt::format("no such user: {}", uploader)};
    const std::string& id = record.id;
    auto key = media_key(id);
    bool referenced = txn.any(kMedia, media_ref_prefix(id));
    if (auto raw = txn.get(kMedia, key)) {
      // The same bytes again: only the upload time moves (forwards), and the pending
      // entry with it.
      auto rec = decode_media(id, *raw);
      if (!rec) return Error{Errc::internal, "corrupt media record"};
      if (record.uploaded_at > rec->uploaded_at) {
        if (!referenced) {
          txn.del(kMedia, media_pending_key(rec->uploaded_at, id));
          txn.put(kMedia, media_pending_key(record.uploaded_at, id), "");
        }
        rec->uploaded_at = record.uploaded_at;
        txn.put(kMedia, key, encode(*rec));
      }
    } else {
      txn.put(kMedia, key, encode(record));
      if (!referenced) txn.put(kMedia, media_pending_key(record.uploaded_at, id), "");
    }
    txn.put(kMedia, media_owner_key(id, uploader), "");
    txn.put(kMedia, media_user_key(uploader, id), "");
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::get_media(std::string id, Callback<MediaRecord> done) {
  if (!valid_media_id(id)) return done(no_media(id));
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  auto st = db_->Get(ro, cf_[kMedia], media_key(id), &v);
  if (st.IsNotFound()) return done(no_media(id));
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto rec = decode_media(id, v);
  if (!rec) return done(Error{Errc::internal, "corrupt media record"});
  rec->referenced = has_prefix(*db_, cf_[kMedia], ro, media_ref_prefix(id));
  done(std::move(*rec));
}

void RocksStore::media_access(UserId user, std::string id, Callback<bool> done) {
  if (!valid_media_id(id)) return done(false);
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  auto st = db_->Get(ro, cf_[kMedia], media_key(id), &v);
  if (st.IsNotFound()) return done(false);
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  st = db_->Get(ro, cf_[kMedia], media_owner_key(id, user), &v);
  if (st.ok()) return done(true);
  if (!st.IsNotFound()) return done(Error{Errc::unavailable, st.ToString()});
  // An active member of a chat where a message refers to it.
  bool allowed = false;
  std::unordered_set<ChatId> checked;
  std::string prefix = media_ref_prefix(id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kMedia]));
  for (it->Seek(prefix); !allowed && it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto ref = decode_media_ref_key(it->key().ToStringView());
    if (!ref || !checked.insert(ref->chat).second) continue;
    auto vis = visible_range(snap, ref->chat, user);
    allowed = vis && vis->member;
  }
  it.reset();
  done(allowed);
}

void RocksStore::sweep_media(int64_t uploaded_before, uint32_t limit,
                             Callback<std::vector<std::string>> done) {
  auto op = std::make_unique<ValueOp<std::vector<std::string>>>();
  op->done = done;
  op->fn = [uploaded_before, limit](WriteTxn& txn) -> Result<std::vector<std::string>> {
    std::vector<std::string> removed;
    if (limit == 0) return removed;
    auto pending =
        txn.scan(kMedia, media_pending_prefix(), media_pending_bound(uploaded_before), limit);
    for (const auto& [key, value] : pending) {
      txn.del(kMedia, key);
      auto entry = decode_media_pending_key(key);
      if (!entry) continue;
      const auto& [ts, id] = *entry;
      auto raw = txn.get(kMedia, media_key(id));
      if (!raw) continue;  // a stale entry: nothing to remove
      auto rec = decode_media(id, *raw);
      if (rec && rec->uploaded_at != ts) continue;          // stale: the record moved on
      if (txn.any(kMedia, media_ref_prefix(id))) continue;  // stale: referred to since
      std::string owners = media_owner_prefix(id);
      for (const auto& [okey, ovalue] : txn.scan(kMedia, owners, prefix_end(owners))) {
        if (auto owner = decode_media_owner_key(okey))
          txn.del(kMedia, media_user_key(owner->second, id));
        txn.del(kMedia, okey);
      }
      txn.del(kMedia, media_key(id));
      removed.push_back(id);
    }
    return removed;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

}  // namespace parley::store::rocks
