// Messages: the append (seq, the members' update logs, idempotency, media references) and
// every read of messages: update logs, history, the chat list and the login snapshot.
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"
#include "store/rules/messages.h"
#include "store/rules/read_state.h"

namespace parley::store::rocks {

struct AppendOp final : RocksStore::Op {
  AppendRequest req;
  Callback<AppendResult> done;
  std::optional<Result<AppendResult>> result;

  void apply(WriteTxn& txn) override { result = run(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }

  Result<AppendResult> run(WriteTxn& txn) {
    auto& st = txn.state();
    std::string ikey = idem_key(req.sender, req.client_msg_id);
    if (auto raw = txn.get(RocksStore::kIdem, ikey)) {
      auto idem = decode_idem(*raw);
      if (!idem) return Error{Errc::internal, "corrupt idempotency record"};
      auto mraw = txn.get(RocksStore::kMessages, message_key(idem->chat_id, idem->seq));
      auto msg = mraw ? decode_message(idem->chat_id, idem->seq, *mraw) : std::nullopt;
      if (!msg) return Error{Errc::internal, "idempotency record without message"};
      return rules::duplicate_append(std::move(*msg), idem->sender_pts);
    }

    // The media the message refers to must all exist; checked before anything is written
    // (a new direct chat included), so that a failed append stores nothing.
    std::vector<MediaRecord> media;
    for (const auto& id : req.media_ids) {
      if (std::any_of(media.begin(), media.end(), [&](const auto& m) { return m.id == id; }))
        continue;
      auto raw = valid_media_id(id) ? txn.get(RocksStore::kMedia, media_key(id)) : std::nullopt;
      if (!raw) return no_media(id);
      auto rec = decode_media(id, *raw);
      if (!rec) return Error{Errc::internal, "corrupt media record"};
      media.push_back(std::move(*rec));
    }

    ChatId chat_id = req.chat_id;
    ChatRecord* chat = nullptr;
    if (!req.to_user.empty()) {
      if (auto to_self = rules::check_direct_send(req.sender, req.to_user); !to_self)
        return to_self.error();
      std::string pk = pair_key(req.sender, req.to_user);
      auto pit = st.pairs.find(pk);
      if (pit != st.pairs.end()) {
        chat_id = pit->second;
      } else if (auto raw = txn.get(RocksStore::kPairs, pk)) {
        chat_id = decode_u64be(*raw);
        st.pairs.emplace(pk, chat_id);
      } else {
        if (!live_user(txn, req.to_user))
          return Error{Errc::not_found, fmt::format("no such user: {}", req.to_user)};
        chat_id = st.next_chat_id++;
        st.next_chat_id_dirty = true;
        ChatRecord rec;
        rec.kind = ChatKind::direct;
        rec.created_by = req.sender;
        rec.created_at = req.ts;
        rec.members = {req.sender, req.to_user};
        st.chats.emplace(chat_id, std::move(rec));
        st.dirty_chats.insert(chat_id);
        txn.put(RocksStore::kPairs, pk, Encoder().u64be(chat_id).take());
        st.pairs.emplace(pk, chat_id);
        txn.put_user_chat(req.sender, chat_id, UserChatRecord{ChatKind::direct, req.to_user});
        txn.put_user_chat(req.to_user, chat_id, UserChatRecord{ChatKind::direct, req.sender});
      }
    }
    chat = txn.load_chat(chat_id);
    if (!chat || chat->deleted)
      return Error{Errc::not_found, fmt::format("no such chat: {}", chat_id)};
    if (chat->kind == ChatKind::direct) {
      if (std::find(chat->members.begin(), chat->members.end(), req.sender) == chat->members.end())
        return Error{Errc::forbidden, "not a member of this chat"};
    } else if (chat->large) {
      auto m = txn.get_member(chat_id, req.sender);
      if (!m || m->left_seq) return Error{Errc::forbidden, "not a member of this chat"};
    } else if (!txn.active_members(chat_id).contains(req.sender)) {
      return Error{Errc::forbidden, "not a member of this chat"};
    }

    AppendResult r;
    Message& m = r.message;
    m.chat_id = chat_id;
    m.seq = ++chat->last_seq;  // the record is not rewritten for this (apply_last_message)
    m.message_id = req.message_id;
    m.ts = req.ts;
    m.sender = req.sender;
    if (chat->kind == ChatKind::direct)
      for (const auto& member : chat->members)
        if (member != req.sender) m.to = member;
    m.kind = req.kind;
    m.body = std::move(req.body);
    m.client_msg_id = req.client_msg_id;
    txn.put(RocksStore::kMessages, message_key(chat_id, m.seq), encode(m));

    chat->last_ts = m.ts;
    if (rules::fan_out_on_read(chat->kind, chat->large)) {
      r.broadcast = true;
    } else if (chat->kind == ChatKind::direct) {
      for (const auto& member : chat->members)
        r.deliveries.push_back(txn.log(member, chat_id, m.seq));
    } else {
      for (const auto& [member, rec] : txn.active_members(chat_id))
        r.deliveries.push_back(txn.log(member, chat_id, m.seq));
    }
    r.sender_pts = rules::sender_pts(r.deliveries, req.sender);
    txn.own_message(req.sender, chat_id, m.seq);
    // References: keep the objects from the sweep, let the chat's members read them, and
    // let delete_user find them under the sender.
    for (const auto& rec : media) {
      auto ref = media_ref_key(rec.id, req.sender, chat_id);
      if (txn.get(RocksStore::kMedia, ref)) continue;  // referred to in this chat already
      txn.put(RocksStore::kMedia, std::move(ref), "");
      auto pending = media_pending_key(rec.uploaded_at, rec.id);
      if (txn.get(RocksStore::kMedia, pending)) txn.del(RocksStore::kMedia, std::move(pending));
      txn.put(RocksStore::kMedia, media_user_key(req.sender, rec.id), "");
    }
    txn.put(RocksStore::kIdem, ikey, encode(IdemRecord{chat_id, m.seq, r.sender_pts}));
    return r;
  }
};

void RocksStore::append_message(AppendRequest req, Callback<AppendResult> done) {
  auto op = std::make_unique<AppendOp>();
  op->req = std::move(req);
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

uint64_t RocksStore::read_pts(const rocksdb::Snapshot* snap, const UserId& user) {
  return last_pts(*db_, cf_[kUpdates], cf_[kMeta], snap, user);
}

void RocksStore::current_pts(UserId user, Callback<uint64_t> done) {
  auto view = read_view();
  done(read_pts(view.get(), user));
}

std::optional<Message> RocksStore::read_message(const rocksdb::Snapshot* snap, ChatId chat,
                                                uint64_t seq) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  if (!db_->Get(ro, cf_[kMessages], message_key(chat, seq), &v).ok()) return std::nullopt;
  return decode_message(chat, seq, v);
}

std::vector<Message> RocksStore::read_range(const rocksdb::Snapshot* snap, ChatId chat,
                                            uint64_t first, uint64_t last) {
  std::vector<Message> out;
  if (first > last) return out;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string upper = message_key(chat, last + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kMessages]));
  for (it->Seek(message_key(chat, first)); it->Valid(); it->Next()) {
    auto key = it->key().ToStringView();
    if (auto m = decode_message(chat, decode_u64be(key), it->value().ToStringView()))
      out.push_back(std::move(*m));
  }
  return out;
}

void RocksStore::read_updates(UserId user, uint64_t after_pts, uint32_t limit,
                              Callback<UpdatesPage> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  UpdatesPage page;
  uint64_t current = read_pts(snap, user);
  page.pts = after_pts;
  if (after_pts > current) {
    page.limited = true;  // a cursor from the future: this store does not know it
  } else if (after_pts < current) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::string upper = update_key(user, current + 1);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kUpdates]));
    it->Seek(update_key(user, after_pts + 1));
    if (!it->Valid() || decode_u64be(it->key().ToStringView()) != after_pts + 1) {
      page.limited = true;  // trimmed away
    } else {
      for (; it->Valid() && page.updates.size() < limit; it->Next()) {
        uint64_t pts = decode_u64be(it->key().ToStringView());
        auto rec = decode_update(it->value().ToStringView());
        if (!rec) continue;
        if (rec->kind == UpdateKind::message) {
          auto msg = read_message(snap, rec->chat_id, rec->seq);
          if (!msg) continue;
          page.updates.push_back(Update{pts, rec->kind, std::move(*msg), {}});
        } else {
          page.updates.push_back(
              Update{pts,
                     rec->kind,
                     {},
                     Receipt{rec->chat_id, std::move(rec->by), rec->kind, rec->seq, rec->ts}});
        }
        page.pts = pts;
      }
      page.has_more = page.pts < current;
    }
  }
  done(std::move(page));
}

Result<RocksStore::Visible> RocksStore::visible_range(const rocksdb::Snapshot* snap, ChatId chat,
                                                      const UserId& user) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  if (!db_->Get(ro, cf_[kChats], chat_key(chat), &v).ok())
    return Error{Errc::not_found, fmt::format("no such chat: {}", chat)};
  auto rec = decode_chat(v);
  if (!rec) return Error{Errc::internal, "corrupt chat record"};
  apply_last_message(*db_, cf_[kMessages], snap, chat, *rec);
  if (rec->kind == ChatKind::direct) {
    if (std::find(rec->members.begin(), rec->members.end(), user) == rec->members.end())
      return Error{Errc::forbidden, "not a member of this chat"};
    return rules::direct_visible(rec->last_seq);
  }
  if (!db_->Get(ro, cf_[kMembers], member_key(chat, user), &v).ok())
    return Error{Errc::forbidden, "not a member of this chat"};
  auto m = decode_member(user, v);
  if (!m) return Error{Errc::internal, "corrupt member record"};
  return rules::group_visible(rec->last_seq, rec->full_history, *m);
}

std::pair<uint64_t, uint64_t> RocksStore::read_positions(const rocksdb::Snapshot* snap,
                                                         const UserId& user, ChatId chat) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  if (!db_->Get(ro, cf_[kUserChats], user_chat_key(user, chat), &v).ok()) return {0, 0};
  auto uc = decode_user_chat(v);
  if (!uc) return {0, 0};
  return {uc->read_seq, uc->delivered_seq};
}

Result<ChatList> RocksStore::list_chats_at(const rocksdb::Snapshot* snap, const UserId& user,
                                           uint32_t limit, ChatListCursor after) {
  ChatList list;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string prefix = user_prefix(user);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kUserChats]));
  std::string v;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto uc = decode_user_chat(it->value().ToStringView());
    if (!uc) continue;
    ChatSummary c;
    c.chat_id = decode_u64be(it->key().ToStringView());
    c.kind = uc->kind;
    c.peer = uc->peer;
    if (!db_->Get(ro, cf_[kChats], chat_key(c.chat_id), &v).ok()) continue;
    auto rec = decode_chat(v);
    if (!rec) continue;
    apply_last_message(*db_, cf_[kMessages], snap, c.chat_id, *rec);
    c.name = rec->name;
    c.large = rec->large;
    c.last_seq = rec->last_seq;
    c.last_ts = rec->last_ts;
    if (rec->kind == ChatKind::group) {
      auto vis = visible_range(snap, c.chat_id, user);
      if (!vis) continue;
      c.last_seq = vis->last;
      c.member = vis->member;
    }
    c.read_seq = uc->read_seq;
    c.delivered_seq = uc->delivered_seq;
    // A chat one has left or was removed from is not unread: it counts in no badge
    // (docs/PROTOCOL.md §3.7).
    c.unread = rules::unread_count(c.member, c.last_seq, c.read_seq);
    list.chats.push_back(std::move(c));
  }
  rules::count_unread(list);
  rules::page_chat_list(list, after, limit);
  for (auto& c : list.chats) {
    if (c.last_seq > 0) c.last_message = read_message(snap, c.chat_id, c.last_seq);
    // The other members' positions: the peer, or the active members of a small group.
    if (c.kind == ChatKind::direct) {
      auto [r, d] = read_positions(snap, c.peer, c.chat_id);
      c.reads.push_back(Member{c.peer, Role::member, 0, 0, r, d});
    } else if (!c.large && c.member) {
      std::string mprefix = chat_prefix(c.chat_id);
      std::unique_ptr<rocksdb::Iterator> mit(db_->NewIterator(ro, cf_[kMembers]));
      for (mit->Seek(mprefix); mit->Valid() && mit->key().starts_with(mprefix); mit->Next()) {
        Decoder d(mit->key().ToStringView().substr(8));
        auto m = decode_member(d.key_str(), mit->value().ToStringView());
        if (!m || m->left_seq || m->user == user) continue;
        std::tie(m->read_seq, m->delivered_seq) = read_positions(snap, m->user, c.chat_id);
        c.reads.push_back(std::move(*m));
      }
    }
  }
  list.pts = read_pts(snap, user);
  return list;
}

void RocksStore::list_chats(UserId user, uint32_t limit, ChatListCursor after,
                            Callback<ChatList> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  auto r = list_chats_at(snap, user, limit, after);
  done(std::move(r));
}

void RocksStore::snapshot(UserId user, uint32_t max_chats, uint32_t messages_per_chat,
                          Callback<Snapshot> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  auto list = list_chats_at(snap, user, max_chats, {});
  Snapshot s;
  if (list) {
    s.pts = list->pts;
    for (auto& c : list->chats) {
      auto vis = visible_range(snap, c.chat_id, user);
      if (!vis) continue;
      ChatWindow w;
      const uint64_t first = rules::window_start(vis.value(), messages_per_chat, w);
      w.messages = read_range(snap, c.chat_id, first, vis->last);
      w.chat = std::move(c);
      s.chats.push_back(std::move(w));
    }
  }
  if (!list) return done(list.error());
  done(std::move(s));
}

void RocksStore::history(HistoryQuery q, Callback<HistoryPage> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  HistoryPage page;
  std::string v;
  if (q.chat_id == 0) {
    if (!db_->Get(ro, cf_[kPairs], pair_key(q.user, q.with), &v).ok()) {
      if (!db_->Get(ro, cf_[kUsers], user_key(q.with), &v).ok())
        return done(Error{Errc::not_found, fmt::format("no such user: {}", q.with)});
      return done(std::move(page));  // no chat yet: empty history
    }
    q.chat_id = decode_u64be(v);
  }
  auto vis = visible_range(snap, q.chat_id, q.user);
  if (!vis) return done(vis.error());
  page.chat_id = q.chat_id;
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
    page.messages = read_range(snap, q.chat_id, first, last);
  else
    page.has_more = false;
  done(std::move(page));
}

}  // namespace parley::store::rocks
