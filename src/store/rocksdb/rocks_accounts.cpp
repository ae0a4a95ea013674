// Accounts (users, devices, tokens), user settings and deleting a user's data.
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <string>
#include <vector>

#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"

namespace parley::store::rocks {

// Whether the user exists and is not deleted (a deleted user keeps its row: the name stays
// taken).
bool live_user(WriteTxn& txn, const UserId& user) {
  auto raw = txn.get(RocksStore::kUsers, user_key(user));
  if (!raw) return false;
  auto row = decode_user(user, *raw);
  return row && !row->deleted;
}

// Settings writes: read-modify-write of the user's settings row on the writer thread.
Status update_settings(WriteTxn& txn, const UserId& user,
                       const std::function<void(UserSettings&)>& change) {
  if (!live_user(txn, user)) return Error{Errc::not_found, fmt::format("no such user: {}", user)};
  UserSettings s;
  if (auto raw = txn.get(RocksStore::kMeta, settings_key(user))) {
    auto decoded = decode_settings(*raw);
    if (!decoded) return Error{Errc::internal, "corrupt settings record"};
    s = *decoded;
  }
  change(s);
  txn.put(RocksStore::kMeta, settings_key(user), encode(s));
  return Unit{};
}

void RocksStore::create_user(UserRecord user, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user)](WriteTxn& txn) -> Status {
    auto key = user_key(user.id);
    if (txn.get(kUsers, key)) return Error{Errc::username_taken, "username is taken"};
    txn.put(kUsers, key, encode(user));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

namespace {

// An existing user row for ensure_user: ok, or forbidden once the account was deleted.
Status existing_user(const UserId& id, std::string_view raw) {
  auto row = decode_user(id, raw);
  if (!row) return Error{Errc::internal, "corrupt user record"};
  if (row->deleted) return Error{Errc::forbidden, "account deleted"};
  return ok_status();
}
}  // namespace

void RocksStore::ensure_user(UserId id, Callback<Unit> done) {
  std::string v;
  if (!closing_ && db_->Get(durable_read(), cf_[kUsers], user_key(id), &v).ok())
    return done(existing_user(id, v));
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [id = std::move(id)](WriteTxn& txn) -> Status {
    auto key = user_key(id);
    if (auto raw = txn.get(kUsers, key)) return existing_user(id, *raw);
    txn.put(kUsers, key, encode(UserRecord{id, "", 0}));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::get_user(UserId id, Callback<UserRecord> done) {
  std::string v;
  auto st = db_->Get(durable_read(), cf_[kUsers], user_key(id), &v);
  if (st.IsNotFound()) return done(Error{Errc::not_found, "no such user"});
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto rec = decode_user(id, v);
  if (!rec) return done(Error{Errc::internal, "corrupt user record"});
  if (rec->deleted) return done(Error{Errc::not_found, "no such user"});
  done(std::move(rec->user));
}

void RocksStore::create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [device = std::move(device), max_devices](WriteTxn& txn) -> Status {
    if (max_devices > 0) {
      std::string prefix = user_prefix(device.user);
      uint32_t live = 0;
      for (const auto& [key, value] : txn.scan(kDevices, prefix, prefix_end(prefix))) {
        auto dev = decode_device(value);
        if (dev && !dev->revoked) ++live;
      }
      if (live >= max_devices)
        return Error{Errc::too_many_devices,
                     fmt::format("{} devices already: revoke one first", live)};
    }
    txn.put(kDevices, device_key(device.user, device.device_id), encode(device));
    txn.put(kTokens, token_key(device.token_hash), encode_token(device.user, device.device_id));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) {
  std::string v;
  auto st = db_->Get(durable_read(), cf_[kTokens], token_key(token_hash), &v);
  if (st.IsNotFound()) return done(Error{Errc::unauthorized, "invalid token"});
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto ref = decode_token(v);
  if (!ref) return done(Error{Errc::internal, "corrupt token record"});
  st = db_->Get(durable_read(), cf_[kDevices], device_key(ref->first, ref->second), &v);
  if (!st.ok()) return done(Error{Errc::unauthorized, "invalid token"});
  auto dev = decode_device(v);
  if (!dev || dev->revoked) return done(Error{Errc::unauthorized, "token revoked"});
  done(std::move(*dev));
}

void RocksStore::list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) {
  std::string prefix = user_prefix(user);
  std::string end = prefix_end(prefix);
  auto view = read_view();
  rocksdb::ReadOptions ro;
  ro.snapshot = view.get();
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kDevices]));
  std::vector<DeviceRecord> devices;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto dev = decode_device(std::string_view(it->value().data(), it->value().size()));
    if (!dev) return done(Error{Errc::internal, "corrupt device record"});
    if (!dev->revoked) devices.push_back(std::move(*dev));
  }
  if (!it->status().ok()) return done(Error{Errc::unavailable, it->status().ToString()});
  done(std::move(devices));
}

void RocksStore::revoke_device(UserId user, std::string device_id, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id)](WriteTxn& txn) -> Status {
    auto key = device_key(user, device_id);
    auto raw = txn.get(kDevices, key);
    if (!raw) return Error{Errc::not_found, "no such device"};
    auto dev = decode_device(*raw);
    if (!dev) return Error{Errc::internal, "corrupt device record"};
    dev->revoked = true;
    txn.del(kTokens, token_key(dev->token_hash));
    txn.put(kDevices, key, encode(*dev));
    drop_push_device(txn, user, device_id);
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::get_settings(UserId user, Callback<UserSettings> done) {
  std::string v;
  std::optional<UserRow> row;
  if (db_->Get(durable_read(), cf_[kUsers], user_key(user), &v).ok()) row = decode_user(user, v);
  if (!row || row->deleted)
    return done(Error{Errc::not_found, fmt::format("no such user: {}", user)});
  if (!db_->Get(durable_read(), cf_[kMeta], settings_key(user), &v).ok())
    return done(UserSettings{});
  auto s = decode_settings(v);
  if (!s) return done(Error{Errc::internal, "corrupt settings record"});
  done(std::move(*s));
}

void RocksStore::set_presence_visibility(UserId user, PresenceVisibility vis, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->fn = [user, vis](WriteTxn& txn) {
    return update_settings(txn, user, [vis](UserSettings& s) { s.presence = vis; });
  };
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::set_last_seen(UserId user, int64_t ts, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->fn = [user, ts](WriteTxn& txn) {
    return update_settings(txn, user,
                           [ts](UserSettings& s) { s.last_seen = std::max(s.last_seen, ts); });
  };
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::delete_user(UserId user, Callback<DeleteUserResult> done) {
  auto op = std::make_unique<ValueOp<DeleteUserResult>>();
  op->done = done;
  op->fn = [user = std::move(user)](WriteTxn& txn) -> Result<DeleteUserResult> {
    auto ukey = user_key(user);
    auto raw = txn.get(kUsers, ukey);
    std::optional<UserRow> row;
    if (raw) row = decode_user(user, *raw);
    if (raw && !row) return Error{Errc::internal, "corrupt user record"};
    if (!row || row->deleted) return Error{Errc::not_found, fmt::format("no such user: {}", user)};

    // Everything is read first, so that an error leaves nothing half-written.
    std::vector<std::pair<std::string, DeviceRecord>> live;  // key, device
    std::string dprefix = user_prefix(user);
    for (auto& [key, value] : txn.scan(kDevices, dprefix, prefix_end(dprefix))) {
      auto dev = decode_device(value);
      if (!dev) return Error{Errc::internal, "corrupt device record"};
      if (!dev->revoked) live.emplace_back(std::move(key), std::move(*dev));
    }
    // The user's media marks: its owner mark and its references go; a record that nothing
    // else holds goes with them, one that only owners still hold becomes pending.
    struct Plan {
      std::vector<std::string> drop;  // keys to delete
      std::optional<MediaRecord> rec;
      bool remove = false, pending = false;
    };
    std::vector<Plan> plans;
    std::string mprefix = media_user_prefix(user);
    for (auto& [key, value] : txn.scan(kMedia, mprefix, prefix_end(mprefix))) {
      auto mine = decode_media_user_key(key);
      Plan p;
      p.drop.push_back(key);
      if (!mine) {
        plans.push_back(std::move(p));
        continue;
      }
      const std::string& id = mine->second;
      std::string my_owner = media_owner_key(id, user);
      if (txn.get(kMedia, my_owner)) p.drop.push_back(my_owner);
      std::string oprefix = media_owner_prefix(id);
      bool owned = false;  // by someone else
      for (const auto& [okey, ovalue] : txn.scan(kMedia, oprefix, prefix_end(oprefix), 2))
        owned = owned || okey != my_owner;
      std::string my_refs = media_ref_prefix(id, user);
      size_t mine_count = 0;
      for (auto& [rkey, rvalue] : txn.scan(kMedia, my_refs, prefix_end(my_refs))) {
        p.drop.push_back(std::move(rkey));
        ++mine_count;
      }
      std::string rprefix = media_ref_prefix(id);
      bool referenced =  // by someone else: there are more references than the user's
          txn.scan(kMedia, rprefix, prefix_end(rprefix), mine_count + 1).size() > mine_count;
      if (auto rraw = txn.get(kMedia, media_key(id))) {
        p.rec = decode_media(id, *rraw);
        if (!p.rec) return Error{Errc::internal, "corrupt media record"};
        p.remove = !owned && !referenced;
        p.pending = owned && !referenced;
      }
      plans.push_back(std::move(p));
    }

    DeleteUserResult r;
    row->deleted = true;
    row->user.password_hash.clear();
    txn.put(kUsers, ukey, encode(*row));
    for (auto& [key, dev] : live) {
      dev.revoked = true;
      txn.del(kTokens, token_key(dev.token_hash));
      txn.put(kDevices, key, encode(dev));
      r.devices.push_back(dev.device_id);
    }
    txn.del(kMeta, settings_key(user));
    drop_push_user(txn, user);
    for (auto& p : plans) {
      for (auto& key : p.drop) txn.del(kMedia, std::move(key));
      if (!p.rec) continue;
      if (p.remove) {
        txn.del(kMedia, media_key(p.rec->id));
        txn.del(kMedia, media_pending_key(p.rec->uploaded_at, p.rec->id));
        r.removed_media.push_back(p.rec->id);
      } else if (p.pending) {
        txn.put(kMedia, media_pending_key(p.rec->uploaded_at, p.rec->id), "");
      }
    }
    return r;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

}  // namespace parley::store::rocks
