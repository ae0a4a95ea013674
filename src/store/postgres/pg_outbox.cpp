// The outbox: what a commit on a chat's server owes to the servers of other users (their
// update-log entries, their chat index rows) and of media records (references), written in
// the commit (a row per event and server) and applied afterwards on that server, in id order
// per chat, as often as needed: each apply writes only what is not there yet (docs/SCALING.md,
// "Sharding the store").
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"

namespace parley::store::pg {

void write_outbox(PgConn& c, const Placement& p, ChatId chat, OutboxKind kind, uint64_t seq,
                  const UserId& by, int64_t ts, const std::vector<std::string>& targets,
                  const std::string& note) {
  // One row per server, so that each server's rows are applied and removed on their own.
  std::map<uint32_t, std::vector<std::string>> per_server;
  for (const auto& t : targets)
    per_server[kind == OutboxKind::media_ref ? p.media_shard(t) : p.user_shard(t)].push_back(t);
  for (const auto& [server, part] : per_server)
    c.later_q(
        "INSERT INTO outbox (chat_id, server, kind, seq, by_user, ts, targets, note, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9)",
        chat, server, int64_t(kind), seq, by, ts, PgTextArray{part}, note, now_ms());
}

std::vector<OutboxRow> read_outbox(PgConn& c, ChatId chat, uint32_t limit,
                                   const std::vector<uint32_t>& servers) {
  // Each server's first rows (outbox_server index): one whose server is down and whose rows
  // pile up does not keep the others' rows from being read.
  std::vector<int64_t> ids(servers.begin(), servers.end());
  auto r = c.q(
      "SELECT o.id, o.kind, o.seq, o.by_user, o.ts, t.target, o.note, o.server FROM "
      "unnest($3::integer[]) AS s(server), LATERAL (SELECT * FROM outbox WHERE chat_id = $1 AND "
      "server = s.server ORDER BY id LIMIT $2) o, unnest(o.targets) WITH ORDINALITY AS "
      "t(target, n) ORDER BY o.id, t.n",
      chat, int64_t{limit}, PgIntArray{std::move(ids)});
  std::vector<OutboxRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    int64_t id = r.i64(i, 0);
    if (out.empty() || out.back().id != id) {
      OutboxRow row;
      row.id = id;
      row.kind = static_cast<OutboxKind>(r.i64(i, 1));
      row.seq = r.u64(i, 2);
      row.by = r.str(i, 3);
      row.ts = r.i64(i, 4);
      row.note = r.str(i, 6);
      row.server = static_cast<uint32_t>(r.i64(i, 7));
      out.push_back(std::move(row));
    }
    out.back().targets.push_back(r.str(i, 5));
  }
  return out;
}

void delete_outbox(PgConn& c, ChatId chat, const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  c.q("DELETE FROM outbox WHERE chat_id = $1 AND id = ANY($2::bigint[])", chat, PgIntArray{ids});
}

std::vector<ChatId> stale_outbox_chats(PgConn& c, int64_t before, uint32_t limit) {
  auto r =
      c.q("SELECT chat_id FROM (SELECT chat_id, min(created_at) AS t FROM outbox GROUP BY chat_id) "
          "o WHERE t < $1 ORDER BY t LIMIT $2",
          before, int64_t{limit});
  std::vector<ChatId> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.u64(i, 0));
  return out;
}

namespace {

// The chat index row of a user on its own server: a direct chat, or a group joined or left
// at `seq` (applied once: a replay, or an older event, finds index_seq at or past it). The
// user's group count follows the groups it is active in.
void apply_index(PgConn& c, ChatId chat, const OutboxRow& row, const UserId& user) {
  if (row.kind == OutboxKind::direct_chat) {
    c.later_q(
        "INSERT INTO user_chats (user_id, chat_id, kind, peer, index_seq) VALUES ($1, $2, $3, "
        "$4, 1) ON CONFLICT (user_id, chat_id) DO NOTHING",
        user, chat, int64_t(ChatKind::direct), row.by);
    return;
  }
  bool join = row.kind == OutboxKind::joined;
  auto cur =
      c.q("SELECT index_seq, active FROM user_chats WHERE user_id = $1 AND chat_id = $2 FOR "
          "UPDATE",
          user, chat);
  bool was_active = false;
  if (cur.empty()) {
    if (!join) return;  // left a group it was never indexed in: nothing to count down
    c.later_q(
        "INSERT INTO user_chats (user_id, chat_id, kind, index_seq, active) VALUES ($1, $2, $3, "
        "$4, true)",
        user, chat, int64_t(ChatKind::group), row.seq);
  } else {
    if (cur.u64(0, 0) >= row.seq) return;  // applied already, or a newer event was
    was_active = cur.boolean(0, 1);
    c.later_q(
        "UPDATE user_chats SET index_seq = $3, active = $4 WHERE user_id = $1 AND chat_id = $2",
        user, chat, row.seq, join);
  }
  if (join && !was_active)
    c.later_q("UPDATE user_logs SET group_count = group_count + 1 WHERE user_id = $1", user);
  else if (!join && was_active)
    c.later_q("UPDATE user_logs SET group_count = greatest(group_count - 1, 0) WHERE user_id = $1",
              user);
}

}  // namespace

std::vector<AppliedEntry> apply_outbox(PgConn& c, ChatId chat, const std::vector<OutboxRow>& rows,
                                       uint64_t retention) {
  std::vector<AppliedEntry> out;
  // Every user's log row first, in id order (the order every transaction locks them in):
  // replays of one chat on two nodes at once then run one after the other per user.
  std::vector<UserId> users;
  for (const auto& row : rows)
    if (row.kind != OutboxKind::media_ref)
      users.insert(users.end(), row.targets.begin(), row.targets.end());
  lock_logs(c, users);
  for (const auto& row : rows) {
    switch (row.kind) {
      case OutboxKind::message:
      case OutboxKind::read:
      case OutboxKind::delivered: {
        auto kind = static_cast<int64_t>(row.kind);
        auto have =
            c.q("SELECT user_id, pts FROM updates WHERE user_id = ANY($1::text[]) AND chat_id = $2 "
                "AND seq = $3 AND kind = $4 AND by_user = $5",
                PgTextArray{row.targets}, chat, row.seq, kind, row.by);
        std::vector<UserId> missing;
        for (const auto& u : row.targets) {
          bool found = false;
          for (int i = 0; i < have.rows() && !found; ++i)
            if (have.view(i, 0) == u) {
              out.push_back(AppliedEntry{row.kind, row.seq, row.by, Delivery{u, have.u64(i, 1)}});
              found = true;
            }
          if (!found) missing.push_back(u);
        }
        std::sort(missing.begin(), missing.end());
        auto written = log_updates(
            c, missing, LogEntry{static_cast<UpdateKind>(row.kind), chat, row.seq, row.by, row.ts},
            retention);
        for (auto& d : written)
          out.push_back(AppliedEntry{row.kind, row.seq, row.by, std::move(d)});
        break;
      }
      case OutboxKind::direct_chat:
      case OutboxKind::joined:
      case OutboxKind::left:
        for (const auto& u : row.targets) apply_index(c, chat, row, u);
        break;
      case OutboxKind::media_ref:
        // The append's pending mark held the record until now. A record swept meanwhile (the
        // mark was older than an hour) stays gone: the reference then points at nothing, as a
        // message whose media was deleted with its uploader's data does.
        for (const auto& id : row.targets) {
          c.later_q(
              "INSERT INTO media_refs (media_id, sender, chat_id) SELECT $1, $2, $3 WHERE EXISTS "
              "(SELECT 1 FROM media WHERE id = $1) ON CONFLICT DO NOTHING",
              id, row.by, chat);
          c.later_q(
              "DELETE FROM media_pending WHERE media_id = $1 AND sender = $2 AND client_msg_id = "
              "$3",
              id, row.by, row.note);
        }
        break;
    }
  }
  return out;
}

}  // namespace parley::store::pg
