// Push notifications (docs/PUSH.md): targets, chat mutes, the durable job queue (enqueue
// with collapse, claim with leases, finish) and its stats. What is pushed when is decided by
// store/rules/push.h. Claims lock due jobs with FOR UPDATE SKIP LOCKED, so that two workers
// or two nodes never lease the same job.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"
#include "store/rules/push.h"

namespace parley::store::pg {

namespace {

constexpr const char* kJobCols =
    "user_id, device_id, chat_id, count, last_seq, last_sender, created_at, due_at, attempts, "
    "version, lease_until";

PushJob job_at(const PgResult& r, int row) {
  PushJob j;
  j.user = r.str(row, 0);
  j.device_id = r.str(row, 1);
  j.chat_id = r.u64(row, 2);
  j.count = static_cast<uint32_t>(r.i64(row, 3));
  j.last_seq = r.u64(row, 4);
  j.last_sender = r.str(row, 5);
  j.created_at = r.i64(row, 6);
  j.due_at = r.i64(row, 7);
  j.attempts = static_cast<uint32_t>(r.i64(row, 8));
  j.version = r.u64(row, 9);
  j.lease_until = r.i64(row, 10);
  return j;
}

std::optional<PushJob> load_job(PgConn& c, const UserId& user, const std::string& device,
                                ChatId chat) {
  auto r = c.q(fmt::format("SELECT {} FROM push_jobs WHERE user_id = $1 AND device_id = $2 AND "
                           "chat_id = $3 FOR UPDATE",
                           kJobCols),
               user, device, chat);
  if (r.empty()) return std::nullopt;
  return job_at(r, 0);
}

void update_job(PgConn& c, const PushJob& j) {
  c.q("UPDATE push_jobs SET count = $4, last_seq = $5, last_sender = $6, created_at = $7, "
      "due_at = $8, attempts = $9, version = $10, lease_until = $11 WHERE user_id = $1 AND "
      "device_id = $2 AND chat_id = $3",
      j.user, j.device_id, j.chat_id, int64_t(j.count), j.last_seq, j.last_sender, j.created_at,
      j.due_at, int64_t(j.attempts), j.version, j.lease_until);
}

void delete_job(PgConn& c, const PushJob& j) {
  c.q("DELETE FROM push_jobs WHERE user_id = $1 AND device_id = $2 AND chat_id = $3", j.user,
      j.device_id, j.chat_id);
}

std::optional<PushTarget> load_target(PgConn& c, const UserId& user, const std::string& device) {
  auto r =
      c.q("SELECT provider, token, app_id, created_at FROM push_targets WHERE user_id = $1 AND "
          "device_id = $2",
          user, device);
  if (r.empty()) return std::nullopt;
  return PushTarget{user,        device,      static_cast<PushProvider>(r.i64(0, 0)),
                    r.str(0, 1), r.str(0, 2), r.i64(0, 3)};
}

}  // namespace

Status check_active_member(PgConn& c, ChatId chat, const UserId& user) {
  auto row = load_chat(c, chat, false);
  if (!row || row->g.deleted) return no_chat(chat);
  if (row->g.kind == ChatKind::direct) {
    if (!row->has_member(user)) return not_member();
    return ok_status();
  }
  auto m = get_member(c, chat, user);
  if (!m || m->left_seq) return not_member();
  return ok_status();
}

void write_chat_mute(PgConn& c, const UserId& user, ChatId chat,
                     std::optional<int64_t> muted_until) {
  if (!muted_until)
    c.q("DELETE FROM push_mutes WHERE user_id = $1 AND chat_id = $2", user, chat);
  else
    c.q("INSERT INTO push_mutes (user_id, chat_id, muted_until) VALUES ($1, $2, $3) ON "
        "CONFLICT (user_id, chat_id) DO UPDATE SET muted_until = EXCLUDED.muted_until",
        user, chat, *muted_until);
}

void drop_push_device(PgConn& c, const UserId& user, const std::string& device) {
  c.q("DELETE FROM push_targets WHERE user_id = $1 AND device_id = $2", user, device);
  c.q("DELETE FROM push_jobs WHERE user_id = $1 AND device_id = $2", user, device);
}

void drop_push_user(PgConn& c, const UserId& user) {
  c.q("DELETE FROM push_targets WHERE user_id = $1", user);
  c.q("DELETE FROM push_jobs WHERE user_id = $1", user);
  c.q("DELETE FROM push_mutes WHERE user_id = $1", user);
}

void PgStore::set_push_target(PushTarget target, Callback<Unit> done) {
  submit<Unit>(
      true,
      [t = std::move(target)](PgConn& c) -> Status {
        if (!live_user(c, t.user)) return no_user(t.user);
        auto d = c.q("SELECT revoked FROM devices WHERE user_id = $1 AND device_id = $2", t.user,
                     t.device_id);
        if (d.empty() || d.boolean(0, 0))
          return Error{Errc::not_found, fmt::format("no such device: {}", t.device_id)};
        if (auto st = rules::validate_push_target(t); !st) return st;
        c.q("INSERT INTO push_targets (user_id, device_id, provider, token, app_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, device_id) DO UPDATE SET "
            "provider = EXCLUDED.provider, token = EXCLUDED.token, app_id = EXCLUDED.app_id, "
            "created_at = EXCLUDED.created_at",
            t.user, t.device_id, int64_t(t.provider), t.token, t.app_id, t.created_at);
        return ok_status();
      },
      std::move(done));
}

void PgStore::remove_push_target(UserId user, std::string device_id, std::string token,
                                 Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), device_id = std::move(device_id),
       token = std::move(token)](PgConn& c) -> Status {
        if (!token.empty()) {  // only that registration: a newer one stays
          auto t = load_target(c, user, device_id);
          if (!t || t->token != token) return ok_status();
        }
        drop_push_device(c, user, device_id);
        return ok_status();
      },
      std::move(done));
}

void PgStore::push_targets(UserId user, Callback<std::vector<PushTarget>> done) {
  submit<std::vector<PushTarget>>(
      false,
      [user = std::move(user)](PgConn& c) -> Result<std::vector<PushTarget>> {
        auto r =
            c.q("SELECT device_id, provider, token, app_id, created_at FROM push_targets WHERE "
                "user_id = $1 ORDER BY device_id",
                user);
        std::vector<PushTarget> out;
        for (int i = 0; i < r.rows(); ++i)
          out.push_back(PushTarget{user, r.str(i, 0), static_cast<PushProvider>(r.i64(i, 1)),
                                   r.str(i, 2), r.str(i, 3), r.i64(i, 4)});
        return out;
      },
      std::move(done));
}

void PgStore::set_chat_mute(UserId user, ChatId chat, int64_t muted_until, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), chat, muted_until](PgConn& c) -> Status {
        auto row = rules::mute_row(muted_until);
        if (!row) return row.error();
        if (!live_user(c, user)) return no_user(user);
        if (auto st = check_active_member(c, chat, user); !st) return st;
        write_chat_mute(c, user, chat, row.value());
        return ok_status();
      },
      std::move(done));
}

void PgStore::enqueue_push(std::vector<PushEnqueue> items, int64_t now, Callback<uint32_t> done) {
  submit<uint32_t>(
      true,
      [items = std::move(items), now](PgConn& c) -> Result<uint32_t> {
        uint32_t queued = 0;
        for (const auto& item : items) {
          std::optional<int64_t> dnd_until, muted_until;
          auto s = c.q("SELECT dnd_until FROM users WHERE id = $1 AND NOT deleted", item.user);
          if (!s.empty()) dnd_until = s.i64(0, 0);
          auto m = c.q("SELECT muted_until FROM push_mutes WHERE user_id = $1 AND chat_id = $2",
                       item.user, item.chat_id);
          if (!m.empty()) muted_until = m.i64(0, 0);
          if (!rules::push_allowed(dnd_until, muted_until, now)) continue;
          auto targets =
              c.q("SELECT device_id FROM push_targets WHERE user_id = $1 AND NOT (device_id = "
                  "ANY($2::text[])) ORDER BY device_id",
                  item.user, PgTextArray{item.connected});
          for (int i = 0; i < targets.rows(); ++i) {
            std::string device = targets.str(i, 0);
            // A new job, unless one is queued: then the message collapses into it (locked,
            // so that a concurrent collapse or finish waits for this one).
            PushJob fresh = rules::collapse_push(std::nullopt, item, device, now);
            auto ins =
                c.q("INSERT INTO push_jobs (user_id, device_id, chat_id, count, last_seq, "
                    "last_sender, created_at, due_at, attempts, version, lease_until) VALUES ($1, "
                    "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING 1",
                    fresh.user, fresh.device_id, fresh.chat_id, int64_t(fresh.count),
                    fresh.last_seq, fresh.last_sender, fresh.created_at, fresh.due_at,
                    int64_t(fresh.attempts), fresh.version, fresh.lease_until);
            if (ins.empty()) {
              auto prev = load_job(c, item.user, device, item.chat_id);
              if (!prev) return Error{Errc::unavailable, "push job vanished: retry"};
              update_job(c, rules::collapse_push(prev, item, device, now));
            }
            ++queued;
          }
        }
        return queued;
      },
      std::move(done));
}

void PgStore::drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) {
  submit<Unit>(
      true,
      [user = std::move(user), device_id = std::move(device_id)](PgConn& c) -> Status {
        c.q("DELETE FROM push_jobs WHERE user_id = $1 AND device_id = $2", user, device_id);
        return ok_status();
      },
      std::move(done));
}

void PgStore::claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                              Callback<std::vector<PushJob>> done) {
  submit<std::vector<PushJob>>(
      true,
      [now, limit, lease_until](PgConn& c) -> Result<std::vector<PushJob>> {
        std::vector<PushJob> out;
        if (limit == 0) return out;
        // Due, not leased, in due order; a job another transaction holds is skipped (it is
        // being claimed or finished there).
        auto r = c.q(
            fmt::format("WITH due AS (SELECT j.user_id, j.device_id, j.chat_id FROM push_jobs j "
                        "JOIN push_targets t ON t.user_id = j.user_id AND t.device_id = "
                        "j.device_id WHERE j.due_at <= $1 AND j.lease_until <= $1 ORDER BY "
                        "j.due_at, j.user_id, j.device_id, j.chat_id LIMIT $2 FOR UPDATE OF j "
                        "SKIP LOCKED) "
                        "UPDATE push_jobs p SET lease_until = $3 FROM due, push_targets t "
                        "WHERE p.user_id = due.user_id AND p.device_id = due.device_id AND "
                        "p.chat_id = due.chat_id AND t.user_id = p.user_id AND t.device_id = "
                        "p.device_id RETURNING {}, t.provider, t.token, t.app_id, t.created_at",
                        "p.user_id, p.device_id, p.chat_id, p.count, p.last_seq, p.last_sender, "
                        "p.created_at, p.due_at, p.attempts, p.version, p.lease_until"),
            now, int64_t(limit), lease_until);
        for (int i = 0; i < r.rows(); ++i) {
          PushJob j = job_at(r, i);
          j.target = PushTarget{j.user,       j.device_id,  static_cast<PushProvider>(r.i64(i, 11)),
                                r.str(i, 12), r.str(i, 13), r.i64(i, 14)};
          out.push_back(std::move(j));
        }
        std::sort(out.begin(), out.end(), [](const PushJob& a, const PushJob& b) {
          return std::tie(a.due_at, a.user, a.device_id, a.chat_id) <
                 std::tie(b.due_at, b.user, b.device_id, b.chat_id);
        });
        return out;
      },
      std::move(done));
}

void PgStore::finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at, std::string error,
                              Callback<Unit> done) {
  submit<Unit>(
      true,
      [job = std::move(job), outcome, retry_at, error = std::move(error)](PgConn& c) -> Status {
        // The job as it stands; a job created after the claimed one went (same key, another
        // created_at) is not the one that was sent: it is left alone.
        auto cur = load_job(c, job.user, job.device_id, job.chat_id);
        if (cur && cur->created_at != job.created_at) cur.reset();
        if (outcome == PushOutcome::token_gone) {
          auto target = load_target(c, job.user, job.device_id);
          if (!target || job.target.token.empty() || target->token == job.target.token) {
            drop_push_device(c, job.user, job.device_id);
          } else if (cur) {  // registered again since the claim: the job goes to the new token
            PushJob next = *cur;
            next.lease_until = 0;
            update_job(c, next);
          }
          return ok_status();
        }
        if (!cur) return ok_status();
        int64_t now = now_ms();
        auto f = rules::finish_push(*cur, job, outcome, retry_at, now);
        switch (f.action) {
          case rules::PushFinish::Action::remove:
            delete_job(c, *cur);
            break;
          case rules::PushFinish::Action::replace:
            update_job(c, f.next);
            break;
          case rules::PushFinish::Action::dead_letter: {
            const PushJob& d = f.next;
            c.q("INSERT INTO push_dead_letters (user_id, device_id, chat_id, count, last_seq, "
                "created_at, attempts, failed_at, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                "$9)",
                d.user, d.device_id, d.chat_id, int64_t(d.count), d.last_seq, d.created_at,
                int64_t(d.attempts), now, error);
            delete_job(c, *cur);
            break;
          }
        }
        return ok_status();
      },
      std::move(done));
}

void PgStore::push_queue_stats(Callback<PushQueueStats> done) {
  submit<PushQueueStats>(
      false,
      [](PgConn& c) -> Result<PushQueueStats> {
        auto r = c.q(
            "SELECT (SELECT count(*) FROM push_jobs), (SELECT coalesce(min(created_at), 0) FROM "
            "push_jobs), (SELECT count(*) FROM push_dead_letters)");
        PushQueueStats s;
        s.depth = r.u64(0, 0);
        s.oldest_created_at = r.i64(0, 1);
        s.dead_letters = r.u64(0, 2);
        return s;
      },
      std::move(done));
}

}  // namespace parley::store::pg
