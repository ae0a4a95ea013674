// Groups and chat membership: group operations (decided by store/rules/groups.h), group
// info, a user's groups, the typing audience, whether two users share a chat, and receipts
// (decided by store/rules/read_state.h).
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/postgres/pg_internal.h"
#include "store/rules/groups.h"
#include "store/rules/messages.h"
#include "store/rules/read_state.h"

namespace parley::store::pg {

namespace {

void write_member(PgConn& c, ChatId chat, const Member& m) {
  c.q("INSERT INTO members (chat_id, user_id, role, joined_seq, left_seq) VALUES ($1, $2, $3, "
      "$4, $5) ON CONFLICT (chat_id, user_id) DO UPDATE SET role = EXCLUDED.role, joined_seq = "
      "EXCLUDED.joined_seq, left_seq = EXCLUDED.left_seq",
      chat, m.user, int64_t(m.role), m.joined_seq, m.left_seq);
}

void write_group(PgConn& c, const rules::GroupState& g, bool insert) {
  if (insert) {
    c.q("INSERT INTO chats (id, kind, name, created_by, created_at, last_seq, last_ts, "
        "member_count, large, full_history, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11)",
        g.chat_id, int64_t(g.kind), g.name, g.created_by, g.created_at, g.last_seq, g.last_ts,
        g.member_count, g.large, g.full_history, g.deleted);
  } else {
    c.q("UPDATE chats SET name = $2, last_seq = $3, last_ts = $4, member_count = $5, large = $6, "
        "full_history = $7, deleted = $8 WHERE id = $1",
        g.chat_id, g.name, g.last_seq, g.last_ts, g.member_count, g.large, g.full_history,
        g.deleted);
  }
}

}  // namespace

// Users whose logs live on this server get theirs in the commit, the others an outbox row.
static std::vector<Delivery> log_here_or_owe(PgConn& c, std::vector<UserId> users,
                                             const LogEntry& e, uint64_t retention,
                                             const Placement& p) {
  std::vector<UserId> local, remote;
  for (auto& u : users) (p.local_user(u) ? local : remote).push_back(std::move(u));
  write_outbox(c, p, e.chat, static_cast<OutboxKind>(e.kind), e.seq, e.by, e.ts, remote);
  return log_updates(c, local, e, retention);
}

Result<ShardGroup> group_on_shard(PgConn& c, const GroupRequest& req, uint64_t retention,
                                  const Placement& p, const std::vector<rules::UserFacts>& remote) {
  // Locks: the chat first, then the actor's row of it, then the named users' logs in id
  // order (their group counts), as every transaction takes them.
  rules::GroupInput in;
  std::optional<ChatRow> chat;
  if (req.op != GroupOp::create) {
    chat = load_chat(c, req.chat_id, true);
    if (chat) in.group = chat->g;
  }
  // The actor's row of the chat before the logs: the order receipts lock them in.
  if (req.op != GroupOp::create) read_positions(c, req.actor, req.chat_id, true);
  auto named = rules::named_users(req);
  auto counts = lock_logs(c, named);
  for (auto& u : named) {
    rules::UserFacts f;
    if (p.local_user(u)) {
      f.live = live_user(c, u);
      for (const auto& [id, n] : counts)
        if (id == u) f.group_count = n;
    } else {
      // Read on the user's server just before (a count may move meanwhile: see SCALING.md).
      for (const auto& r : remote)
        if (r.user == u) {
          f.live = r.live;
          f.group_count = r.group_count;
        }
    }
    if (in.group) f.member = get_member(c, req.chat_id, u);
    f.user = std::move(u);
    in.users.push_back(std::move(f));
  }
  auto planned = rules::plan_group_op(req, in);
  if (!planned) return planned.error();
  rules::GroupPlan& plan = planned.value();

  ChatId chat_id = req.chat_id;
  if (req.op == GroupOp::create) {
    chat_id = new_chat_id(c, user_bucket(req.actor));  // placed with its creator
    plan.group.chat_id = chat_id;
    plan.event.chat_id = chat_id;
  }
  if (plan.everyone_leaves) rules::leave_all(plan, active_members(c, chat_id));
  const Message& m = plan.event;
  write_group(c, plan.group, req.op == GroupOp::create);
  for (const auto& row : plan.member_rows) write_member(c, chat_id, row);
  // Users that join or leave and are not named (remove_group) get their logs locked
  // here, in id order.
  std::vector<UserId> counted = plan.joined;
  counted.insert(counted.end(), plan.left.begin(), plan.left.end());
  lock_logs(c, counted);
  std::vector<UserId> joined_elsewhere, left_elsewhere;
  for (const auto& u : plan.joined) {
    join_user_chat(c, u, chat_id, ChatKind::group, "", m.seq);
    if (p.local_user(u))
      c.q("UPDATE user_logs SET group_count = group_count + 1 WHERE user_id = $1", u);
    else
      joined_elsewhere.push_back(u);
  }
  for (const auto& u : plan.left) {
    if (p.local_user(u))
      c.q("UPDATE user_logs SET group_count = greatest(group_count - 1, 0) WHERE "
          "user_id = $1",
          u);
    else
      left_elsewhere.push_back(u);
  }
  // Index rows before the event's log entries: a member finds the chat in its list once it
  // has the event.
  write_outbox(c, p, chat_id, OutboxKind::joined, m.seq, "", m.ts, joined_elsewhere);
  write_outbox(c, p, chat_id, OutboxKind::left, m.seq, "", m.ts, left_elsewhere);
  c.q("INSERT INTO messages (chat_id, seq, message_id, ts, sender, recipient, kind, body, "
      "client_msg_id) VALUES ($1, $2, $3, $4, $5, '', $6, $7, '')",
      chat_id, m.seq, m.message_id, m.ts, m.sender, int64_t(m.kind), PgBytes{m.body});
  own_message(c, req.actor, chat_id, m.seq);

  ShardGroup out;
  GroupResult& r = out.r;
  std::vector<UserId> active_after;
  if (rules::event_to_every_member(plan)) active_after = active_member_ids(c, chat_id);
  auto recipients = rules::event_recipients(plan, active_after);
  for (const auto& u : recipients)
    if (!p.local_user(u)) out.remote.push_back(u);
  r.event.deliveries = log_here_or_owe(
      c, std::move(recipients), LogEntry{UpdateKind::message, chat_id, m.seq, "", 0}, retention, p);
  r.event.broadcast = plan.group.large;
  r.event.sender_pts = rules::sender_pts(r.event.deliveries, req.actor);
  r.event.message = std::move(plan.event);
  r.chat = rules::chat_info(plan.group);
  r.joined = std::move(plan.joined);
  r.left = std::move(plan.left);
  out.owes = p.sharded();
  return out;
}

void PgStore::group_op(GroupRequest req, Callback<GroupResult> done) {
  uint64_t retention = sync_.update_log_retention;
  submit<GroupResult>(
      true,
      [req = std::move(req), retention](PgConn& c) -> Result<GroupResult> {
        auto r = group_on_shard(c, req, retention, Placement{}, {});
        if (!r) return r.error();
        return std::move(r.value().r);
      },
      std::move(done));
}

void PgStore::group_info(UserId user, ChatId chat, Callback<ChatInfo> done) {
  submit<ChatInfo>(
      false,
      [user = std::move(user), chat](PgConn& c) -> Result<ChatInfo> {
        auto row = load_chat(c, chat, false);
        if (!row || row->g.kind != ChatKind::group || row->g.deleted)
          return Error{Errc::not_found, fmt::format("no such group: {}", chat)};
        auto vis = visible_range(c, chat, user);
        if (!vis) return vis.error();
        if (!vis->member) return Error{Errc::forbidden, "not a member of this group"};
        ChatInfo info = rules::chat_info(row->g);
        auto m =
            c.q("SELECT m.user_id, m.role, m.joined_seq, m.left_seq, coalesce(uc.read_seq, 0), "
                "coalesce(uc.delivered_seq, 0) FROM members m LEFT JOIN user_chats uc ON "
                "uc.user_id = m.user_id AND uc.chat_id = m.chat_id WHERE m.chat_id = $1 AND "
                "m.left_seq = 0 ORDER BY m.user_id LIMIT 1000",
                chat);
        for (int i = 0; i < m.rows(); ++i)
          info.members.push_back(Member{m.str(i, 0), static_cast<Role>(m.i64(i, 1)), m.u64(i, 2),
                                        m.u64(i, 3), m.u64(i, 4), m.u64(i, 5)});
        return info;
      },
      std::move(done));
}

void PgStore::member_groups(UserId user, bool large_only, Callback<std::vector<ChatId>> done) {
  submit<std::vector<ChatId>>(
      false,
      [user = std::move(user), large_only](PgConn& c) -> Result<std::vector<ChatId>> {
        auto r =
            c.q("SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id WHERE "
                "m.user_id = $1 AND m.left_seq = 0 AND c.kind = 2 AND (c.large OR NOT $2) "
                "ORDER BY m.chat_id",
                user, large_only);
        std::vector<ChatId> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(r.u64(i, 0));
        return out;
      },
      std::move(done));
}

void PgStore::audience(UserId user, ChatId chat, UserId with, Callback<Audience> done) {
  submit<Audience>(
      false,
      [user = std::move(user), chat, with = std::move(with)](PgConn& c) -> Result<Audience> {
        Audience a;
        ChatId id = chat;
        if (id == 0) {
          if (with == user) return Error{Errc::bad_request, "that is you"};
          auto d = direct_chat(c, user, with);
          if (!d) {
            if (c.q("SELECT 1 FROM users WHERE id = $1", with).empty()) return no_user(with);
            a.members = {user, with};  // no message yet: the chat does not exist
            return a;
          }
          id = *d;
        }
        auto row = load_chat(c, id, false);
        if (!row) return no_chat(id);
        a.chat_id = id;
        a.kind = row->g.kind;
        a.large = row->g.large;
        if (row->g.kind == ChatKind::direct) {
          if (!row->has_member(user)) return not_member();
          a.members = {row->peer_a, row->peer_b};
          return a;
        }
        if (row->g.deleted) return Error{Errc::not_found, fmt::format("no such group: {}", id)};
        auto me = get_member(c, id, user);
        if (!me || me->left_seq) return not_member();
        if (!row->g.large) a.members = active_member_ids(c, id);
        return a;
      },
      std::move(done));
}

void PgStore::shares_chat(UserId a, UserId b, Callback<bool> done) {
  submit<bool>(
      false,
      [a = std::move(a), b = std::move(b)](PgConn& c) -> Result<bool> {
        if (a == b || direct_chat(c, a, b)) return true;
        auto r =
            c.q("SELECT 1 FROM members x JOIN members y ON y.chat_id = x.chat_id JOIN chats c ON "
                "c.id = x.chat_id WHERE x.user_id = $1 AND y.user_id = $2 AND x.left_seq = 0 AND "
                "y.left_seq = 0 AND c.kind = 2 LIMIT 1",
                a, b);
        return !r.empty();
      },
      std::move(done));
}

Result<ShardReceipt> mark_on_shard(PgConn& c, const ReceiptRequest& req, uint64_t retention,
                                   const Placement& p) {
  ChatId chat_id = req.chat_id;
  if (chat_id == 0) {
    auto d = direct_chat(c, req.user, req.with);
    if (!d) return Error{Errc::not_found, fmt::format("no chat with {}", req.with)};
    chat_id = *d;
  }
  auto chat = load_chat(c, chat_id, false);
  if (!chat) return no_chat(chat_id);
  // Locks: the user's row of the chat first (positions only move forward, and
  // concurrent marks log in the order they decide), then the logs.
  auto pos =
      c.q("SELECT read_seq, delivered_seq FROM user_chats WHERE user_id = $1 AND chat_id = $2 "
          "FOR UPDATE",
          req.user, chat_id);
  // The chat as it stands once the row is ours (a send may have committed meanwhile).
  chat = load_chat(c, chat_id, false);
  rules::Visible visible = rules::direct_visible(chat->g.last_seq);
  if (chat->g.kind == ChatKind::direct) {
    if (!chat->has_member(req.user)) return not_member();
  } else {
    auto m = get_member(c, chat_id, req.user);
    if (!m) return not_member();
    visible = rules::group_visible(chat->g.last_seq, chat->g.full_history, *m);
  }
  if (pos.empty()) return not_member();
  rules::ReadPositions now{pos.u64(0, 0), pos.u64(0, 1)};
  auto decision = rules::decide_receipt(req.kind, req.seq, visible, now);
  if (decision.advanced) set_positions(c, req.user, chat_id, decision.positions);
  ShardReceipt out;
  out.owes = p.sharded();
  ReceiptResult& r = out.r;
  r.receipt = Receipt{chat_id, req.user, req.kind, decision.seq, req.ts};
  r.advanced = decision.advanced;
  r.unread = decision.unread;
  auto audience = rules::receipt_audience(req.kind, decision.advanced, visible.member, chat->g.kind,
                                          chat->g.large);
  std::vector<UserId> members;
  if (audience.other_members) {
    if (chat->g.kind == ChatKind::direct)
      members = {chat->peer_a, chat->peer_b};
    else
      members = active_member_ids(c, chat_id);
  }
  auto recipients = rules::receipt_recipients(audience, req.user, members);
  for (const auto& u : recipients)
    if (!p.local_user(u)) out.remote.push_back(u);
  r.deliveries =
      log_here_or_owe(c, std::move(recipients),
                      LogEntry{req.kind, chat_id, decision.seq, req.user, req.ts}, retention, p);
  if (audience.own_log)
    for (const auto& d : r.deliveries)
      if (d.user == req.user) r.user_pts = d.pts;
  r.broadcast = audience.broadcast;
  return out;
}

void PgStore::mark(ReceiptRequest req, Callback<ReceiptResult> done) {
  uint64_t retention = sync_.update_log_retention;
  submit<ReceiptResult>(
      true,
      [req = std::move(req), retention](PgConn& c) -> Result<ReceiptResult> {
        auto r = mark_on_shard(c, req, retention, Placement{});
        if (!r) return r.error();
        return std::move(r.value().r);
      },
      std::move(done));
}

}  // namespace parley::store::pg
