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

namespace parley::store::pg {
namespace {

constexpr uint32_t kOutboxPage = 1000;  // rows one fan-out applies
constexpr uint32_t kReplayChats = 200;  // chats one replay round takes per server
constexpr int64_t kReplayAgeMs = 2000;  // an outbox row this old was left behind
constexpr auto kReplayEvery = std::chrono::seconds(1);

}  // namespace

Result<std::unique_ptr<ShardedPgStore>> ShardedPgStore::open(std::vector<PgConfig> servers,
                                                             const SyncConfig& sync) {
  if (servers.empty()) return Error{Errc::bad_request, "postgres: no server"};
  std::unique_ptr<ShardedPgStore> s(new ShardedPgStore(sync));
  s->placement_.count = static_cast<uint32_t>(servers.size());
  for (uint32_t i = 0; i < servers.size(); ++i) {
    servers[i].placement = Placement{i, s->placement_.count};
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
  for (size_t i = 0; i < shards_.size(); ++i) {
    auto h = shards_[i]->health();
    if (!h.ok) return Health{false, fmt::format("server {}: {}", i + 1, h.detail)};
  }
  return {};
}

void ShardedPgStore::fan_out(ChatId chat, Callback<FanOut> done) {
  uint64_t retention = sync_.update_log_retention;
  chat_server(chat).submit<std::vector<OutboxRow>>(
      false, [chat](PgConn& c) { return read_outbox(c, chat, kOutboxPage); },
      [this, chat, retention, done = std::move(done)](Result<std::vector<OutboxRow>> rows) {
        if (!rows) return done(rows.error());
        if (rows->empty()) return done(FanOut{});
        // Each server gets the rows with their targets cut down to those it holds.
        std::map<uint32_t, std::vector<OutboxRow>> per_server;
        std::vector<int64_t> ids;
        for (const auto& row : rows.value()) {
          ids.push_back(row.id);
          std::map<uint32_t, OutboxRow> parts;
          for (const auto& t : row.targets) {
            uint32_t s = row.kind == OutboxKind::media_ref ? placement_.media_shard(t)
                                                           : placement_.user_shard(t);
            auto [it, fresh] = parts.try_emplace(s);
            if (fresh) {
              it->second = row;
              it->second.targets.clear();
            }
            it->second.targets.push_back(t);
          }
          for (auto& [s, part] : parts) per_server[s].push_back(std::move(part));
        }
        std::vector<std::pair<uint32_t, std::vector<OutboxRow>>> work(per_server.begin(),
                                                                      per_server.end());
        auto shared = std::make_shared<decltype(work)>(std::move(work));
        gather<std::vector<AppliedEntry>>(
            shared->size(),
            [this, chat, retention, shared](size_t i, Callback<std::vector<AppliedEntry>> cb) {
              auto& [server, part] = (*shared)[i];
              shards_[server]->submit<std::vector<AppliedEntry>>(
                  true,
                  [chat, part = part, retention](PgConn& c) {
                    return apply_outbox(c, chat, part, retention);
                  },
                  std::move(cb), fmt::format("o{}", chat));
            },
            [this, chat, ids = std::move(ids),
             done](std::vector<Result<std::vector<AppliedEntry>>> results) {
              FanOut out;
              for (auto& r : results) {
                if (!r) {
                  out.complete = false;
                  continue;
                }
                for (auto& e : r.value()) out.entries.push_back(std::move(e));
              }
              if (!out.complete) return done(std::move(out));  // the replay finishes it
              // Every server has the rows: they go (a replay racing this one may have
              // removed them already, or apply them once more to no effect).
              chat_server(chat).submit<Unit>(
                  true,
                  [chat, ids](PgConn& c) -> Status {
                    delete_outbox(c, chat, ids);
                    return ok_status();
                  },
                  [out = std::move(out), done](Status) mutable { done(std::move(out)); });
            });
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
