// Groups and chat membership: group operations (decided by store/rules/groups.h), group
// info, a user's groups, the typing audience and whether two users share a chat.
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"
#include "store/rules/groups.h"
#include "store/rules/messages.h"

namespace parley::store::rocks {

namespace {

// The chat record as the group rules see it, and back.
rules::GroupState group_state(ChatId id, const ChatRecord& c) {
  rules::GroupState g;
  g.chat_id = id;
  g.kind = c.kind;
  g.name = c.name;
  g.created_by = c.created_by;
  g.created_at = c.created_at;
  g.last_seq = c.last_seq;
  g.last_ts = c.last_ts;
  g.member_count = c.member_count;
  g.large = c.large;
  g.full_history = c.full_history;
  g.deleted = c.deleted;
  return g;
}

void apply_group_state(const rules::GroupState& g, ChatRecord& c) {
  c.kind = g.kind;
  c.name = g.name;
  c.created_by = g.created_by;
  c.created_at = g.created_at;
  c.last_seq = g.last_seq;
  c.last_ts = g.last_ts;
  c.member_count = g.member_count;
  c.large = g.large;
  c.full_history = g.full_history;
  c.deleted = g.deleted;
}

// The active members of a group, as rows: from the writer cache for a small group, from the
// members family for a large one (never cached whole).
std::vector<Member> active_member_rows(WriteTxn& txn, ChatId chat, bool large) {
  std::vector<Member> out;
  if (!large) {
    for (const auto& [u, m] : txn.active_members(chat)) out.push_back(m);
    return out;
  }
  std::string prefix = chat_prefix(chat);
  std::unique_ptr<rocksdb::Iterator> it(txn.iterator(RocksStore::kMembers));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Decoder d(it->key().ToStringView().substr(8));
    auto m = decode_member(d.key_str(), it->value().ToStringView());
    if (m && !m->left_seq) out.push_back(*m);
  }
  return out;
}

}  // namespace

// Group management: loads the group and the users the request names, lets the group rules
// (store/rules/groups.h) decide, and writes the plan: member rows, group counts, the chat
// record and the event message in the chat's seq, all in the writer's batch.
struct GroupOpImpl final : RocksStore::Op {
  GroupRequest req;
  Callback<GroupResult> done;
  std::optional<Result<GroupResult>> result;

  void apply(WriteTxn& txn) override { result = run(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }

  Result<GroupResult> run(WriteTxn& txn) {
    auto& st = txn.state();
    rules::GroupInput in;
    ChatRecord* chat = nullptr;
    if (req.op != GroupOp::create) {
      chat = txn.load_chat(req.chat_id);
      if (chat) in.group = group_state(req.chat_id, *chat);
    }
    for (auto& u : rules::named_users(req)) {
      rules::UserFacts f;
      f.live = live_user(txn, u);
      f.group_count = txn.group_count(u);
      if (in.group) f.member = txn.get_member(req.chat_id, u);
      f.user = std::move(u);
      in.users.push_back(std::move(f));
    }
    auto planned = rules::plan_group_op(req, in);
    if (!planned) return planned.error();
    rules::GroupPlan& plan = planned.value();

    ChatId chat_id = req.chat_id;
    if (req.op == GroupOp::create) {
      chat_id = st.next_chat_id++;
      st.next_chat_id_dirty = true;
      plan.group.chat_id = chat_id;
      plan.event.chat_id = chat_id;
      chat = &st.chats.emplace(chat_id, ChatRecord{}).first->second;
      if (!plan.group.large) st.group_members[chat_id];  // an empty, loaded cache
    } else if (!plan.was_large) {
      txn.active_members(chat_id);  // load before any member write
    }
    if (plan.everyone_leaves)
      rules::leave_all(plan, active_member_rows(txn, chat_id, plan.was_large));
    const Message& m = plan.event;
    for (const auto& row : plan.member_rows) txn.put_member(chat_id, row);
    for (const auto& u : plan.joined) {
      txn.join_user_chat(u, chat_id, ChatKind::group, "", m.seq);
      txn.set_group_count(u, txn.group_count(u) + 1);
    }
    for (const auto& u : plan.left) txn.set_group_count(u, txn.group_count(u) - 1);
    apply_group_state(plan.group, *chat);
    st.dirty_chats.insert(chat_id);
    txn.put(RocksStore::kMessages, message_key(chat_id, m.seq), encode(m));
    txn.own_message(req.actor, chat_id, m.seq);

    GroupResult r;
    std::vector<UserId> active_after;
    if (rules::event_to_every_member(plan))
      for (const auto& [u, mem] : txn.active_members(chat_id)) active_after.push_back(u);
    for (const auto& u : rules::event_recipients(plan, active_after))
      r.event.deliveries.push_back(txn.log(u, chat_id, m.seq));
    if (plan.group.large) {
      r.event.broadcast = true;
      st.group_members.erase(chat_id);  // large groups are not cached whole
    }
    r.event.sender_pts = rules::sender_pts(r.event.deliveries, req.actor);
    r.event.message = std::move(plan.event);
    r.chat = rules::chat_info(plan.group);
    r.joined = std::move(plan.joined);
    r.left = std::move(plan.left);
    return r;
  }
};

void RocksStore::group_op(GroupRequest req, Callback<GroupResult> done) {
  auto op = std::make_unique<GroupOpImpl>();
  op->req = std::move(req);
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::member_groups(UserId user, bool large_only, Callback<std::vector<ChatId>> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::vector<ChatId> out;
  std::string prefix = user_prefix(user), v;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kUserChats]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto uc = decode_user_chat(it->value().ToStringView());
    if (!uc || uc->kind != ChatKind::group) continue;
    ChatId chat = decode_u64be(it->key().ToStringView());
    if (large_only) {
      if (!db_->Get(ro, cf_[kChats], chat_key(chat), &v).ok()) continue;
      auto rec = decode_chat(v);
      if (!rec || !rec->large) continue;
    }
    if (!db_->Get(ro, cf_[kMembers], member_key(chat, user), &v).ok()) continue;
    auto m = decode_member(user, v);
    if (m && !m->left_seq) out.push_back(chat);
  }
  done(std::move(out));
}

void RocksStore::group_info(UserId user, ChatId chat, Callback<ChatInfo> done) {
  constexpr size_t kMaxListed = 1000;  // a larger group lists its first 1000 members
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  std::optional<ChatRecord> rec;
  if (db_->Get(ro, cf_[kChats], chat_key(chat), &v).ok()) rec = decode_chat(v);
  if (rec) apply_last_message(*db_, cf_[kMessages], snap, chat, *rec);
  if (!rec || rec->kind != ChatKind::group || rec->deleted)
    return done(Error{Errc::not_found, fmt::format("no such group: {}", chat)});
  auto vis = visible_range(snap, chat, user);
  if (!vis) return done(vis.error());
  if (!vis->member) return done(Error{Errc::forbidden, "not a member of this group"});
  ChatInfo info = rules::chat_info(group_state(chat, *rec));
  std::string prefix = chat_prefix(chat);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kMembers]));
  for (it->Seek(prefix);
       it->Valid() && it->key().starts_with(prefix) && info.members.size() < kMaxListed;
       it->Next()) {
    Decoder d(it->key().ToStringView().substr(8));
    auto m = decode_member(d.key_str(), it->value().ToStringView());
    if (!m || m->left_seq) continue;
    std::tie(m->read_seq, m->delivered_seq) = read_positions(snap, m->user, chat);
    info.members.push_back(std::move(*m));
  }
  done(std::move(info));
}

void RocksStore::audience(UserId user, ChatId chat, UserId with, Callback<Audience> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  Audience a;
  if (chat == 0) {
    if (with == user) return done(Error{Errc::bad_request, "that is you"});
    if (!db_->Get(ro, cf_[kPairs], pair_key(user, with), &v).ok()) {
      if (!db_->Get(ro, cf_[kUsers], user_key(with), &v).ok())
        return done(Error{Errc::not_found, fmt::format("no such user: {}", with)});
      a.members = {user, with};  // no message yet: the chat does not exist
      return done(std::move(a));
    }
    chat = decode_u64be(v);
  }
  if (!db_->Get(ro, cf_[kChats], chat_key(chat), &v).ok())
    return done(Error{Errc::not_found, fmt::format("no such chat: {}", chat)});
  auto rec = decode_chat(v);
  if (!rec) return done(Error{Errc::internal, "corrupt chat record"});
  a.chat_id = chat;
  a.kind = rec->kind;
  a.large = rec->large;
  if (rec->kind == ChatKind::direct) {
    if (std::find(rec->members.begin(), rec->members.end(), user) == rec->members.end())
      return done(Error{Errc::forbidden, "not a member of this chat"});
    a.members = rec->members;
    return done(std::move(a));
  }
  if (rec->deleted) return done(Error{Errc::not_found, fmt::format("no such group: {}", chat)});
  if (!db_->Get(ro, cf_[kMembers], member_key(chat, user), &v).ok())
    return done(Error{Errc::forbidden, "not a member of this chat"});
  auto me = decode_member(user, v);
  if (!me || me->left_seq) return done(Error{Errc::forbidden, "not a member of this chat"});
  if (!rec->large) {
    std::string prefix = chat_prefix(chat);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kMembers]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      Decoder d(it->key().ToStringView().substr(8));
      auto m = decode_member(d.key_str(), it->value().ToStringView());
      if (m && !m->left_seq) a.members.push_back(std::move(m->user));
    }
  }
  done(std::move(a));
}

void RocksStore::shares_chat(UserId a, UserId b, Callback<bool> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  bool shared = a == b || db_->Get(ro, cf_[kPairs], pair_key(a, b), &v).ok();
  // Otherwise a group both are active members of: a's groups, each checked for b.
  std::string prefix = user_prefix(a);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kUserChats]));
  for (it->Seek(prefix); !shared && it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto uc = decode_user_chat(it->value().ToStringView());
    if (!uc || uc->kind != ChatKind::group) continue;
    ChatId chat = decode_u64be(it->key().ToStringView());
    auto active = [&](const UserId& u) {
      if (!db_->Get(ro, cf_[kMembers], member_key(chat, u), &v).ok()) return false;
      auto m = decode_member(u, v);
      return m && !m->left_seq;
    };
    shared = active(a) && active(b);
  }
  it.reset();
  done(shared);
}

}  // namespace parley::store::rocks
