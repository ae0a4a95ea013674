// ShardedPgStore: accounts, devices, settings, media and push (docs/SCALING.md, "Sharding the
// store"). What is keyed by one user (account, devices, settings, push targets, settings,
// jobs, mutes and dead letters) lives on the user's server, whose PgStore runs the op as it
// does alone. What spans servers:
// - a token names no user: every server is asked;
// - the push queue is every server's: claims and stats merge, enqueues go by user;
// - a chat mute checks membership on the chat's server, then writes on the user's;
// - a media record, its owner marks and its references live on the record's server: an
//   upload checks the uploader on the user's server first, an access check asks the chats'
//   servers about membership;
// - deleting a user: the account on the user's server, then the user's media marks on every
//   server.
// A step on a second server runs after the first one committed: these ops are not one
// commit any more (see each for what that means).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "store/postgres/pg_internal.h"
#include "store/postgres/pg_sharded_store.h"
#include "store/rules/push.h"

namespace parley::store::pg {

namespace {

// Which server takes the remainder of a sweep's limit first, so that a limit smaller than
// the number of servers does not always skip the same ones.
std::atomic<uint32_t> sweep_turn{0};

bool job_before(const PushJob& a, const PushJob& b) {
  return std::tie(a.due_at, a.user, a.device_id, a.chat_id) <
         std::tie(b.due_at, b.user, b.device_id, b.chat_id);
}

}  // namespace

// Accounts and devices: the user's server --------------------------------------------------

void ShardedPgStore::create_user(UserRecord user, Callback<Unit> done) {
  auto& s = user_server(user.id);
  s.create_user(std::move(user), std::move(done));
}

void ShardedPgStore::get_user(UserId id, Callback<UserRecord> done) {
  auto& s = user_server(id);
  s.get_user(std::move(id), std::move(done));
}

void ShardedPgStore::ensure_user(UserId id, Callback<Unit> done) {
  auto& s = user_server(id);
  s.ensure_user(std::move(id), std::move(done));
}

void ShardedPgStore::create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) {
  auto& s = user_server(device.user);
  s.create_device(std::move(device), max_devices, std::move(done));
}

// A token hash names no user: every server looks. The first device found (in server order)
// wins; unauthorized only when every server said so.
void ShardedPgStore::find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) {
  gather<DeviceRecord>(
      shards_.size(),
      [this, &token_hash](size_t i, Callback<DeviceRecord> cb) {
        shards_[i]->find_device_by_token(token_hash, std::move(cb));
      },
      [done = std::move(done)](std::vector<Result<DeviceRecord>> all) {
        const Error* failure = nullptr;
        bool same_failure = true;  // every server failed alike (a bad token hash)
        for (auto& r : all) {
          if (r.ok()) return done(std::move(r.value()));
          if (r.error().code == Errc::unauthorized) {
            same_failure = false;
            continue;
          }
          if (failure && failure->code != r.error().code) same_failure = false;
          if (!failure) failure = &r.error();
        }
        if (!failure) return done(Error{Errc::unauthorized, "invalid token"});
        if (same_failure) return done(*failure);
        // Not found where it was looked for, but a server that may hold it did not answer.
        done(Error{Errc::unavailable, failure->message});
      });
}

void ShardedPgStore::list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) {
  auto& s = user_server(user);
  s.list_devices(std::move(user), std::move(done));
}

void ShardedPgStore::revoke_device(UserId user, std::string device_id, Callback<Unit> done) {
  auto& s = user_server(user);
  s.revoke_device(std::move(user), std::move(device_id), std::move(done));
}

// Settings: the user's server --------------------------------------------------------------

void ShardedPgStore::get_settings(UserId user, Callback<UserSettings> done) {
  auto& s = user_server(user);
  s.get_settings(std::move(user), std::move(done));
}

void ShardedPgStore::set_presence_visibility(UserId user, PresenceVisibility v,
                                             Callback<Unit> done) {
  auto& s = user_server(user);
  s.set_presence_visibility(std::move(user), v, std::move(done));
}

void ShardedPgStore::set_last_seen(UserId user, int64_t ts, Callback<Unit> done) {
  auto& s = user_server(user);
  s.set_last_seen(std::move(user), ts, std::move(done));
}

// Media: the record's server ---------------------------------------------------------------

// The uploader is checked on its server, then the record and the owner mark are written on
// the record's (one commit when that is the same server). A user deleted between the two
// may keep an owner mark: it grants nothing (a deleted user cannot log in) and holds
// nothing back from a sweep.
void ShardedPgStore::put_media(MediaRecord record, UserId uploader, Callback<Unit> done) {
  if (!valid_media_id(record.id)) return done(Error{Errc::bad_request, "bad media id"});
  if (placement_.user_shard(uploader) == placement_.media_shard(record.id)) {
    auto& s = media_server(record.id);
    return s.put_media(std::move(record), std::move(uploader), std::move(done));
  }
  auto& us = user_server(uploader);
  us.submit<Unit>(
      false,
      [uploader](PgConn& c) -> Status {
        if (!live_user(c, uploader)) return no_user(uploader);
        return ok_status();
      },
      [this, rec = std::move(record), uploader, done = std::move(done)](Status live) {
        if (!live) return done(live.error());
        media_server(rec.id).submit<Unit>(
            true,
            [rec, uploader](PgConn& c) -> Status {
              return put_media_record(c, rec, uploader, false);
            },
            done);
      });
}

void ShardedPgStore::get_media(std::string id, Callback<MediaRecord> done) {
  auto& s = media_server(id);
  s.get_media(std::move(id), std::move(done));
}

// The record's server says whether `user` owns it and which chats refer to it; then each of
// those chats' servers whether `user` is an active member of one of its chats.
void ShardedPgStore::media_access(UserId user, std::string id, Callback<bool> done) {
  if (!valid_media_id(id)) return done(false);
  auto& ms = media_server(id);
  ms.submit<MediaHolders>(
      false, [user, id](PgConn& c) -> Result<MediaHolders> { return media_holders(c, id, user); },
      [this, user, done = std::move(done)](Result<MediaHolders> h) {
        if (!h) return done(h.error());
        if (h->owner) return done(true);
        if (h->chats.empty()) return done(false);
        std::map<uint32_t, std::vector<ChatId>> by_server;
        for (ChatId chat : h->chats) by_server[placement_.chat_shard(chat)].push_back(chat);
        std::vector<std::pair<uint32_t, std::vector<ChatId>>> parts(by_server.begin(),
                                                                    by_server.end());
        gather<bool>(
            parts.size(),
            [this, &parts, &user](size_t i, Callback<bool> cb) {
              shards_[parts[i].first]->submit<bool>(
                  false,
                  [chats = parts[i].second, user](PgConn& c) -> Result<bool> {
                    for (ChatId chat : chats) {
                      auto vis = visible_range(c, chat, user);
                      if (vis && vis->member) return true;
                    }
                    return false;
                  },
                  std::move(cb));
            },
            [done](std::vector<Result<bool>> all) {
              const Error* failure = nullptr;
              for (const auto& r : all) {
                if (r.ok() && r.value()) return done(true);
                if (!r.ok() && !failure) failure = &r.error();
              }
              if (failure) return done(*failure);  // a chat that may grant it did not answer
              done(false);
            });
      });
}

// Every server sweeps its own records (their references are local to it) with its share of
// the limit, in a commit of its own. What a server removed is returned even when another
// failed (the caller removes those objects); an error only when every server failed.
void ShardedPgStore::sweep_media(int64_t uploaded_before, uint32_t limit,
                                 Callback<std::vector<std::string>> done) {
  const size_t n = shards_.size();
  if (limit == 0 || n == 0) return done(std::vector<std::string>{});
  std::vector<uint32_t> share(n, static_cast<uint32_t>(limit / n));
  const size_t first = sweep_turn.fetch_add(1, std::memory_order_relaxed) % n;
  for (size_t k = 0; k < limit % n; ++k) ++share[(first + k) % n];
  std::vector<size_t> active;
  for (size_t i = 0; i < n; ++i)
    if (share[i] > 0) active.push_back(i);
  gather<std::vector<std::string>>(
      active.size(),
      [this, &active, &share, uploaded_before](size_t k, Callback<std::vector<std::string>> cb) {
        shards_[active[k]]->sweep_media(uploaded_before, share[active[k]], std::move(cb));
      },
      [done = std::move(done)](std::vector<Result<std::vector<std::string>>> all) {
        std::vector<std::string> removed;
        const Error* failure = nullptr;
        bool any_ok = false;
        for (auto& r : all) {
          if (!r.ok()) {
            if (!failure) failure = &r.error();
            continue;
          }
          any_ok = true;
          for (auto& id : r.value()) removed.push_back(std::move(id));
        }
        if (!any_ok && failure) return done(*failure);
        done(std::move(removed));
      });
}

// The account part on the user's server (not_found decided there, before anything else),
// then the media part on every server. Once the account part committed the user is deleted
// and its devices must be closed: the answer is ok even if a server's media part failed
// (that server keeps the user's marks there, and the records they hold).
void ShardedPgStore::delete_user(UserId user, Callback<DeleteUserResult> done) {
  if (shards_.size() == 1) return shards_[0]->delete_user(std::move(user), std::move(done));
  auto& us = user_server(user);
  us.submit<DeleteUserResult>(
      true, [user](PgConn& c) -> Result<DeleteUserResult> { return delete_user_account(c, user); },
      [this, user, done = std::move(done)](Result<DeleteUserResult> account) {
        if (!account) return done(account.error());
        gather<std::vector<std::string>>(
            shards_.size(),
            [this, &user](size_t i, Callback<std::vector<std::string>> cb) {
              shards_[i]->submit<std::vector<std::string>>(
                  true,
                  [user](PgConn& c) -> Result<std::vector<std::string>> {
                    return delete_user_media(c, user);
                  },
                  std::move(cb));
            },
            [result = std::move(account.value()),
             done](std::vector<Result<std::vector<std::string>>> parts) mutable {
              for (auto& p : parts) {
                if (!p.ok()) {
                  spdlog::warn("delete_user: media marks on a server: {}", p.error().message);
                  continue;
                }
                for (auto& id : p.value()) result.removed_media.push_back(std::move(id));
              }
              std::sort(result.removed_media.begin(), result.removed_media.end());
              result.removed_media.erase(
                  std::unique(result.removed_media.begin(), result.removed_media.end()),
                  result.removed_media.end());
              done(std::move(result));
            });
      });
}

// Push: the user's server, the queue on every server ----------------------------------------

void ShardedPgStore::set_push_target(PushTarget target, Callback<Unit> done) {
  auto& s = user_server(target.user);
  s.set_push_target(std::move(target), std::move(done));
}

void ShardedPgStore::remove_push_target(UserId user, std::string device_id, std::string token,
                                        Callback<Unit> done) {
  auto& s = user_server(user);
  s.remove_push_target(std::move(user), std::move(device_id), std::move(token), std::move(done));
}

void ShardedPgStore::push_targets(UserId user, Callback<std::vector<PushTarget>> done) {
  auto& s = user_server(user);
  s.push_targets(std::move(user), std::move(done));
}

// Membership is read on the chat's server, then the mute written on the user's (with the
// user's liveness checked there). One commit when both are the same server. Errors come in
// the single-server order: bad_request, the user, then the chat.
void ShardedPgStore::set_chat_mute(UserId user, ChatId chat, int64_t muted_until,
                                   Callback<Unit> done) {
  auto row = rules::mute_row(muted_until);
  if (!row) return done(row.error());
  if (placement_.user_shard(user) == placement_.chat_shard(chat)) {
    auto& s = user_server(user);
    return s.set_chat_mute(std::move(user), chat, muted_until, std::move(done));
  }
  auto& cs = chat_server(chat);
  cs.submit<Unit>(
      false, [user, chat](PgConn& c) -> Status { return check_active_member(c, chat, user); },
      [this, user, chat, until = row.value(), done = std::move(done)](Status member) {
        auto& us = user_server(user);
        if (!member) {
          Error refusal = member.error();
          if (refusal.code != Errc::not_found && refusal.code != Errc::forbidden)
            return done(refusal);
          // A missing user comes before the chat's refusal (as on one server).
          us.submit<Unit>(
              false,
              [user](PgConn& c) -> Status {
                if (!live_user(c, user)) return no_user(user);
                return ok_status();
              },
              [refusal, done](Status live) {
                if (!live) return done(live.error());
                done(refusal);
              });
          return;
        }
        us.submit<Unit>(
            true,
            [user, chat, until](PgConn& c) -> Status {
              if (!live_user(c, user)) return no_user(user);
              write_chat_mute(c, user, chat, until);
              return ok_status();
            },
            done);
      });
}

void ShardedPgStore::set_push_settings(UserId user, int64_t dnd_until, bool preview,
                                       Callback<Unit> done) {
  auto& s = user_server(user);
  s.set_push_settings(std::move(user), dnd_until, preview, std::move(done));
}

// Everything an item needs (the user's do-not-disturb, mutes, targets and jobs) is on the
// user's server: one enqueue (one commit) per server, the counts summed. An error from any
// is the answer, once all completed (the others committed theirs).
void ShardedPgStore::enqueue_push(std::vector<PushEnqueue> items, int64_t now,
                                  Callback<uint32_t> done) {
  if (items.empty()) return done(uint32_t{0});
  std::map<uint32_t, std::vector<PushEnqueue>> by_server;
  for (auto& item : items) by_server[placement_.user_shard(item.user)].push_back(std::move(item));
  std::vector<std::pair<uint32_t, std::vector<PushEnqueue>>> parts;
  for (auto& [i, group] : by_server) parts.emplace_back(i, std::move(group));
  gather<uint32_t>(
      parts.size(),
      [this, &parts, now](size_t k, Callback<uint32_t> cb) {
        shards_[parts[k].first]->enqueue_push(std::move(parts[k].second), now, std::move(cb));
      },
      [done = std::move(done)](std::vector<Result<uint32_t>> all) {
        uint32_t queued = 0;
        for (const auto& r : all) {
          if (!r.ok()) return done(r.error());
          queued += r.value();
        }
        done(queued);
      });
}

void ShardedPgStore::drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) {
  auto& s = user_server(user);
  s.drop_device_pushes(std::move(user), std::move(device_id), std::move(done));
}

// Every server leases up to ceil(limit / servers) of its due jobs; the union is merged in
// due order and cut at `limit`. The jobs cut off were leased too: their leases are cleared
// again (if still this claim's) before the answer, so that the next claim finds them. A
// server that failed claims nothing this time (an error only when every server failed).
void ShardedPgStore::claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                                     Callback<std::vector<PushJob>> done) {
  const size_t n = shards_.size();
  if (limit == 0 || n == 0) return done(std::vector<PushJob>{});
  const auto per = static_cast<uint32_t>((limit + n - 1) / n);
  gather<std::vector<PushJob>>(
      n,
      [this, now, per, lease_until](size_t i, Callback<std::vector<PushJob>> cb) {
        shards_[i]->claim_push_jobs(now, per, lease_until, std::move(cb));
      },
      [this, limit, lease_until,
       done = std::move(done)](std::vector<Result<std::vector<PushJob>>> all) {
        std::vector<std::pair<PushJob, size_t>> jobs;  // with the server that leased it
        const Error* failure = nullptr;
        bool any_ok = false;
        for (size_t i = 0; i < all.size(); ++i) {
          if (!all[i].ok()) {
            if (!failure) failure = &all[i].error();
            continue;
          }
          any_ok = true;
          for (auto& j : all[i].value()) jobs.emplace_back(std::move(j), i);
        }
        if (!any_ok && failure) return done(*failure);
        std::sort(jobs.begin(), jobs.end(),
                  [](const auto& a, const auto& b) { return job_before(a.first, b.first); });
        std::vector<PushJob> out;
        std::map<size_t, std::vector<PushJob>> surplus;
        for (auto& [job, i] : jobs) {
          if (out.size() < limit)
            out.push_back(std::move(job));
          else
            surplus[i].push_back(std::move(job));
        }
        if (surplus.empty()) return done(std::move(out));
        std::vector<std::pair<size_t, std::vector<PushJob>>> releases(surplus.begin(),
                                                                      surplus.end());
        gather<Unit>(
            releases.size(),
            [this, &releases, lease_until](size_t k, Callback<Unit> cb) {
              shards_[releases[k].first]->submit<Unit>(
                  true,
                  [jobs = std::move(releases[k].second), lease_until](PgConn& c) -> Status {
                    for (const auto& j : jobs)
                      c.q("UPDATE push_jobs SET lease_until = 0 WHERE user_id = $1 AND "
                          "device_id = $2 AND chat_id = $3 AND created_at = $4 AND "
                          "lease_until = $5",
                          j.user, j.device_id, j.chat_id, j.created_at, lease_until);
                    return ok_status();
                  },
                  std::move(cb));
            },
            // A release that failed leaves its jobs leased: they are claimed once the lease
            // expires, as after a claimer that died.
            [out = std::move(out), done](std::vector<Result<Unit>>) mutable {
              done(std::move(out));
            });
      });
}

void ShardedPgStore::finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at,
                                     std::string error, Callback<Unit> done) {
  auto& s = user_server(job.user);
  s.finish_push_job(std::move(job), outcome, retry_at, std::move(error), std::move(done));
}

void ShardedPgStore::push_queue_stats(Callback<PushQueueStats> done) {
  gather<PushQueueStats>(
      shards_.size(),
      [this](size_t i, Callback<PushQueueStats> cb) {
        shards_[i]->push_queue_stats(std::move(cb));
      },
      [done = std::move(done)](std::vector<Result<PushQueueStats>> all) {
        PushQueueStats sum;
        for (const auto& r : all) {
          if (!r.ok()) return done(r.error());
          sum.depth += r->depth;
          sum.dead_letters += r->dead_letters;
          if (r->oldest_created_at != 0 &&
              (sum.oldest_created_at == 0 || r->oldest_created_at < sum.oldest_created_at))
            sum.oldest_created_at = r->oldest_created_at;
        }
        done(sum);
      });
}

}  // namespace parley::store::pg
