// Push notifications (docs/PUSH.md): targets, chat mutes, the durable job queue (enqueue
// with collapse, claim with leases, finish) and its stats. What is pushed when is decided by
// store/rules/push.h.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"
#include "store/rules/push.h"

namespace parley::store::rocks {

// Push rows (codec.h). A job's row, its due and age index rows and the job counter change
// together, in write_push_job; every job write goes through it.

namespace {

void add_to_counter(WriteTxn& txn, const std::string& key, int64_t delta) {
  uint64_t n = 0;
  if (auto raw = txn.get(RocksStore::kPush, key)) n = decode_u64be(*raw);
  if (delta < 0)
    n -= std::min(n, static_cast<uint64_t>(-delta));
  else
    n += static_cast<uint64_t>(delta);
  txn.put(RocksStore::kPush, key, Encoder().u64be(n).take());
}

// Replaces the job `prev` (absent: none) with `next` (absent: removes it). Both, when given,
// are the same (user, device, chat).
void write_push_job(WriteTxn& txn, const PushJob* prev, const PushJob* next) {
  const PushJob& j = next ? *next : *prev;
  constexpr auto cf = RocksStore::kPush;
  if (prev && (!next || prev->due_at != next->due_at))
    txn.del(cf, push_due_key(prev->due_at, j.user, j.device_id, j.chat_id));
  if (next && (!prev || prev->due_at != next->due_at))
    txn.put(cf, push_due_key(next->due_at, j.user, j.device_id, j.chat_id), "");
  if (prev && (!next || prev->created_at != next->created_at))
    txn.del(cf, push_created_key(prev->created_at, j.user, j.device_id, j.chat_id));
  if (next && (!prev || prev->created_at != next->created_at))
    txn.put(cf, push_created_key(next->created_at, j.user, j.device_id, j.chat_id), "");
  if (next)
    txn.put(cf, push_job_key(j.user, j.device_id, j.chat_id), encode(*next));
  else
    txn.del(cf, push_job_key(j.user, j.device_id, j.chat_id));
  if (!prev != !next) add_to_counter(txn, push_job_count_key(), next ? 1 : -1);
}

// The job of (user, device, chat) as this batch sees it. An unreadable row is removed (its
// index rows cannot be found from it; claims skip and remove such leftovers).
std::optional<PushJob> load_push_job(WriteTxn& txn, const UserId& user, const std::string& device,
                                     ChatId chat) {
  auto key = push_job_key(user, device, chat);
  auto raw = txn.get(RocksStore::kPush, key);
  if (!raw) return std::nullopt;
  auto job = decode_push_job(user, device, chat, *raw);
  if (!job) {
    spdlog::warn("store: dropping an unreadable push job of {}/{} in chat {}", user, device, chat);
    txn.del(RocksStore::kPush, std::move(key));
    add_to_counter(txn, push_job_count_key(), -1);
  }
  return job;
}

// Removes every job whose key starts with `prefix` (a user's or a device's).
void drop_push_jobs(WriteTxn& txn, const std::string& prefix) {
  for (auto& [key, value] : txn.scan(RocksStore::kPush, prefix, prefix_end(prefix))) {
    auto k = decode_push_job_key(key);
    auto job = k ? decode_push_job(k->user, k->device, k->chat, value) : std::nullopt;
    if (job) {
      write_push_job(txn, &*job, nullptr);
    } else {
      txn.del(RocksStore::kPush, std::move(key));
      add_to_counter(txn, push_job_count_key(), -1);
    }
  }
}

}  // namespace

// The device's target and its queued jobs go (logout, revocation, a dead token).
void drop_push_device(WriteTxn& txn, const UserId& user, const std::string& device) {
  auto key = push_target_key(user, device);
  if (txn.get(RocksStore::kPush, key)) txn.del(RocksStore::kPush, std::move(key));
  drop_push_jobs(txn, push_job_prefix(user, device));
}

// Everything push keeps for the user: targets, jobs and mutes (delete_user).
void drop_push_user(WriteTxn& txn, const UserId& user) {
  for (const auto& prefix : {push_target_prefix(user), push_mute_prefix(user)})
    for (auto& [key, value] : txn.scan(RocksStore::kPush, prefix, prefix_end(prefix)))
      txn.del(RocksStore::kPush, std::move(key));
  drop_push_jobs(txn, push_job_prefix(user));
}

// Push notifications --------------------------------------------------------------------
// Rows and invariants: codec.h. Every write runs on the writer thread, so two claims never
// lease the same job and a collapse is ordered with the finish of the send it races with.

namespace {
// Whether `user` is an active member of `chat`: not_found for no such chat, else forbidden.
Status active_member(WriteTxn& txn, ChatId chat, const UserId& user) {
  ChatRecord* rec = txn.load_chat(chat);
  if (!rec || rec->deleted) return Error{Errc::not_found, fmt::format("no such chat: {}", chat)};
  if (rec->kind == ChatKind::direct) {
    if (std::find(rec->members.begin(), rec->members.end(), user) == rec->members.end())
      return Error{Errc::forbidden, "not a member of this chat"};
    return ok_status();
  }
  auto m = txn.get_member(chat, user);
  if (!m || m->left_seq) return Error{Errc::forbidden, "not a member of this chat"};
  return ok_status();
}
}  // namespace

void RocksStore::set_push_target(PushTarget target, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [t = std::move(target)](WriteTxn& txn) -> Status {
    if (!live_user(txn, t.user))
      return Error{Errc::not_found, fmt::format("no such user: {}", t.user)};
    auto raw = txn.get(kDevices, device_key(t.user, t.device_id));
    auto dev = raw ? decode_device(*raw) : std::nullopt;
    if (!dev || dev->revoked)
      return Error{Errc::not_found, fmt::format("no such device: {}", t.device_id)};
    if (auto st = rules::validate_push_target(t); !st) return st;
    txn.put(kPush, push_target_key(t.user, t.device_id), encode(t));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::remove_push_target(UserId user, std::string device_id, std::string token,
                                    Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id),
            token = std::move(token)](WriteTxn& txn) -> Status {
    if (!token.empty()) {  // only that registration: a newer one stays
      auto raw = txn.get(kPush, push_target_key(user, device_id));
      auto t = raw ? decode_push_target(user, device_id, *raw) : std::nullopt;
      if (!t || t->token != token) return ok_status();
    }
    drop_push_device(txn, user, device_id);
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::push_targets(UserId user, Callback<std::vector<PushTarget>> done) {
  std::vector<PushTarget> out;
  std::string prefix = push_target_prefix(user);
  auto view = read_view();
  rocksdb::ReadOptions ro;
  ro.snapshot = view.get();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kPush]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto k = decode_push_target_key(it->key().ToStringView());
    if (!k) continue;
    if (auto t = decode_push_target(k->user, k->device, it->value().ToStringView()))
      out.push_back(std::move(*t));
  }
  if (!it->status().ok()) return done(Error{Errc::unavailable, it->status().ToString()});
  it.reset();
  done(std::move(out));
}

void RocksStore::set_chat_mute(UserId user, ChatId chat, int64_t muted_until, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), chat, muted_until](WriteTxn& txn) -> Status {
    auto row = rules::mute_row(muted_until);
    if (!row) return row.error();
    if (!live_user(txn, user)) return Error{Errc::not_found, fmt::format("no such user: {}", user)};
    if (auto st = active_member(txn, chat, user); !st) return st;
    auto key = push_mute_key(user, chat);
    if (!row.value()) {
      if (txn.get(kPush, key)) txn.del(kPush, std::move(key));
    } else {
      txn.put(kPush, std::move(key), encode_mute(*row.value()));
    }
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::set_push_settings(UserId user, int64_t dnd_until, bool preview,
                                   Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), dnd_until, preview](WriteTxn& txn) {
    return update_settings(txn, user, [dnd_until, preview](UserSettings& s) {
      s.dnd_until = dnd_until;
      s.push_preview = preview;
    });
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::enqueue_push(std::vector<PushEnqueue> items, int64_t now,
                              Callback<uint32_t> done) {
  auto op = std::make_unique<ValueOp<uint32_t>>();
  op->done = done;
  op->fn = [items = std::move(items), now](WriteTxn& txn) -> Result<uint32_t> {
    uint32_t queued = 0;
    for (const auto& item : items) {
      std::optional<int64_t> dnd_until, muted_until;
      if (auto raw = txn.get(kMeta, settings_key(item.user)))
        if (auto s = decode_settings(*raw)) dnd_until = s->dnd_until;
      if (auto raw = txn.get(kPush, push_mute_key(item.user, item.chat_id)))
        muted_until = decode_mute(*raw);
      if (!rules::push_allowed(dnd_until, muted_until, now)) continue;
      std::string prefix = push_target_prefix(item.user);
      for (const auto& [tkey, tvalue] : txn.scan(kPush, prefix, prefix_end(prefix))) {
        auto k = decode_push_target_key(tkey);
        if (!k || std::find(item.connected.begin(), item.connected.end(), k->device) !=
                      item.connected.end())
          continue;  // a live device got the message already
        auto prev = load_push_job(txn, item.user, k->device, item.chat_id);
        PushJob next = rules::collapse_push(prev, item, k->device, now);
        write_push_job(txn, prev ? &*prev : nullptr, &next);
        ++queued;
      }
    }
    return queued;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id)](WriteTxn& txn) -> Status {
    drop_push_jobs(txn, push_job_prefix(user, device_id));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                                 Callback<std::vector<PushJob>> done) {
  auto op = std::make_unique<ValueOp<std::vector<PushJob>>>();
  op->done = done;
  op->fn = [now, limit, lease_until](WriteTxn& txn) -> Result<std::vector<PushJob>> {
    constexpr size_t kChunk = 256;  // due rows read at a time (leased ones are skipped)
    std::vector<PushJob> out;
    std::string from = push_due_prefix();
    const std::string to = now == INT64_MAX ? prefix_end(from) : push_due_bound(now + 1);
    while (out.size() < limit) {
      auto rows = txn.scan(kPush, from, to, kChunk);
      for (const auto& [key, value] : rows) {
        if (out.size() >= limit) break;
        auto k = decode_push_due_key(key);
        auto job = k ? load_push_job(txn, k->user, k->device, k->chat) : std::nullopt;
        if (!job || job->due_at != k->ts) {  // a leftover: not the job's due row
          txn.del(kPush, key);
          continue;
        }
        if (job->lease_until > now) continue;  // another worker has it
        auto raw = txn.get(kPush, push_target_key(job->user, job->device_id));
        auto target = raw ? decode_push_target(job->user, job->device_id, *raw) : std::nullopt;
        if (!target) {  // nowhere to send it
          write_push_job(txn, &*job, nullptr);
          continue;
        }
        PushJob next = *job;
        next.lease_until = lease_until;
        write_push_job(txn, &*job, &next);
        next.target = std::move(*target);
        out.push_back(std::move(next));
      }
      if (rows.size() < kChunk) break;
      from = rows.back().first + '\0';  // the next key after the last one read
    }
    return out;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at,
                                 std::string error, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [job = std::move(job), outcome, retry_at,
            error = std::move(error)](WriteTxn& txn) -> Status {
    // The job as it stands; a job created after the claimed one went (same key, another
    // created_at) is not the one that was sent: it is left alone.
    auto cur = load_push_job(txn, job.user, job.device_id, job.chat_id);
    if (cur && cur->created_at != job.created_at) cur.reset();
    if (outcome == PushOutcome::token_gone) {
      auto raw = txn.get(kPush, push_target_key(job.user, job.device_id));
      auto target = raw ? decode_push_target(job.user, job.device_id, *raw) : std::nullopt;
      if (!target || job.target.token.empty() || target->token == job.target.token) {
        drop_push_device(txn, job.user, job.device_id);
      } else if (cur) {  // registered again since the claim: the job goes to the new token
        PushJob next = *cur;
        next.lease_until = 0;
        write_push_job(txn, &*cur, &next);
      }
      return ok_status();
    }
    if (!cur) return ok_status();
    int64_t now = now_ms();
    auto f = rules::finish_push(*cur, job, outcome, retry_at, now);
    switch (f.action) {
      case rules::PushFinish::Action::remove:
        write_push_job(txn, &*cur, nullptr);
        break;
      case rules::PushFinish::Action::replace:
        write_push_job(txn, &*cur, &f.next);
        break;
      case rules::PushFinish::Action::dead_letter: {
        PushDeadLetter dead{std::move(f.next), now, error};
        auto key = push_dead_key(dead.failed_at, job.user, job.device_id, job.chat_id);
        if (!txn.get(kPush, key)) add_to_counter(txn, push_dead_count_key(), 1);
        txn.put(kPush, std::move(key), encode(dead));
        write_push_job(txn, &*cur, nullptr);
        break;
      }
    }
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::push_queue_stats(Callback<PushQueueStats> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  PushQueueStats stats;
  std::string v;
  if (db_->Get(ro, cf_[kPush], push_job_count_key(), &v).ok()) stats.depth = decode_u64be(v);
  if (db_->Get(ro, cf_[kPush], push_dead_count_key(), &v).ok())
    stats.dead_letters = decode_u64be(v);
  std::string prefix = push_created_prefix();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kPush]));
  it->Seek(prefix);
  if (it->Valid() && it->key().starts_with(prefix))
    if (auto k = decode_push_created_key(it->key().ToStringView())) stats.oldest_created_at = k->ts;
  it.reset();
  done(stats);
}

}  // namespace parley::store::rocks
