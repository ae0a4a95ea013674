// Messages: the append (seq, the members' update logs, idempotency, media references) and
// every read of messages: update logs, history, the chat list and the login snapshot.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/postgres/pg_internal.h"
#include "store/rules/messages.h"
#include "store/rules/read_state.h"

namespace parley::store::pg {

namespace {

std::optional<Message> read_message(PgConn& c, ChatId chat, uint64_t seq) {
  auto r = c.q(fmt::format("SELECT {} FROM messages WHERE chat_id = $1 AND seq = $2", kMessageCols),
               chat, seq);
  if (r.empty()) return std::nullopt;
  return message_at(r, 0);
}

std::vector<Message> read_range(PgConn& c, ChatId chat, uint64_t first, uint64_t last) {
  std::vector<Message> out;
  if (first > last) return out;
  auto r = c.q(fmt::format("SELECT {} FROM messages WHERE chat_id = $1 AND seq BETWEEN $2 AND $3 "
                           "ORDER BY seq",
                           kMessageCols),
               chat, first, last);
  for (int i = 0; i < r.rows(); ++i) out.push_back(message_at(r, i));
  return out;
}

uint64_t read_pts(PgConn& c, const UserId& user) {
  auto r = c.q("SELECT pts FROM user_logs WHERE user_id = $1", user);
  return r.empty() ? 0 : r.u64(0, 0);
}

// The direct chat of sender and to_user, created if missing (the pair row is the one place
// that decides which chat it is; a racing creation commits first and this one finds it).
// It lives in the pair's bucket, on this server. nullopt: to_user's account lives on another
// server and has not been checked yet (ShardedPgStore checks it and asks again).
Result<std::optional<ChatId>> direct_chat_for(PgConn& c, const AppendRequest& req, int64_t ts,
                                              const Placement& p, bool to_user_checked) {
  if (auto st = rules::check_direct_send(req.sender, req.to_user); !st) return st.error();
  if (auto id = direct_chat(c, req.sender, req.to_user)) return std::optional<ChatId>(*id);
  if (p.local_user(req.to_user)) {
    if (!live_user(c, req.to_user)) return no_user(req.to_user);
  } else if (!to_user_checked) {
    return std::optional<ChatId>();
  }
  const auto& [lo, hi] = std::minmax(req.sender, req.to_user);
  ChatId id = new_chat_id(c, pair_bucket(lo, hi));
  auto ins =
      c.q("INSERT INTO direct_pairs (user_a, user_b, chat_id) VALUES ($1, $2, $3) "
          "ON CONFLICT (user_a, user_b) DO NOTHING RETURNING chat_id",
          lo, hi, id);
  if (ins.empty()) {  // created by a transaction that committed meanwhile
    if (auto other = direct_chat(c, req.sender, req.to_user)) return std::optional<ChatId>(*other);
    return Error{Errc::unavailable, "direct chat creation raced"};
  }
  c.q("INSERT INTO chats (id, kind, created_by, created_at, peer_a, peer_b) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      id, int64_t(ChatKind::direct), req.sender, ts, lo, hi);
  join_user_chat(c, req.sender, id, ChatKind::direct, req.to_user, 1);
  join_user_chat(c, req.to_user, id, ChatKind::direct, req.sender, 1);
  // Users whose accounts live elsewhere find the chat in their index there.
  if (!p.local_user(req.sender))
    write_outbox(c, p, id, OutboxKind::direct_chat, 0, req.to_user, ts, {req.sender});
  if (!p.local_user(req.to_user))
    write_outbox(c, p, id, OutboxKind::direct_chat, 0, req.sender, ts, {req.to_user});
  return std::optional<ChatId>(id);
}

}  // namespace

Result<ShardAppend> append_on_shard(PgConn& c, AppendRequest& req, uint64_t retention,
                                    const Placement& p, bool to_user_checked) {
  ShardAppend out;
  out.owes = p.sharded();
  // Reserve the idempotency key first: a concurrent append with the same key (another
  // worker or node) waits here for the first one's commit and then returns its result.
  auto reserved =
      c.q("INSERT INTO idempotency (sender, client_msg_id) VALUES ($1, $2) "
          "ON CONFLICT (sender, client_msg_id) DO NOTHING RETURNING 1",
          req.sender, req.client_msg_id);
  if (reserved.empty()) {
    auto idem =
        c.q("SELECT chat_id, seq, sender_pts FROM idempotency WHERE sender = $1 AND "
            "client_msg_id = $2",
            req.sender, req.client_msg_id);
    if (idem.empty() || idem.null(0, 0))
      return Error{Errc::unavailable, "a concurrent append with this client_msg_id"};
    auto msg = read_message(c, idem.u64(0, 0), idem.u64(0, 1));
    if (!msg) return Error{Errc::internal, "idempotency record without message"};
    out.r = rules::duplicate_append(std::move(*msg), idem.u64(0, 2));
    return out;
  }

  // The media must all exist; locked (FOR SHARE, in id order as sweeps lock them) so that
  // a sweep orders with this append. Reported in the order asked.
  std::vector<std::string> media;
  for (const auto& id : req.media_ids)
    if (std::find(media.begin(), media.end(), id) == media.end()) media.push_back(id);
  // Across servers the records were checked and marked pending on theirs before this
  // commit; the references follow through the outbox.
  if (!media.empty() && !p.sharded()) {
    std::vector<std::string> sorted = media;
    std::sort(sorted.begin(), sorted.end());
    auto found = c.q("SELECT id FROM media WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE",
                     PgTextArray{sorted});
    std::vector<std::string> have;
    for (int i = 0; i < found.rows(); ++i) have.push_back(found.str(i, 0));
    for (const auto& id : media)
      if (std::find(have.begin(), have.end(), id) == have.end())
        return Error{Errc::not_found, fmt::format("no such media {}", id)};
  }

  // The chat row is the seq counter: locked (and moved on by one) until commit, so appends
  // to one chat commit in seq order. A direct chat's pair usually exists: one statement
  // finds, locks and moves it; otherwise it is created first.
  ChatId chat_id = req.chat_id;
  std::optional<ChatRow> chat;
  if (!req.to_user.empty()) {
    if (auto st = rules::check_direct_send(req.sender, req.to_user); !st) return st.error();
    chat = bump_direct_chat(c, req.sender, req.to_user, req.ts);
    if (chat) {
      chat_id = chat->g.chat_id;
    } else {
      auto id = direct_chat_for(c, req, req.ts, p, to_user_checked);
      if (!id) return id.error();
      if (!id.value()) {
        out.check_user = true;
        c.q("DELETE FROM idempotency WHERE sender = $1 AND client_msg_id = $2", req.sender,
            req.client_msg_id);
        return out;
      }
      chat_id = *id.value();
    }
  }
  if (!chat) chat = bump_chat(c, chat_id, req.ts);
  if (!chat) return no_chat(chat_id);  // nothing changed: the op's failure rolls back the rest
  std::vector<UserId> members;
  const bool on_read = rules::fan_out_on_read(chat->g.kind, chat->g.large);
  if (chat->g.kind == ChatKind::direct) {
    if (!chat->has_member(req.sender)) return not_member();
    members = {chat->peer_a, chat->peer_b};
  } else if (on_read) {
    auto m = get_member(c, chat_id, req.sender);
    if (!m || m->left_seq) return not_member();
  } else {
    // The active members are read anyway for the fan-out: the sender must be one of them.
    members = active_member_ids(c, chat_id);
    if (std::find(members.begin(), members.end(), req.sender) == members.end()) return not_member();
  }

  AppendResult& r = out.r;
  Message& m = r.message;
  m.chat_id = chat_id;
  m.seq = chat->g.last_seq;  // already moved on by bump_chat
  m.message_id = req.message_id;
  m.ts = req.ts;
  m.sender = req.sender;
  if (chat->g.kind == ChatKind::direct)
    m.to = chat->peer_a == req.sender ? chat->peer_b : chat->peer_a;
  m.kind = req.kind;
  m.body = std::move(req.body);
  m.client_msg_id = req.client_msg_id;
  c.later_q(
      "INSERT INTO messages (chat_id, seq, message_id, ts, sender, recipient, kind, body, "
      "client_msg_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      m.chat_id, m.seq, m.message_id, m.ts, m.sender, m.to, int64_t(m.kind), PgBytes{m.body},
      m.client_msg_id);
  // The sender's read position first (its user_chats row), then the logs: the order a
  // receipt locks them in.
  own_message(c, req.sender, chat_id, m.seq);
  if (on_read) {
    r.broadcast = true;
  } else {
    // Members whose logs live on this server get their entries in this commit, the others
    // through the outbox.
    std::vector<UserId> local, remote;
    for (auto& u : members) (p.local_user(u) ? local : remote).push_back(std::move(u));
    std::sort(local.begin(), local.end());
    r.deliveries =
        log_updates(c, local, LogEntry{UpdateKind::message, chat_id, m.seq, "", 0}, retention);
    write_outbox(c, p, chat_id, OutboxKind::message, m.seq, "", 0, remote);
    out.remote = std::move(remote);
  }
  r.sender_pts = rules::sender_pts(r.deliveries, req.sender);
  if (p.sharded()) {
    write_outbox(c, p, chat_id, OutboxKind::media_ref, m.seq, req.sender, req.ts, media,
                 req.client_msg_id);
  } else {
    for (const auto& id : media)
      c.later_q(
          "INSERT INTO media_refs (media_id, sender, chat_id) VALUES ($1, $2, $3) "
          "ON CONFLICT DO NOTHING",
          id, req.sender, chat_id);
  }
  c.later_q(
      "UPDATE idempotency SET chat_id = $3, seq = $4, sender_pts = $5 WHERE sender = $1 AND "
      "client_msg_id = $2",
      req.sender, req.client_msg_id, chat_id, m.seq, r.sender_pts);
  return out;
}

void PgStore::append_message(AppendRequest req, Callback<AppendResult> done) {
  uint64_t retention = sync_.update_log_retention;
  // Appends to one chat commit in the order they came (a direct chat named by its two users
  // before it exists): a sender's pipelined messages keep their order in the chat's seq.
  std::string key = req.chat_id != 0           ? fmt::format("c{}", req.chat_id)
                    : req.sender < req.to_user ? fmt::format("d{}\n{}", req.sender, req.to_user)
                                               : fmt::format("d{}\n{}", req.to_user, req.sender);
  submit<AppendResult>(
      true,
      [req = std::move(req), retention](PgConn& c) -> Result<AppendResult> {
        AppendRequest copy = req;  // the op may run again (a retried transaction)
        auto r = append_on_shard(c, copy, retention, Placement{}, true);
        if (!r) return r.error();
        return std::move(r.value().r);
      },
      std::move(done), std::move(key));
}

void PgStore::current_pts(UserId user, Callback<uint64_t> done) {
  submit<uint64_t>(
      false, [user = std::move(user)](PgConn& c) -> Result<uint64_t> { return read_pts(c, user); },
      std::move(done));
}

Result<UpdatesPage> read_updates_in(PgConn& c, const UserId& user, uint64_t after_pts,
                                    uint32_t limit, const Placement& p,
                                    std::vector<size_t>* elsewhere) {
  UpdatesPage page;
  uint64_t current = read_pts(c, user);
  page.pts = after_pts;
  if (after_pts > current) {
    page.limited = true;  // a cursor from the future: this store does not know it
    return page;
  }
  if (after_pts == current) return page;
  auto r = c.q(fmt::format("SELECT u.pts, u.kind, u.chat_id, u.seq, u.by_user, u.ts, m.chat_id, {} "
                           "FROM updates u LEFT JOIN messages m ON u.kind = 1 AND "
                           "m.chat_id = u.chat_id AND m.seq = u.seq WHERE u.user_id = $1 AND "
                           "u.pts > $2 AND u.pts <= $3 ORDER BY u.pts LIMIT $4",
                           "m.chat_id, m.seq, m.message_id, m.ts, m.sender, m.recipient, m.kind, "
                           "m.body, m.client_msg_id"),
               user, after_pts, current, int64_t(limit));
  if (r.empty() || r.u64(0, 0) != after_pts + 1) {
    page.limited = true;  // trimmed away
    return page;
  }
  for (int i = 0; i < r.rows(); ++i) {
    uint64_t pts = r.u64(i, 0);
    auto kind = static_cast<UpdateKind>(r.i64(i, 1));
    if (kind == UpdateKind::message) {
      if (r.null(i, 6)) {
        ChatId chat = r.u64(i, 2);
        if (!elsewhere || p.chat_shard(chat) == p.index) continue;  // no such message
        // The message lives on its chat's server: the caller fills it in.
        Message m;
        m.chat_id = chat;
        m.seq = r.u64(i, 3);
        elsewhere->push_back(page.updates.size());
        page.updates.push_back(Update{pts, kind, std::move(m), {}});
      } else {
        page.updates.push_back(Update{pts, kind, message_at(r, i, 7), {}});
      }
    } else {
      page.updates.push_back(
          Update{pts, kind, {}, Receipt{r.u64(i, 2), r.str(i, 4), kind, r.u64(i, 3), r.i64(i, 5)}});
    }
    page.pts = pts;
  }
  page.has_more = page.pts < current;
  return page;
}

std::vector<Message> read_messages(PgConn& c, const std::vector<std::pair<ChatId, uint64_t>>& at) {
  std::vector<int64_t> chats, seqs;
  for (const auto& [chat, seq] : at) {
    chats.push_back(static_cast<int64_t>(chat));
    seqs.push_back(static_cast<int64_t>(seq));
  }
  auto r = c.q(fmt::format("SELECT {} FROM messages WHERE (chat_id, seq) IN (SELECT * FROM "
                           "unnest($1::bigint[], $2::bigint[]))",
                           kMessageCols),
               PgIntArray{chats}, PgIntArray{seqs});
  std::vector<Message> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(message_at(r, i));
  return out;
}

void PgStore::read_updates(UserId user, uint64_t after_pts, uint32_t limit,
                           Callback<UpdatesPage> done) {
  submit<UpdatesPage>(
      false,
      [user = std::move(user), after_pts, limit](PgConn& c) {
        return read_updates_in(c, user, after_pts, limit, Placement{}, nullptr);
      },
      std::move(done));
}

namespace {

Result<ChatList> list_chats_in(PgConn& c, const UserId& user, uint32_t limit,
                               ChatListCursor after) {
  ChatList list;
  list.chats = chat_summaries(c, user, std::nullopt);
  rules::count_unread(list);
  rules::page_chat_list(list, after, limit);
  for (auto& s : list.chats) chat_details(c, user, s);
  list.pts = read_pts(c, user);
  return list;
}

}  // namespace

std::vector<ChatSummary> chat_summaries(PgConn& c, const UserId& user,
                                        const std::optional<std::vector<ChatId>>& only) {
  std::vector<ChatSummary> out;
  static const std::string base =
      "SELECT uc.chat_id, uc.kind, uc.peer, uc.read_seq, uc.delivered_seq, c.name, c.large, "
      "c.last_seq, c.last_ts, c.full_history, m.user_id IS NOT NULL, m.role, m.joined_seq, "
      "m.left_seq FROM user_chats uc JOIN chats c ON c.id = uc.chat_id LEFT JOIN members m ON "
      "m.chat_id = uc.chat_id AND m.user_id = uc.user_id WHERE uc.user_id = $1";
  auto r = only ? c.q(base + " AND uc.chat_id = ANY($2::bigint[])", user,
                      PgIntArray{std::vector<int64_t>(only->begin(), only->end())})
                : c.q(base, user);
  for (int i = 0; i < r.rows(); ++i) {
    ChatSummary s;
    s.chat_id = r.u64(i, 0);
    s.kind = static_cast<ChatKind>(r.i64(i, 1));
    s.peer = r.str(i, 2);
    s.read_seq = r.u64(i, 3);
    s.delivered_seq = r.u64(i, 4);
    s.name = r.str(i, 5);
    s.large = r.boolean(i, 6);
    s.last_seq = r.u64(i, 7);
    s.last_ts = r.i64(i, 8);
    if (s.kind == ChatKind::group) {
      if (!r.boolean(i, 10)) continue;
      Member m{user, static_cast<Role>(r.i64(i, 11)), r.u64(i, 12), r.u64(i, 13)};
      auto vis = rules::group_visible(s.last_seq, r.boolean(i, 9), m);
      s.last_seq = vis.last;
      s.member = vis.member;
    }
    // A chat one has left or was removed from is not unread (docs/PROTOCOL.md §3.7).
    s.unread = rules::unread_count(s.member, s.last_seq, s.read_seq);
    out.push_back(std::move(s));
  }
  return out;
}

void chat_details(PgConn& c, const UserId& user, ChatSummary& s) {
  if (s.last_seq > 0) s.last_message = read_message(c, s.chat_id, s.last_seq);
  if (s.kind == ChatKind::direct) {
    auto p = read_positions(c, s.peer, s.chat_id).value_or(rules::ReadPositions{});
    s.reads.push_back(Member{s.peer, Role::member, 0, 0, p.read_seq, p.delivered_seq});
  } else if (!s.large && s.member) {
    auto m =
        c.q("SELECT m.user_id, m.role, m.joined_seq, m.left_seq, coalesce(uc.read_seq, 0), "
            "coalesce(uc.delivered_seq, 0) FROM members m LEFT JOIN user_chats uc ON "
            "uc.user_id = m.user_id AND uc.chat_id = m.chat_id WHERE m.chat_id = $1 AND "
            "m.left_seq = 0 AND m.user_id <> $2 ORDER BY m.user_id",
            s.chat_id, user);
    for (int i = 0; i < m.rows(); ++i)
      s.reads.push_back(Member{m.str(i, 0), static_cast<Role>(m.i64(i, 1)), m.u64(i, 2),
                               m.u64(i, 3), m.u64(i, 4), m.u64(i, 5)});
  }
}

std::optional<ChatWindow> chat_window(PgConn& c, const UserId& user, ChatSummary chat,
                                      uint32_t messages_per_chat) {
  auto vis = visible_range(c, chat.chat_id, user);
  if (!vis) return std::nullopt;
  ChatWindow w;
  const uint64_t first = rules::window_start(vis.value(), messages_per_chat, w);
  w.messages = read_range(c, chat.chat_id, first, vis->last);
  w.chat = std::move(chat);
  return w;
}

void PgStore::list_chats(UserId user, uint32_t limit, ChatListCursor after,
                         Callback<ChatList> done) {
  submit<ChatList>(
      false,
      [user = std::move(user), limit, after](PgConn& c) {
        return list_chats_in(c, user, limit, after);
      },
      std::move(done));
}

void PgStore::snapshot(UserId user, uint32_t max_chats, uint32_t messages_per_chat,
                       Callback<Snapshot> done) {
  submit<Snapshot>(
      false,
      [user = std::move(user), max_chats, messages_per_chat](PgConn& c) -> Result<Snapshot> {
        auto list = list_chats_in(c, user, max_chats, {});
        if (!list) return list.error();
        Snapshot s;
        s.pts = list->pts;
        for (auto& chat : list->chats)
          if (auto w = chat_window(c, user, std::move(chat), messages_per_chat))
            s.chats.push_back(std::move(*w));
        return s;
      },
      std::move(done));
}

void PgStore::history(HistoryQuery query, Callback<HistoryPage> done) {
  submit<HistoryPage>(
      false,
      [q = std::move(query)](PgConn& c) -> Result<HistoryPage> {
        HistoryPage page;
        ChatId chat_id = q.chat_id;
        if (chat_id == 0) {
          auto id = direct_chat(c, q.user, q.with);
          if (!id) {
            auto u = c.q("SELECT 1 FROM users WHERE id = $1", q.with);
            if (u.empty()) return no_user(q.with);
            return page;  // no chat yet: empty history
          }
          chat_id = *id;
        }
        auto vis = visible_range(c, chat_id, q.user);
        if (!vis) return vis.error();
        page.chat_id = chat_id;
        uint64_t first, last;
        if (q.after_seq) {  // forwards: per-chat sync
          first = std::max(*q.after_seq + 1, vis->first);
          last = std::min(vis->last, first + q.limit - 1);
          page.has_more = last < vis->last;
        } else {  // backwards from before_seq
          last = q.before_seq == 0 || q.before_seq > vis->last ? vis->last : q.before_seq - 1;
          first = last >= q.limit ? last - q.limit + 1 : 1;
          first = std::max(first, vis->first);
          page.has_more = first > vis->first;
        }
        if (last >= first && last >= 1)
          page.messages = read_range(c, chat_id, first, last);
        else
          page.has_more = false;
        return page;
      },
      std::move(done));
}

}  // namespace parley::store::pg
