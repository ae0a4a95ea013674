// ShardedPgStore: messages, groups, receipts and the reads that span servers (the update log
// with its messages, the chat list, the login snapshot), on top of the single-server steps
// of pg_messages.cpp and pg_groups.cpp.
// GCC 12 reports a false -Wmaybe-uninitialized on copying the Error out of a
// Result<ShardGroup> in group_op's callback (the variant holds an Error on that path).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"
#include "store/postgres/pg_sharded_store.h"
#include "store/rules/groups.h"
#include "store/rules/messages.h"

namespace parley::store::pg {
namespace {

// Groups keys by the server `server_of` names.
template <class K, class F>
std::map<uint32_t, std::vector<K>> by_server(const std::vector<K>& keys, F server_of) {
  std::map<uint32_t, std::vector<K>> out;
  for (const auto& k : keys) out[server_of(k)].push_back(k);
  return out;
}

template <class M>
std::vector<std::pair<uint32_t, typename M::mapped_type>> entries(M m) {
  return {std::make_move_iterator(m.begin()), std::make_move_iterator(m.end())};
}

std::string append_order_key(const AppendRequest& req) {
  // Appends to one chat commit in the order they came (a direct chat named by its two users
  // before it exists): a sender's pipelined messages keep their order in the chat's seq.
  return req.chat_id != 0           ? fmt::format("c{}", req.chat_id)
         : req.sender < req.to_user ? fmt::format("d{}\n{}", req.sender, req.to_user)
                                    : fmt::format("d{}\n{}", req.to_user, req.sender);
}

bool contains(const std::vector<UserId>& v, const UserId& u) {
  return std::find(v.begin(), v.end(), u) != v.end();
}

struct LogPage {
  UpdatesPage page;
  std::vector<size_t> elsewhere;
};

struct UserChats {
  std::vector<ChatId> chats;
  uint64_t pts = 0;
};

}  // namespace

// --- Fan-out results ---------------------------------------------------------------------

void ShardedPgStore::settle(ChatId chat, OutboxKind kind, uint64_t seq, UserId by,
                            std::vector<UserId> users, Callback<std::vector<Delivery>> done,
                            PendingRows pending) {
  if (users.empty() && kind != OutboxKind::message)
    return fan_out(
        chat, [done](Result<FanOut>) { done(std::vector<Delivery>{}); }, std::move(pending));
  fan_out(
      chat,
      [this, chat, kind, seq, by, users = std::move(users),
       done = std::move(done)](Result<FanOut> f) {
        std::vector<Delivery> found;
        std::vector<UserId> missing;
        for (const auto& u : users) {
          bool hit = false;
          if (f)
            for (const auto& e : *f->entries)
              if (e.kind == kind && e.seq == seq && e.by == by && e.delivery.user == u) {
                found.push_back(e.delivery);
                hit = true;
                break;
              }
          if (!hit) missing.push_back(u);
        }
        if (missing.empty()) return done(std::move(found));
        auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<UserId>>>>(entries(
            by_server(missing, [this](const UserId& u) { return placement_.user_shard(u); })));
        gather<std::vector<Delivery>>(
            work->size(),
            [this, work, chat, kind, seq, by](size_t i, Callback<std::vector<Delivery>> cb) {
              auto& [server, list] = (*work)[i];
              shards_[server]->submit<std::vector<Delivery>>(
                  false,
                  [list = list, chat, kind, seq, by](PgConn& c) -> Result<std::vector<Delivery>> {
                    auto r =
                        c.q("SELECT user_id, pts FROM updates WHERE user_id = ANY($1::text[]) AND "
                            "chat_id = $2 AND seq = $3 AND kind = $4 AND by_user = $5",
                            PgTextArray{list}, chat, seq, int64_t(kind), by);
                    std::vector<Delivery> out;
                    for (int j = 0; j < r.rows(); ++j)
                      out.push_back(Delivery{r.str(j, 0), r.u64(j, 1)});
                    return out;
                  },
                  std::move(cb));
            },
            [found = std::move(found),
             done](std::vector<Result<std::vector<Delivery>>> more) mutable {
              for (auto& r : more)
                if (r) found.insert(found.end(), r->begin(), r->end());
              done(std::move(found));
            });
      },
      std::move(pending));
}

// --- Appends -----------------------------------------------------------------------------

namespace {
constexpr size_t kKnownPairs = 100000;  // past it the set starts again (each pair re-checked once)

std::vector<std::string> distinct_media(const AppendRequest& req) {
  std::vector<std::string> media;
  for (const auto& id : req.media_ids)
    if (std::find(media.begin(), media.end(), id) == media.end()) media.push_back(id);
  return media;
}
}  // namespace

bool ShardedPgStore::needs_steps_first(const AppendRequest& req, const std::string& key) const {
  if (!req.media_ids.empty()) return true;
  if (req.to_user.empty() || known_pairs_.count(key)) return false;
  // A recipient whose account lives on the pair's server is checked in the append itself.
  return placement_.user_shard(req.to_user) != placement_.pair_shard(req.sender, req.to_user);
}

void ShardedPgStore::append_message(AppendRequest req, Callback<AppendResult> done) {
  std::string key = append_order_key(req);
  bool steps = false;
  {
    std::lock_guard lock(lanes_mu_);
    if (auto it = lanes_.find(key); it != lanes_.end()) {
      it->second.waiting.push_back(PendingAppend{std::move(req), std::move(done)});
      return;
    }
    steps = needs_steps_first(req, key);
    if (steps) lanes_.try_emplace(key);  // later appends of the key wait in it
  }
  if (!steps) return append_step(std::move(req), false, std::move(done));
  steps_then_append(std::move(key), PendingAppend{std::move(req), std::move(done)});
}

void ShardedPgStore::admit_next(const std::string& key) {
  for (;;) {
    std::vector<PendingAppend> ready;
    std::optional<PendingAppend> head;
    {
      std::lock_guard lock(lanes_mu_);
      auto it = lanes_.find(key);
      auto& waiting = it->second.waiting;
      if (waiting.empty()) {
        lanes_.erase(it);
        return;
      }
      while (!waiting.empty() && !needs_steps_first(waiting.front().req, key)) {
        ready.push_back(std::move(waiting.front()));
        waiting.pop_front();
      }
      if (!waiting.empty()) {
        head = std::move(waiting.front());
        waiting.pop_front();
      }
    }
    // Queued on the chat's server in order; the lane still holds later arrivals back.
    for (auto& p : ready) append_step(std::move(p.req), false, std::move(p.done));
    if (head) return steps_then_append(key, std::move(*head));
  }
}

void ShardedPgStore::steps_then_append(std::string key, PendingAppend p) {
  // Whatever happens, the next appends of the key are admitted once this one is queued on
  // the chat's server (or has failed).
  auto finish = [this, key](PendingAppend q, bool checked) {
    append_step(std::move(q.req), checked, std::move(q.done));
    admit_next(key);
  };
  auto fail = [this, key](Callback<AppendResult> done, Error e) {
    done(std::move(e));
    admit_next(key);
  };
  auto check_recipient = [this, key, finish, fail](PendingAppend q) {
    bool check = false;
    {
      std::lock_guard lock(lanes_mu_);
      check = !q.req.to_user.empty() && !known_pairs_.count(key) &&
              placement_.user_shard(q.req.to_user) !=
                  placement_.pair_shard(q.req.sender, q.req.to_user);
    }
    if (!check) return finish(std::move(q), false);
    const UserId to = q.req.to_user;
    auto shared = std::make_shared<PendingAppend>(std::move(q));
    user_server(to).submit<bool>(
        false, [to](PgConn& c) -> Result<bool> { return live_user(c, to); },
        [this, key, to, shared, finish, fail](Result<bool> live) {
          if (!live) return fail(std::move(shared->done), live.error());
          if (!live.value()) return fail(std::move(shared->done), no_user(to));
          {
            std::lock_guard lock(lanes_mu_);
            if (known_pairs_.size() >= kKnownPairs) known_pairs_.clear();
            known_pairs_.insert(key);
          }
          finish(std::move(*shared), true);
        });
  };
  std::vector<std::string> media = distinct_media(p.req);
  if (media.empty()) return check_recipient(std::move(p));
  AppendRequest req = std::move(p.req);
  Callback<AppendResult> done = std::move(p.done);
  // The media must all exist. Each is checked on its server and marked pending there (a
  // sweep leaves it alone) until the reference the append owes arrives through the outbox:
  // a sweep that committed first removed it, and this append fails with not_found.
  auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<std::string>>>>(entries(
      by_server(media, [this](const std::string& id) { return placement_.media_shard(id); })));
  // (Copied before the call: its arguments are evaluated in no set order, and the last one
  // takes the request.)
  UserId sender = req.sender;
  std::string msg_key = req.client_msg_id;
  gather<std::vector<std::string>>(
      work->size(),
      [this, work, sender, msg_key](size_t i, Callback<std::vector<std::string>> cb) {
        auto& [server, ids] = (*work)[i];
        auto sorted = ids;
        std::sort(sorted.begin(), sorted.end());
        shards_[server]->submit<std::vector<std::string>>(
            true,
            [sorted, sender, msg_key](PgConn& c) -> Result<std::vector<std::string>> {
              // Locked FOR SHARE in id order, as sweeps lock them (FOR UPDATE).
              c.q("SELECT id FROM media WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE",
                  PgTextArray{sorted});
              auto r = c.q(
                  "INSERT INTO media_pending (media_id, sender, client_msg_id, created_at) SELECT "
                  "id, $2, $3, $4 FROM media WHERE id = ANY($1::text[]) ON CONFLICT (media_id, "
                  "sender, client_msg_id) DO UPDATE SET created_at = EXCLUDED.created_at "
                  "RETURNING media_id",
                  PgTextArray{sorted}, sender, msg_key, now_ms());
              std::vector<std::string> have;
              for (int j = 0; j < r.rows(); ++j) have.push_back(r.str(j, 0));
              return have;
            },
            std::move(cb));
      },
      [media, req = std::move(req), done = std::move(done), check_recipient,
       fail](std::vector<Result<std::vector<std::string>>> found) mutable {
        std::vector<std::string> have;
        for (auto& r : found) {
          if (!r) return fail(std::move(done), r.error());
          have.insert(have.end(), r->begin(), r->end());
        }
        for (const auto& id : media)  // reported in the order asked
          if (std::find(have.begin(), have.end(), id) == have.end())
            return fail(std::move(done),
                        Error{Errc::not_found, fmt::format("no such media {}", id)});
        check_recipient(PendingAppend{std::move(req), std::move(done)});
      });
}

void ShardedPgStore::append_step(AppendRequest req, bool to_user_checked,
                                 Callback<AppendResult> done) {
  uint64_t retention = sync_.update_log_retention;
  PgStore& server =
      req.chat_id != 0 ? chat_server(req.chat_id) : pair_server(req.sender, req.to_user);
  std::string key = append_order_key(req);
  auto shared = std::make_shared<AppendRequest>(std::move(req));
  const Placement placement = server.placement();
  server.submit<ShardAppend>(
      true,
      [shared, retention, placement, to_user_checked](PgConn& c) -> Result<ShardAppend> {
        AppendRequest copy = *shared;  // the op may run again (a retried transaction)
        auto a = append_on_shard(c, copy, retention, placement, to_user_checked);
        if (a && a->owes && !a->check_user && !a->r.duplicate) {
          std::vector<uint32_t> all(placement.count);
          std::iota(all.begin(), all.end(), 0u);
          a->pending = std::make_shared<const std::vector<OutboxRow>>(
              read_outbox(c, a->r.message.chat_id, kOutboxPage, all));
        }
        return a;
      },
      [this, shared, done = std::move(done)](Result<ShardAppend> r) mutable {
        if (!r) return done(r.error());
        ShardAppend& a = r.value();
        if (a.check_user) {
          // The recipient's account lives on another server: check it there, then append.
          const UserId to = shared->to_user;
          user_server(to).submit<bool>(
              false, [to](PgConn& c) -> Result<bool> { return live_user(c, to); },
              [this, shared, to, done = std::move(done)](Result<bool> live) mutable {
                if (!live) return done(live.error());
                if (!live.value()) return done(no_user(to));
                append_step(std::move(*shared), true, std::move(done));
              });
          return;
        }
        if (!a.owes) return done(std::move(a.r));
        const Message& m = a.r.message;
        std::vector<UserId> owed = std::move(a.remote);
        bool sender_elsewhere = placement_.chat_shard(m.chat_id) != placement_.user_shard(m.sender);
        // A retry of an append whose first fan-out did not finish: its sender's entry is
        // looked up (or written now) like the others'.
        if (a.r.duplicate && sender_elsewhere && a.r.sender_pts == 0) owed.push_back(m.sender);
        ChatId chat = m.chat_id;
        uint64_t seq = m.seq;
        PendingRows pending = std::move(a.pending);
        auto result = std::make_shared<AppendResult>(std::move(a.r));
        settle(
            chat, OutboxKind::message, seq, "", std::move(owed),
            [result, sender_elsewhere,
             done = std::move(done)](Result<std::vector<Delivery>> got) mutable {
              if (got) {
                for (auto& d : got.value()) {
                  if (d.user == result->message.sender && result->sender_pts == 0)
                    result->sender_pts = d.pts;
                  if (!result->duplicate) result->deliveries.push_back(std::move(d));
                }
              }
              if (sender_elsewhere && !result->broadcast && result->sender_pts == 0)
                // Stored, but the sender's log could not be written yet: not acknowledged
                // (a retry finds the message and finishes the fan-out).
                return done(Error{Errc::unavailable,
                                  "stored, but the sender's server cannot be reached: retry"});
              done(std::move(*result));
            },
            std::move(pending));
      },
      std::move(key));
}

// --- Groups and receipts -----------------------------------------------------------------

void ShardedPgStore::group_op(GroupRequest req, Callback<GroupResult> done) {
  uint32_t home = req.op == GroupOp::create ? placement_.user_shard(req.actor)
                                            : placement_.chat_shard(req.chat_id);
  std::vector<UserId> remote;
  for (auto& u : rules::named_users(req))
    if (placement_.user_shard(u) != home) remote.push_back(std::move(u));
  // The facts of named users whose accounts live elsewhere, read on their servers.
  auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<UserId>>>>(
      entries(by_server(remote, [this](const UserId& u) { return placement_.user_shard(u); })));
  gather<std::vector<rules::UserFacts>>(
      work->size(),
      [this, work](size_t i, Callback<std::vector<rules::UserFacts>> cb) {
        auto& [server, users] = (*work)[i];
        shards_[server]->submit<std::vector<rules::UserFacts>>(
            false,
            [users = users](PgConn& c) -> Result<std::vector<rules::UserFacts>> {
              auto r = c.q(
                  "SELECT u.id, NOT u.deleted, coalesce(l.group_count, 0) FROM users u LEFT JOIN "
                  "user_logs l ON l.user_id = u.id WHERE u.id = ANY($1::text[])",
                  PgTextArray{users});
              std::vector<rules::UserFacts> out;
              for (int j = 0; j < r.rows(); ++j) {
                rules::UserFacts f;
                f.user = r.str(j, 0);
                f.live = r.boolean(j, 1);
                f.group_count = r.u64(j, 2);
                out.push_back(std::move(f));
              }
              return out;
            },
            std::move(cb));
      },
      [this, home, req = std::move(req),
       done = std::move(done)](std::vector<Result<std::vector<rules::UserFacts>>> read) mutable {
        std::vector<rules::UserFacts> facts;
        for (auto& r : read) {
          if (!r) return done(r.error());
          facts.insert(facts.end(), r->begin(), r->end());
        }
        uint64_t retention = sync_.update_log_retention;
        PgStore& server = *shards_[home];
        const Placement placement = server.placement();
        std::string key = req.op == GroupOp::create ? "" : fmt::format("c{}", req.chat_id);
        server.submit<ShardGroup>(
            true,
            [req, retention, placement, facts = std::move(facts)](PgConn& c) {
              return group_on_shard(c, req, retention, placement, facts);
            },
            [this, actor = req.actor, done = std::move(done)](Result<ShardGroup> r) mutable {
              if (!r.ok()) return done(Result<GroupResult>(r.error()));
              ShardGroup& g = r.value();
              if (!g.owes) return done(std::move(g.r));
              auto result = std::make_shared<GroupResult>(std::move(g.r));
              const Message& m = result->event.message;
              settle(m.chat_id, OutboxKind::message, m.seq, "", std::move(g.remote),
                     [result, actor, done = std::move(done)](Result<std::vector<Delivery>> got) {
                       if (got)
                         for (auto& d : got.value()) {
                           if (d.user == actor) result->event.sender_pts = d.pts;
                           result->event.deliveries.push_back(std::move(d));
                         }
                       done(std::move(*result));
                     });
            },
            std::move(key));
      });
}

void ShardedPgStore::mark(ReceiptRequest req, Callback<ReceiptResult> done) {
  uint64_t retention = sync_.update_log_retention;
  PgStore& server = req.chat_id != 0 ? chat_server(req.chat_id) : pair_server(req.user, req.with);
  const Placement placement = server.placement();
  UserId user = req.user;
  server.submit<ShardReceipt>(
      true,
      [req = std::move(req), retention, placement](PgConn& c) {
        return mark_on_shard(c, req, retention, placement);
      },
      [this, user = std::move(user), done = std::move(done)](Result<ShardReceipt> r) mutable {
        if (!r) return done(r.error());
        if (!r->owes) return done(std::move(r->r));
        auto result = std::make_shared<ReceiptResult>(std::move(r->r));
        const Receipt& rc = result->receipt;
        bool own_elsewhere = contains(r->remote, user);
        settle(rc.chat_id, static_cast<OutboxKind>(rc.kind), rc.seq, user, std::move(r->remote),
               [result, user, own_elsewhere,
                done = std::move(done)](Result<std::vector<Delivery>> got) {
                 if (got)
                   for (auto& d : got.value()) {
                     if (own_elsewhere && d.user == user) result->user_pts = d.pts;
                     result->deliveries.push_back(std::move(d));
                   }
                 done(std::move(*result));
               });
      });
}

void ShardedPgStore::group_info(UserId user, ChatId chat, Callback<ChatInfo> done) {
  chat_server(chat).group_info(std::move(user), chat, std::move(done));
}

void ShardedPgStore::group_index(const UserId& user, Callback<std::vector<ChatId>> done) {
  user_server(user).submit<std::vector<ChatId>>(
      false,
      [user](PgConn& c) -> Result<std::vector<ChatId>> {
        auto r = c.q("SELECT chat_id FROM user_chats WHERE user_id = $1 AND kind = $2", user,
                     int64_t(ChatKind::group));
        std::vector<ChatId> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(r.u64(i, 0));
        return out;
      },
      std::move(done));
}

void ShardedPgStore::member_groups(UserId user, bool large_only,
                                   Callback<std::vector<ChatId>> done) {
  group_index(user, [this, user, large_only,
                     done = std::move(done)](Result<std::vector<ChatId>> index) mutable {
    if (!index) return done(index.error());
    auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<ChatId>>>>(
        entries(by_server(index.value(), [this](ChatId c) { return placement_.chat_shard(c); })));
    gather<std::vector<ChatId>>(
        work->size(),
        [this, work, user, large_only](size_t i, Callback<std::vector<ChatId>> cb) {
          auto& [server, chats] = (*work)[i];
          std::vector<int64_t> ids(chats.begin(), chats.end());
          shards_[server]->submit<std::vector<ChatId>>(
              false,
              [user, ids, large_only](PgConn& c) -> Result<std::vector<ChatId>> {
                auto r =
                    c.q("SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id WHERE "
                        "m.user_id = $1 AND m.chat_id = ANY($2::bigint[]) AND m.left_seq = 0 AND "
                        "c.kind = 2 AND (c.large OR NOT $3)",
                        user, PgIntArray{ids}, large_only);
                std::vector<ChatId> out;
                for (int j = 0; j < r.rows(); ++j) out.push_back(r.u64(j, 0));
                return out;
              },
              std::move(cb));
        },
        [done = std::move(done)](std::vector<Result<std::vector<ChatId>>> parts) {
          std::vector<ChatId> out;
          for (auto& r : parts) {
            if (!r) return done(r.error());
            out.insert(out.end(), r->begin(), r->end());
          }
          std::sort(out.begin(), out.end());
          done(std::move(out));
        });
  });
}

// A direct chat named by its two users: the pair's server knows whether it exists; if it
// does not, whether `with` has an account is asked on its own server.
void ShardedPgStore::audience(UserId user, ChatId chat, UserId with, Callback<Audience> done) {
  if (chat != 0)
    return chat_server(chat).audience(std::move(user), chat, std::move(with), std::move(done));
  if (with == user) return done(Error{Errc::bad_request, "that is you"});
  pair_server(user, with)
      .submit<std::optional<ChatId>>(
          false,
          [user, with](PgConn& c) -> Result<std::optional<ChatId>> {
            return direct_chat(c, user, with);
          },
          [this, user, with, done = std::move(done)](Result<std::optional<ChatId>> d) mutable {
            if (!d) return done(d.error());
            if (auto id = d.value())
              return chat_server(*id).audience(user, *id, with, std::move(done));
            user_server(with).submit<bool>(
                false,
                [with](PgConn& c) -> Result<bool> {
                  return !c.q("SELECT 1 FROM users WHERE id = $1", with).empty();
                },
                [user, with, done = std::move(done)](Result<bool> exists) {
                  if (!exists) return done(exists.error());
                  if (!exists.value()) return done(no_user(with));
                  Audience a;
                  a.members = {user, with};  // no message yet: the chat does not exist
                  done(std::move(a));
                });
          });
}

void ShardedPgStore::shares_chat(UserId a, UserId b, Callback<bool> done) {
  if (a == b) return done(true);
  pair_server(a, b).submit<bool>(
      false, [a, b](PgConn& c) -> Result<bool> { return direct_chat(c, a, b).has_value(); },
      [this, a, b, done = std::move(done)](Result<bool> direct) mutable {
        if (!direct) return done(direct.error());
        if (direct.value()) return done(true);
        // Groups both are in: the chats both indexes list, checked where they live.
        group_index(a, [this, a, b,
                        done = std::move(done)](Result<std::vector<ChatId>> ia) mutable {
          if (!ia) return done(ia.error());
          group_index(b, [this, a, b, ia = std::move(ia.value()),
                          done = std::move(done)](Result<std::vector<ChatId>> ib) mutable {
            if (!ib) return done(ib.error());
            std::vector<ChatId> both;
            for (auto id : ia)
              if (std::find(ib->begin(), ib->end(), id) != ib->end()) both.push_back(id);
            auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<ChatId>>>>(
                entries(by_server(both, [this](ChatId c) { return placement_.chat_shard(c); })));
            gather<bool>(
                work->size(),
                [this, work, a, b](size_t i, Callback<bool> cb) {
                  auto& [server, chats] = (*work)[i];
                  std::vector<int64_t> ids(chats.begin(), chats.end());
                  shards_[server]->submit<bool>(
                      false,
                      [a, b, ids](PgConn& c) -> Result<bool> {
                        return !c.q("SELECT 1 FROM members x JOIN members y ON y.chat_id = "
                                    "x.chat_id JOIN chats c ON c.id = x.chat_id WHERE x.user_id = "
                                    "$1 AND y.user_id = $2 AND x.chat_id = ANY($3::bigint[]) AND "
                                    "x.left_seq = 0 AND y.left_seq = 0 AND c.kind = 2 LIMIT 1",
                                    a, b, PgIntArray{ids})
                                    .empty();
                      },
                      std::move(cb));
                },
                [done = std::move(done)](std::vector<Result<bool>> parts) {
                  bool any = false;
                  for (auto& r : parts) {
                    if (!r) return done(r.error());
                    any = any || r.value();
                  }
                  done(any);
                });
          });
        });
      });
}

// --- Reads -------------------------------------------------------------------------------

void ShardedPgStore::current_pts(UserId user, Callback<uint64_t> done) {
  user_server(user).current_pts(std::move(user), std::move(done));
}

void ShardedPgStore::read_updates(UserId user, uint64_t after_pts, uint32_t limit,
                                  Callback<UpdatesPage> done) {
  PgStore& server = user_server(user);
  const Placement placement = server.placement();
  server.submit<LogPage>(
      false,
      [user, after_pts, limit, placement](PgConn& c) -> Result<LogPage> {
        LogPage p;
        auto page = read_updates_in(c, user, after_pts, limit, placement, &p.elsewhere);
        if (!page) return page.error();
        p.page = std::move(page.value());
        return p;
      },
      [this, done = std::move(done)](Result<LogPage> read) mutable {
        if (!read) return done(read.error());
        auto lp = std::make_shared<LogPage>(std::move(read.value()));
        if (lp->elsewhere.empty()) return done(std::move(lp->page));
        // The messages of chats on other servers, read there.
        std::map<uint32_t, std::vector<std::pair<ChatId, uint64_t>>> want;
        for (size_t i : lp->elsewhere) {
          const Message& m = lp->page.updates[i].message;
          want[placement_.chat_shard(m.chat_id)].emplace_back(m.chat_id, m.seq);
        }
        auto work = std::make_shared<
            std::vector<std::pair<uint32_t, std::vector<std::pair<ChatId, uint64_t>>>>>(
            entries(std::move(want)));
        gather<std::vector<Message>>(
            work->size(),
            [this, work](size_t i, Callback<std::vector<Message>> cb) {
              auto& [where, at] = (*work)[i];
              shards_[where]->submit<std::vector<Message>>(
                  false, [at = at](PgConn& c) { return read_messages(c, at); }, std::move(cb));
            },
            [this, lp, work,
             done = std::move(done)](std::vector<Result<std::vector<Message>>> parts) {
              std::map<std::pair<ChatId, uint64_t>, Message> got;
              std::vector<uint32_t> failed;
              std::optional<Error> failure;
              for (size_t i = 0; i < parts.size(); ++i) {
                if (!parts[i]) {
                  failed.push_back((*work)[i].first);
                  if (!failure) failure = parts[i].error();
                  continue;
                }
                for (auto& m : parts[i].value())
                  got.emplace(std::make_pair(m.chat_id, m.seq), std::move(m));
              }
              // A server that failed cuts the page short before the first entry it holds:
              // the log is read in pts order, so the device gets what comes before and asks
              // again from there (the first entry itself: the error).
              UpdatesPage& page = lp->page;
              std::vector<Update> kept;
              size_t next = 0;
              for (size_t i = 0; i < page.updates.size(); ++i) {
                Update& u = page.updates[i];
                if (next < lp->elsewhere.size() && lp->elsewhere[next] == i) {
                  ++next;
                  uint32_t where = placement_.chat_shard(u.message.chat_id);
                  if (std::find(failed.begin(), failed.end(), where) != failed.end()) {
                    if (i == 0) return done(*failure);
                    page.pts = page.updates[i - 1].pts;
                    page.has_more = true;
                    break;
                  }
                  auto it = got.find({u.message.chat_id, u.message.seq});
                  if (it == got.end()) continue;  // no such message any more
                  u.message = std::move(it->second);
                }
                kept.push_back(std::move(u));
              }
              page.updates = std::move(kept);
              done(std::move(page));
            });
      });
}

void ShardedPgStore::history(HistoryQuery query, Callback<HistoryPage> done) {
  if (query.chat_id != 0)
    return chat_server(query.chat_id).history(std::move(query), std::move(done));
  UserId user = query.user, with = query.with;
  pair_server(user, with)
      .submit<std::optional<ChatId>>(
          false,
          [user, with](PgConn& c) -> Result<std::optional<ChatId>> {
            return direct_chat(c, user, with);
          },
          [this, query = std::move(query),
           done = std::move(done)](Result<std::optional<ChatId>> d) mutable {
            if (!d) return done(d.error());
            if (auto id = d.value()) {
              query.chat_id = *id;
              return chat_server(*id).history(std::move(query), std::move(done));
            }
            UserId peer = query.with;
            user_server(peer).submit<bool>(
                false,
                [peer](PgConn& c) -> Result<bool> {
                  return !c.q("SELECT 1 FROM users WHERE id = $1", peer).empty();
                },
                [peer, done = std::move(done)](Result<bool> exists) {
                  if (!exists) return done(exists.error());
                  if (!exists.value()) return done(no_user(peer));
                  done(HistoryPage{});  // no chat yet: empty history
                });
          });
}

namespace {
// Whether a part read from one server may be left out of the answer: that server cannot be
// reached now. Any other error fails the whole read.
bool server_down(const Error& e) { return e.code == Errc::unavailable; }
}  // namespace

void ShardedPgStore::list_chats(UserId user, uint32_t limit, ChatListCursor after,
                                Callback<ChatList> done) {
  // The chats the user's server indexes, then each chat's summary where it lives. A chat
  // whose server is down is left out and named in `unavailable`: the others still list.
  user_server(user).submit<UserChats>(
      false,
      [user](PgConn& c) -> Result<UserChats> {
        UserChats out;
        auto r = c.q("SELECT chat_id FROM user_chats WHERE user_id = $1", user);
        for (int i = 0; i < r.rows(); ++i) out.chats.push_back(r.u64(i, 0));
        auto p = c.q("SELECT pts FROM user_logs WHERE user_id = $1", user);
        out.pts = p.empty() ? 0 : p.u64(0, 0);
        return out;
      },
      [this, user, limit, after, done = std::move(done)](Result<UserChats> index) mutable {
        if (!index) return done(index.error());
        uint64_t pts = index->pts;
        auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<ChatId>>>>(entries(
            by_server(index->chats, [this](ChatId c) { return placement_.chat_shard(c); })));
        gather<std::vector<ChatSummary>>(
            work->size(),
            [this, work, user](size_t i, Callback<std::vector<ChatSummary>> cb) {
              auto& [server, chats] = (*work)[i];
              shards_[server]->submit<std::vector<ChatSummary>>(
                  false,
                  [user, chats = chats](PgConn& c) -> Result<std::vector<ChatSummary>> {
                    return chat_summaries(c, user, chats);
                  },
                  std::move(cb));
            },
            [this, work, user, limit, after, pts,
             done = std::move(done)](std::vector<Result<std::vector<ChatSummary>>> parts) mutable {
              auto list = std::make_shared<ChatList>();
              for (size_t w = 0; w < parts.size(); ++w) {
                auto& r = parts[w];
                if (!r && !server_down(r.error())) return done(r.error());
                if (!r) {
                  const auto& ids = (*work)[w].second;
                  list->unavailable.insert(list->unavailable.end(), ids.begin(), ids.end());
                  continue;
                }
                for (auto& s : r.value()) list->chats.push_back(std::move(s));
              }
              rules::count_unread(*list);
              rules::page_chat_list(*list, after, limit);
              list->pts = pts;
              // The page's chats filled in where they live.
              std::map<uint32_t, std::vector<size_t>> where;
              for (size_t i = 0; i < list->chats.size(); ++i)
                where[placement_.chat_shard(list->chats[i].chat_id)].push_back(i);
              auto page = std::make_shared<std::vector<std::pair<uint32_t, std::vector<size_t>>>>(
                  entries(std::move(where)));
              gather<std::vector<ChatSummary>>(
                  page->size(),
                  [this, page, list, user](size_t i, Callback<std::vector<ChatSummary>> cb) {
                    auto& [server, at] = (*page)[i];
                    std::vector<ChatSummary> chats;
                    for (size_t k : at) chats.push_back(list->chats[k]);
                    shards_[server]->submit<std::vector<ChatSummary>>(
                        false,
                        [user, chats = std::move(chats)](
                            PgConn& c) mutable -> Result<std::vector<ChatSummary>> {
                          for (auto& s : chats) chat_details(c, user, s);
                          return std::move(chats);
                        },
                        std::move(cb));
                  },
                  [page, list,
                   done = std::move(done)](std::vector<Result<std::vector<ChatSummary>>> filled) {
                    std::vector<bool> gone(list->chats.size(), false);
                    for (size_t w = 0; w < filled.size(); ++w) {
                      const auto& at = (*page)[w].second;
                      if (!filled[w] && !server_down(filled[w].error()))
                        return done(filled[w].error());
                      for (size_t k = 0; k < at.size(); ++k) {
                        if (filled[w])
                          list->chats[at[k]] = std::move(filled[w].value()[k]);
                        else
                          gone[at[k]] = true;  // its server went down between the two reads
                      }
                    }
                    ChatList out = std::move(*list);
                    size_t kept = 0;
                    for (size_t i = 0; i < out.chats.size(); ++i) {
                      if (gone[i]) {
                        out.unavailable.push_back(out.chats[i].chat_id);
                        continue;
                      }
                      if (kept != i) out.chats[kept] = std::move(out.chats[i]);
                      ++kept;
                    }
                    out.chats.resize(kept);
                    std::sort(out.unavailable.begin(), out.unavailable.end());
                    done(std::move(out));
                  });
            });
      });
}

void ShardedPgStore::snapshot(UserId user, uint32_t max_chats, uint32_t messages_per_chat,
                              Callback<Snapshot> done) {
  list_chats(
      user, max_chats, {},
      [this, user, messages_per_chat, done = std::move(done)](Result<ChatList> list) mutable {
        if (!list) return done(list.error());
        auto chats = std::make_shared<std::vector<ChatSummary>>(std::move(list->chats));
        uint64_t pts = list->pts;
        std::map<uint32_t, std::vector<size_t>> where;
        for (size_t i = 0; i < chats->size(); ++i)
          where[placement_.chat_shard((*chats)[i].chat_id)].push_back(i);
        auto work = std::make_shared<std::vector<std::pair<uint32_t, std::vector<size_t>>>>(
            entries(std::move(where)));
        using Windows = std::vector<std::optional<ChatWindow>>;
        gather<Windows>(
            work->size(),
            [this, work, chats, user, messages_per_chat](size_t i, Callback<Windows> cb) {
              auto& [server, at] = (*work)[i];
              std::vector<ChatSummary> mine;
              for (size_t k : at) mine.push_back((*chats)[k]);
              shards_[server]->submit<Windows>(
                  false,
                  [user, mine = std::move(mine), messages_per_chat](PgConn& c) -> Result<Windows> {
                    Windows out;
                    for (const auto& s : mine)
                      out.push_back(chat_window(c, user, s, messages_per_chat));
                    return out;
                  },
                  std::move(cb));
            },
            [work, chats, pts, unavailable = std::move(list->unavailable),
             done = std::move(done)](std::vector<Result<Windows>> parts) mutable {
              std::vector<std::optional<ChatWindow>> windows(chats->size());
              for (size_t w = 0; w < parts.size(); ++w) {
                const auto& at = (*work)[w].second;
                if (!parts[w] && !server_down(parts[w].error())) return done(parts[w].error());
                for (size_t k = 0; k < at.size(); ++k) {
                  if (parts[w])
                    windows[at[k]] = std::move(parts[w].value()[k]);
                  else
                    unavailable.push_back((*chats)[at[k]].chat_id);
                }
              }
              Snapshot s;
              s.pts = pts;
              for (auto& w : windows)
                if (w) s.chats.push_back(std::move(*w));
              std::sort(unavailable.begin(), unavailable.end());
              s.unavailable = std::move(unavailable);
              done(std::move(s));
            });
      });
}

}  // namespace parley::store::pg
