// Accounts (users, devices, tokens), user settings and deleting a user's data.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "store/postgres/pg_internal.h"

namespace parley::store::pg {

namespace {

constexpr const char* kDeviceCols = "user_id, device_id, name, token_hash, created_at, revoked";

DeviceRecord device_at(const PgResult& r, int row) {
  DeviceRecord d;
  d.user = r.str(row, 0);
  d.device_id = r.str(row, 1);
  d.name = r.str(row, 2);
  d.token_hash = r.str(row, 3);
  d.created_at = r.i64(row, 4);
  d.revoked = r.boolean(row, 5);
  return d;
}

// A user row and its update log (pts and group count), created together.
bool insert_user(PgConn& c, const UserRecord& u) {
  auto r =
      c.q("INSERT INTO users (id, password_hash, created_at) VALUES ($1, $2, $3) "
          "ON CONFLICT (id) DO NOTHING RETURNING 1",
          u.id, u.password_hash, u.created_at);
  if (r.empty()) return false;
  c.q("INSERT INTO user_logs (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", u.id);
  return true;
}

// A settings write on a live user: not_found otherwise.
Status update_user(PgConn& c, const std::string& sql, const std::vector<PgParam>& params) {
  auto r = c.exec(sql, params);
  if (r.empty()) return no_user(params.front().value.value_or(""));
  return ok_status();
}

}  // namespace

void PgStore::create_user(UserRecord user, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user)](PgConn& c) -> Status {
        if (!insert_user(c, user)) return Error{Errc::username_taken, "username is taken"};
        return ok_status();
      },
      std::move(done));
}

void PgStore::ensure_user(UserId id, Callback<Unit> done) {
  submit<Unit>(
      true,
      [id = std::move(id)](PgConn& c) -> Status {
        for (int attempt = 0; attempt < 2; ++attempt) {
          auto r = c.q("SELECT deleted FROM users WHERE id = $1", id);
          if (!r.empty()) {
            if (r.boolean(0, 0)) return Error{Errc::forbidden, "account deleted"};
            return ok_status();
          }
          if (insert_user(c, UserRecord{id, "", 0})) return ok_status();
        }
        return ok_status();
      },
      std::move(done));
}

void PgStore::get_user(UserId id, Callback<UserRecord> done) {
  submit<UserRecord>(
      false,
      [id = std::move(id)](PgConn& c) -> Result<UserRecord> {
        auto r = c.q("SELECT password_hash, created_at, deleted FROM users WHERE id = $1", id);
        if (r.empty() || r.boolean(0, 2)) return Error{Errc::not_found, "no such user"};
        return UserRecord{id, r.str(0, 0), r.i64(0, 1)};
      },
      std::move(done));
}

void PgStore::create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) {
  submit<Unit>(
      true,
      [device = std::move(device), max_devices](PgConn& c) -> Status {
        // The count and the insert are one commit: concurrent creations for one user
        // serialise on a transaction-scoped advisory lock (the user may have no row).
        c.q("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "devices:" + device.user);
        if (max_devices > 0) {
          auto r =
              c.q("SELECT count(*) FROM devices WHERE user_id = $1 AND NOT revoked", device.user);
          uint64_t live = r.u64(0, 0);
          if (live >= max_devices)
            return Error{Errc::too_many_devices,
                         fmt::format("{} devices already: revoke one first", live)};
        }
        c.q("INSERT INTO devices (user_id, device_id, name, token_hash, created_at, revoked) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, device_id) DO UPDATE SET "
            "name = EXCLUDED.name, token_hash = EXCLUDED.token_hash, "
            "created_at = EXCLUDED.created_at, revoked = EXCLUDED.revoked",
            device.user, device.device_id, device.name, device.token_hash, device.created_at,
            device.revoked);
        return ok_status();
      },
      std::move(done));
}

void PgStore::find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) {
  submit<DeviceRecord>(
      false,
      [token_hash = std::move(token_hash)](PgConn& c) -> Result<DeviceRecord> {
        auto r = c.q(fmt::format("SELECT {} FROM devices WHERE token_hash = $1 AND NOT revoked "
                                 "ORDER BY user_id, device_id LIMIT 1",
                                 kDeviceCols),
                     token_hash);
        if (r.empty()) return Error{Errc::unauthorized, "invalid token"};
        return device_at(r, 0);
      },
      std::move(done));
}

void PgStore::list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) {
  submit<std::vector<DeviceRecord>>(
      false,
      [user = std::move(user)](PgConn& c) -> Result<std::vector<DeviceRecord>> {
        auto r = c.q(fmt::format("SELECT {} FROM devices WHERE user_id = $1 AND NOT revoked "
                                 "ORDER BY device_id",
                                 kDeviceCols),
                     user);
        std::vector<DeviceRecord> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(device_at(r, i));
        return out;
      },
      std::move(done));
}

void PgStore::revoke_device(UserId user, std::string device_id, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), device_id = std::move(device_id)](PgConn& c) -> Status {
        auto r = c.q(
            "UPDATE devices SET revoked = true WHERE user_id = $1 AND device_id = $2 RETURNING 1",
            user, device_id);
        if (r.empty()) return Error{Errc::not_found, "no such device"};
        drop_push_device(c, user, device_id);
        return ok_status();
      },
      std::move(done));
}

void PgStore::get_settings(UserId user, Callback<UserSettings> done) {
  submit<UserSettings>(
      false,
      [user = std::move(user)](PgConn& c) -> Result<UserSettings> {
        auto r =
            c.q("SELECT presence, last_seen, dnd_until, push_preview FROM users WHERE id = $1 AND "
                "NOT deleted",
                user);
        if (r.empty()) return no_user(user);
        UserSettings s;
        s.presence = static_cast<PresenceVisibility>(r.i64(0, 0));
        s.last_seen = r.i64(0, 1);
        s.dnd_until = r.i64(0, 2);
        s.push_preview = r.boolean(0, 3);
        return s;
      },
      std::move(done));
}

void PgStore::set_presence_visibility(UserId user, PresenceVisibility v, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), v](PgConn& c) {
        return update_user(
            c, "UPDATE users SET presence = $2 WHERE id = $1 AND NOT deleted RETURNING 1",
            {to_param(user), to_param(int64_t(v))});
      },
      std::move(done));
}

void PgStore::set_last_seen(UserId user, int64_t ts, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), ts](PgConn& c) {
        return update_user(c,
                           "UPDATE users SET last_seen = greatest(last_seen, $2) WHERE id = $1 "
                           "AND NOT deleted RETURNING 1",
                           {to_param(user), to_param(ts)});
      },
      std::move(done));
}

void PgStore::set_push_settings(UserId user, int64_t dnd_until, bool preview, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), dnd_until, preview](PgConn& c) {
        return update_user(c,
                           "UPDATE users SET dnd_until = $2, push_preview = $3 WHERE id = $1 AND "
                           "NOT deleted RETURNING 1",
                           {to_param(user), to_param(dnd_until), to_param(preview)});
      },
      std::move(done));
}

Result<DeleteUserResult> delete_user_account(PgConn& c, const UserId& user) {
  // The row stays (the name stays taken), marked deleted, its settings back to the
  // defaults and its password gone.
  auto u =
      c.q("UPDATE users SET deleted = true, password_hash = '', presence = 0, last_seen = 0, "
          "dnd_until = 0, push_preview = false WHERE id = $1 AND NOT deleted RETURNING 1",
          user);
  if (u.empty()) return no_user(user);
  DeleteUserResult r;
  auto d =
      c.q("UPDATE devices SET revoked = true WHERE user_id = $1 AND NOT revoked "
          "RETURNING device_id",
          user);
  for (int i = 0; i < d.rows(); ++i) r.devices.push_back(d.str(i, 0));
  drop_push_user(c, user);
  return r;
}

std::vector<std::string> delete_user_media(PgConn& c, const UserId& user) {
  // The user's media marks go: its uploads (owner marks), its messages' references and
  // pending marks. The records they held are locked first (the order sweeps lock them in),
  // then a record nothing else holds any more goes.
  std::vector<std::string> removed;
  auto ids =
      c.q("SELECT id FROM media WHERE id IN (SELECT media_id FROM media_owners WHERE user_id "
          "= $1 UNION SELECT media_id FROM media_refs WHERE sender = $1 UNION SELECT media_id "
          "FROM media_pending WHERE sender = $1) ORDER BY id FOR UPDATE",
          user);
  std::vector<std::string> held;
  for (int i = 0; i < ids.rows(); ++i) held.push_back(ids.str(i, 0));
  c.q("DELETE FROM media_owners WHERE user_id = $1", user);
  c.q("DELETE FROM media_refs WHERE sender = $1", user);
  c.q("DELETE FROM media_pending WHERE sender = $1", user);
  if (!held.empty()) {
    auto gone =
        c.q("DELETE FROM media m WHERE m.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM "
            "media_owners o WHERE o.media_id = m.id) AND NOT EXISTS (SELECT 1 FROM media_refs "
            "f WHERE f.media_id = m.id) AND NOT EXISTS (SELECT 1 FROM media_pending p WHERE "
            "p.media_id = m.id) RETURNING m.id",
            PgTextArray{held});
    for (int i = 0; i < gone.rows(); ++i) removed.push_back(gone.str(i, 0));
  }
  return removed;
}

void PgStore::delete_user(UserId user, Callback<DeleteUserResult> done) {
  submit<DeleteUserResult>(
      true,
      [user = std::move(user)](PgConn& c) -> Result<DeleteUserResult> {
        auto r = delete_user_account(c, user);
        if (!r) return r;
        r.value().removed_media = delete_user_media(c, user);
        return r;
      },
      std::move(done));
}

}  // namespace parley::store::pg
