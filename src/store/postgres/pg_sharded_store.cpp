// ShardedPgStore's core: opening every server, health, the fan-out of a chat's outbox to the
// servers it names, and the replay of outboxes a node left behind.
#include "store/postgres/pg_sharded_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <map>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"
#include "store/postgres/pg_migrations.h"

namespace parley::store::pg {
namespace {

constexpr uint32_t kReplayChats = 200;  // chats one replay round takes per server
constexpr int64_t kReplayAgeMs = 2000;  // an outbox row this old was left behind
constexpr auto kReplayEvery = std::chrono::seconds(1);

}  // namespace

Result<std::unique_ptr<ShardedPgStore>> ShardedPgStore::open(std::vector<PgConfig> servers,
                                                             const SyncConfig& sync) {
  if (servers.empty()) return Error{Errc::bad_request, "postgres: no server"};
  std::unique_ptr<ShardedPgStore> s(new ShardedPgStore(sync));
  s->placement_.count = static_cast<uint32_t>(servers.size());
  for (uint32_t i = 0; i < servers.size(); ++i)
    servers[i].placement = Placement{i, s->placement_.count};
  // Every server's recorded place is checked before any is recorded (each PgStore::open
  // records its own): a list in the wrong order leaves a fresh server in it unrecorded.
  for (uint32_t i = 0; i < servers.size(); ++i) {
    try {
      PgConn conn(servers[i].conninfo, static_cast<int>(servers[i].connect_timeout_s),
                  static_cast<int>(servers[i].statement_timeout_ms));
      if (auto st = check_place(conn, servers[i].placement, false); !st) return st.error();
    } catch (const PgError& e) {
      return Error{Errc::unavailable, fmt::format("postgres server {}: {}", i + 1, e.what())};
    }
  }
  for (uint32_t i = 0; i < servers.size(); ++i) {
    auto shard = PgStore::open(servers[i], sync);
    if (!shard)
      return Error{shard.error().code,
                   fmt::format("postgres server {}: {}", i + 1, shard.error().message)};
    s->shards_.push_back(std::move(shard.value()));
  }
  s->replayer_ = std::thread([p = s.get()] {
    std::unique_lock lock(p->replay_mu_);
    while (!p->closing_) {
      if (p->replay_cv_.wait_for(lock, kReplayEvery, [p] { return p->closing_; })) break;
      lock.unlock();
      // One round at a time: the next starts once this one completed.
      std::promise<void> round;
      auto finished = round.get_future();
      p->replay_outboxes(kReplayAgeMs, [&round](Result<uint32_t> r) {
        if (r && r.value() > 0) spdlog::info("store: replayed the outboxes of {} chats", r.value());
        round.set_value();
      });
      finished.wait();
      lock.lock();
    }
  });
  return s;
}

ShardedPgStore::~ShardedPgStore() { close(); }

void ShardedPgStore::close() {
  {
    std::lock_guard lock(replay_mu_);
    closing_ = true;
  }
  replay_cv_.notify_all();
  if (replayer_.joinable()) replayer_.join();
  for (auto& s : shards_) s->close();
}

Health ShardedPgStore::health() const {
  // Every server down: unavailable. Some: partial (users and chats on the others are served).
  Health out;
  size_t down = 0;
  for (size_t i = 0; i < shards_.size(); ++i) {
    auto h = shards_[i]->health();
    if (h.ok) continue;
    ++down;
    out.ok = false;
    if (!out.detail.empty()) out.detail += "; ";
    out.detail += fmt::format("server {} of {}: {}", i + 1, shards_.size(), h.detail);
  }
  out.partial = !out.ok && down < shards_.size();
  return out;
}

void ShardedPgStore::fan_out(ChatId chat, Callback<FanOut> done, PendingRows pending) {
  {
    std::lock_guard lock(fan_mu_);
    auto [it, idle] = fanning_.try_emplace(chat);
    if (!idle) {  // a round runs: this caller goes with the next one
      it->second.push_back(std::move(done));
      return;
    }
  }
  std::vector<Callback<FanOut>> callers;
  callers.push_back(std::move(done));
  fan_out_round(chat, std::move(callers), std::move(pending));
}

void ShardedPgStore::fan_out_round(ChatId chat, std::vector<Callback<FanOut>> callers,
                                   PendingRows pending) {
  // Without it, every send's fan-out in a busy chat applies all the rows pending then: with
  // sends queued faster than rounds finish, that is quadratic.
  fan_out_once(
      chat, std::move(pending),
      [callers = std::move(callers)](Result<FanOut> r) {
        for (const auto& cb : callers) cb(r);
      },
      [this, chat] {
        std::vector<Callback<FanOut>> next;
        {
          std::lock_guard lock(fan_mu_);
          auto it = fanning_.find(chat);
          next.swap(it->second);
          if (next.empty()) fanning_.erase(it);
        }
        // Their commits may have come after the rows this round applied: read again.
        if (!next.empty()) fan_out_round(chat, std::move(next), nullptr);
      });
}

void ShardedPgStore::fan_out_once(ChatId chat, PendingRows pending, Callback<FanOut> done,
                                  std::function<void()> finished) {
  // The rows of a server that cannot be reached now stay where they are (read, they would
  // only fail there, and a long outage piles up thousands): the replay applies them once
  // its pool has reconnected.
  std::vector<uint32_t> reachable;
  for (uint32_t i = 0; i < shards_.size(); ++i)
    if (shards_[i]->health().ok) reachable.push_back(i);
  const bool all = reachable.size() == shards_.size();
  if (reachable.empty()) {
    FanOut none;
    none.complete = false;
    done(std::move(none));
    return finished();
  }
  if (pending) {
    // The caller's commit read the outbox under the chat's lock: the rows of every commit
    // before it (those of a server that is down now stay where they are).
    std::vector<OutboxRow> rows;
    for (const auto& row : *pending)
      if (std::find(reachable.begin(), reachable.end(), row.server) != reachable.end())
        rows.push_back(row);
    return apply_rows(chat, std::move(rows), all, std::move(done), std::move(finished));
  }
  chat_server(chat).submit<std::vector<OutboxRow>>(
      false, [chat, reachable](PgConn& c) { return read_outbox(c, chat, kOutboxPage, reachable); },
      [this, chat, all, done = std::move(done),
       finished = std::move(finished)](Result<std::vector<OutboxRow>> rows) mutable {
        if (!rows) {
          done(rows.error());
          return finished();
        }
        apply_rows(chat, std::move(rows.value()), all, std::move(done), std::move(finished));
      });
}

void ShardedPgStore::apply_rows(ChatId chat, std::vector<OutboxRow> rows, bool all,
                                Callback<FanOut> done, std::function<void()> finished) {
  uint64_t retention = sync_.update_log_retention;
  if (rows.empty()) {
    FanOut none;
    none.complete = all;
    done(std::move(none));
    return finished();
  }
  // Each row names one server (write_outbox): the rows go to theirs, in id order.
  std::map<uint32_t, std::vector<OutboxRow>> per_server;
  for (auto& row : rows) per_server[row.server].push_back(std::move(row));
  auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<OutboxRow>>>>(
      std::make_move_iterator(per_server.begin()), std::make_move_iterator(per_server.end()));
  gather<std::vector<AppliedEntry>>(
      work->size(),
      [this, chat, retention, work](size_t i, Callback<std::vector<AppliedEntry>> cb) {
        auto& [server, part] = (*work)[i];
        if (server >= shards_.size())
          return cb(Error{Errc::internal, fmt::format("outbox row for server {} of {}", server + 1,
                                                      shards_.size())});
        shards_[server]->submit<std::vector<AppliedEntry>>(
            true,
            [chat, part = part, retention](PgConn& c) {
              return apply_outbox(c, chat, part, retention);
            },
            std::move(cb), fmt::format("o{}", chat));
      },
      [this, chat, work, all, done,
       finished](std::vector<Result<std::vector<AppliedEntry>>> results) {
        FanOut out;
        out.complete = all;
        auto entries = std::make_shared<std::vector<AppliedEntry>>();
        // The rows of the servers that applied them go (a replay racing this one may
        // have removed them already, or apply them once more to no effect); a
        // server that could not be reached keeps its rows for the replay, and holds
        // up no other server's.
        std::vector<int64_t> ids;
        for (size_t i = 0; i < results.size(); ++i) {
          if (!results[i]) {
            out.complete = false;
            continue;
          }
          for (auto& e : results[i].value()) entries->push_back(std::move(e));
          for (const auto& row : (*work)[i].second) ids.push_back(row.id);
        }
        out.entries = std::move(entries);
        // The callers hear now (a send is acknowledged once its entries are written);
        // the round ends once the applied rows are gone, so that the next round does
        // not read them again.
        done(std::move(out));
        if (ids.empty()) return finished();
        chat_server(chat).submit<Unit>(
            true,
            [chat, ids = std::move(ids)](PgConn& c) -> Status {
              delete_outbox(c, chat, ids);
              return ok_status();
            },
            [finished](Status) { finished(); });
      });
}

void ShardedPgStore::replay_outboxes(int64_t older_than_ms, Callback<uint32_t> done) {
  int64_t before = now_ms() - older_than_ms;
  gather<std::vector<ChatId>>(
      shards_.size(),
      [this, before](size_t i, Callback<std::vector<ChatId>> cb) {
        shards_[i]->submit<std::vector<ChatId>>(
            false, [before](PgConn& c) { return stale_outbox_chats(c, before, kReplayChats); },
            std::move(cb));
      },
      [this, done = std::move(done)](std::vector<Result<std::vector<ChatId>>> found) {
        std::vector<ChatId> chats;
        for (auto& r : found)
          if (r) chats.insert(chats.end(), r->begin(), r->end());
        auto n = static_cast<uint32_t>(chats.size());
        gather<FanOut>(
            chats.size(),
            [this, chats](size_t i, Callback<FanOut> cb) { fan_out(chats[i], std::move(cb)); },
            [n, done](std::vector<Result<FanOut>>) { done(n); });
      });
}

}  // namespace parley::store::pg
