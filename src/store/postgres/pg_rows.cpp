// Rows more than one family reads or writes: messages, chats, members, direct pairs, the
// update logs (with their locking order) and the read state of user_chats.
#include <fmt/format.h>

#include <algorithm>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"

namespace parley::store::pg {

Message message_at(const PgResult& r, int row, int col0) {
  Message m;
  m.chat_id = r.u64(row, col0);
  m.seq = r.u64(row, col0 + 1);
  m.message_id = r.u64(row, col0 + 2);
  m.ts = r.i64(row, col0 + 3);
  m.sender = r.str(row, col0 + 4);
  m.to = r.str(row, col0 + 5);
  m.kind = static_cast<MessageKind>(r.i64(row, col0 + 6));
  m.body = r.bytes(row, col0 + 7);
  m.client_msg_id = r.str(row, col0 + 8);
  return m;
}

namespace {

constexpr const char* kChatColumns =
    "kind, name, created_by, created_at, last_seq, last_ts, member_count, large, full_history, "
    "deleted, coalesce(peer_a, ''), coalesce(peer_b, ''), id";

ChatRow chat_row_at(const PgResult& r) {
  ChatRow row;
  auto& g = row.g;
  g.kind = static_cast<ChatKind>(r.i64(0, 0));
  g.name = r.str(0, 1);
  g.created_by = r.str(0, 2);
  g.created_at = r.i64(0, 3);
  g.last_seq = r.u64(0, 4);
  g.last_ts = r.i64(0, 5);
  g.member_count = static_cast<uint32_t>(r.i64(0, 6));
  g.large = r.boolean(0, 7);
  g.full_history = r.boolean(0, 8);
  g.deleted = r.boolean(0, 9);
  row.peer_a = r.str(0, 10);
  row.peer_b = r.str(0, 11);
  g.chat_id = r.u64(0, 12);
  return row;
}

}  // namespace

std::optional<ChatRow> load_chat(PgConn& c, ChatId id, bool lock) {
  static const std::string base = fmt::format("SELECT {} FROM chats WHERE id = $1", kChatColumns);
  static const std::string locked = base + " FOR UPDATE";
  auto r = c.q(lock ? locked : base, id);
  if (r.empty()) return std::nullopt;
  return chat_row_at(r);
}

// The lock, the read and the counter in one statement: a send is its chat's hot path.
std::optional<ChatRow> bump_chat(PgConn& c, ChatId id, int64_t ts) {
  static const std::string sql = fmt::format(
      "UPDATE chats SET last_seq = last_seq + 1, last_ts = $2 WHERE id = $1 AND NOT deleted "
      "RETURNING {}",
      kChatColumns);
  auto r = c.q(sql, id, ts);
  if (r.empty()) return std::nullopt;
  return chat_row_at(r);
}

std::optional<ChatRow> bump_direct_chat(PgConn& c, const UserId& a, const UserId& b, int64_t ts) {
  static const std::string sql = fmt::format(
      "UPDATE chats SET last_seq = last_seq + 1, last_ts = $3 WHERE id = (SELECT chat_id FROM "
      "direct_pairs WHERE user_a = $1 AND user_b = $2) AND NOT deleted RETURNING {}",
      kChatColumns);
  const auto& [lo, hi] = std::minmax(a, b);
  auto r = c.q(sql, lo, hi, ts);
  if (r.empty()) return std::nullopt;
  return chat_row_at(r);
}

namespace {
Member member_at(const PgResult& r, int row) {
  Member m;
  m.user = r.str(row, 0);
  m.role = static_cast<Role>(r.i64(row, 1));
  m.joined_seq = r.u64(row, 2);
  m.left_seq = r.u64(row, 3);
  return m;
}
}  // namespace

std::optional<Member> get_member(PgConn& c, ChatId chat, const UserId& user) {
  auto r =
      c.q("SELECT user_id, role, joined_seq, left_seq FROM members WHERE chat_id = $1 AND "
          "user_id = $2",
          chat, user);
  if (r.empty()) return std::nullopt;
  return member_at(r, 0);
}

std::vector<Member> active_members(PgConn& c, ChatId chat) {
  auto r =
      c.q("SELECT user_id, role, joined_seq, left_seq FROM members WHERE chat_id = $1 AND "
          "left_seq = 0 ORDER BY user_id",
          chat);
  std::vector<Member> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(member_at(r, i));
  return out;
}

std::vector<UserId> active_member_ids(PgConn& c, ChatId chat) {
  auto r =
      c.q("SELECT user_id FROM members WHERE chat_id = $1 AND left_seq = 0 ORDER BY user_id", chat);
  std::vector<UserId> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.str(i, 0));
  return out;
}

ChatId new_chat_id(PgConn& c, uint32_t bucket) {
  // The counter follows the clock (ms), so that ids grow with creation time across buckets
  // and servers (the chat list breaks ties of activity by id); it starts above every id
  // handed out on this server (the sequence of schema version 1 included). ms * 1024 stays
  // below 2^53, the integers a JavaScript client holds exactly, until the year 2248.
  auto r =
      c.q("INSERT INTO bucket_counters (bucket, next) VALUES ($1, greatest($3, (SELECT "
          "coalesce(max(id), 0) FROM chats) / $2 + 1)) ON CONFLICT (bucket) DO UPDATE SET next = "
          "greatest(bucket_counters.next + 1, $3) RETURNING next",
          int64_t{bucket}, int64_t{kBuckets}, now_ms());
  return r.u64(0, 0) * kBuckets + bucket;
}

bool live_user(PgConn& c, const UserId& user) {
  auto r = c.q("SELECT deleted FROM users WHERE id = $1", user);
  return !r.empty() && !r.boolean(0, 0);
}

std::optional<ChatId> direct_chat(PgConn& c, const UserId& a, const UserId& b) {
  const auto& [lo, hi] = std::minmax(a, b);
  auto r = c.q("SELECT chat_id FROM direct_pairs WHERE user_a = $1 AND user_b = $2", lo, hi);
  if (r.empty()) return std::nullopt;
  return r.u64(0, 0);
}

Result<rules::Visible> visible_range(PgConn& c, ChatId chat, const UserId& user) {
  auto row = load_chat(c, chat, false);
  if (!row) return no_chat(chat);
  if (row->g.kind == ChatKind::direct) {
    if (!row->has_member(user)) return not_member();
    return rules::direct_visible(row->g.last_seq);
  }
  auto m = get_member(c, chat, user);
  if (!m) return not_member();
  return rules::group_visible(row->g.last_seq, row->g.full_history, *m);
}

std::vector<std::pair<UserId, uint64_t>> lock_logs(PgConn& c, std::vector<UserId> users) {
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  auto r =
      c.q("SELECT user_id, group_count FROM user_logs WHERE user_id = ANY($1::text[]) "
          "ORDER BY user_id FOR UPDATE",
          PgTextArray{std::move(users)});
  std::vector<std::pair<UserId, uint64_t>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.str(i, 0), r.u64(i, 1));
  return out;
}

std::vector<Delivery> log_updates(PgConn& c, const std::vector<UserId>& users, const LogEntry& e,
                                  uint64_t retention) {
  std::vector<Delivery> out;
  if (users.empty()) return out;
  // The rows are locked in id order by the subquery (a plain UPDATE ... WHERE = ANY locks
  // them in whatever order the plan visits them).
  // The entries are written by the same statement (a CTE), which returns them.
  auto r =
      c.q("WITH l AS (UPDATE user_logs u SET pts = u.pts + 1 FROM (SELECT user_id FROM user_logs "
          "WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE) s WHERE u.user_id = "
          "s.user_id RETURNING u.user_id, u.pts) INSERT INTO updates (user_id, pts, kind, chat_id, "
          "seq, by_user, ts) SELECT user_id, pts, $2, $3, $4, $5, $6 FROM l RETURNING user_id, pts",
          PgTextArray{users}, int64_t(e.kind), e.chat, e.seq, e.by, e.ts);
  std::vector<std::string> ids;
  std::vector<int64_t> pts;
  for (int i = 0; i < r.rows(); ++i) {
    ids.push_back(r.str(i, 0));
    pts.push_back(r.i64(i, 1));
  }
  for (const auto& u : users)
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == u) {
        uint64_t p = static_cast<uint64_t>(pts[i]);
        out.push_back(Delivery{u, p});
        // Trim in steps of 1024 so that the log holds at least `retention` entries.
        if (p > retention && p % 1024 == 0)
          c.later_q("DELETE FROM updates WHERE user_id = $1 AND pts < $2", u, p - retention);
        break;
      }
  return out;
}

std::optional<rules::ReadPositions> read_positions(PgConn& c, const UserId& user, ChatId chat,
                                                   bool lock) {
  static const std::string base =
      "SELECT read_seq, delivered_seq FROM user_chats WHERE user_id = $1 AND chat_id = $2";
  auto r = c.q(lock ? base + " FOR UPDATE" : base, user, chat);
  if (r.empty()) return std::nullopt;
  return rules::ReadPositions{r.u64(0, 0), r.u64(0, 1)};
}

void set_positions(PgConn& c, const UserId& user, ChatId chat, const rules::ReadPositions& p) {
  c.later_q(
      "UPDATE user_chats SET read_seq = $3, delivered_seq = $4 WHERE user_id = $1 AND "
      "chat_id = $2",
      user, chat, p.read_seq, p.delivered_seq);
}

void join_user_chat(PgConn& c, const UserId& user, ChatId chat, ChatKind kind, const UserId& peer,
                    uint64_t seq) {
  auto now = read_positions(c, user, chat, true).value_or(rules::ReadPositions{});
  auto p = rules::joined_at(now, seq);
  c.q("INSERT INTO user_chats (user_id, chat_id, kind, peer, read_seq, delivered_seq) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, chat_id) DO UPDATE SET "
      "kind = EXCLUDED.kind, peer = EXCLUDED.peer, read_seq = EXCLUDED.read_seq, "
      "delivered_seq = EXCLUDED.delivered_seq",
      user, chat, int64_t(kind), peer, p.read_seq, p.delivered_seq);
}

void own_message(PgConn& c, const UserId& user, ChatId chat, uint64_t seq) {
  // rules::after_own_message in one statement, queued: nobody reads its answer.
  c.later_q(
      "UPDATE user_chats SET read_seq = $3, delivered_seq = greatest(delivered_seq, $3) WHERE "
      "user_id = $1 AND chat_id = $2 AND read_seq < $3",
      user, chat, seq);
}

}  // namespace parley::store::pg
