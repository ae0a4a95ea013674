#include "store/rocksdb/rocks_write_txn.h"

#include <map>
#include <stdexcept>

namespace parley::store::rocks {

std::vector<std::pair<std::string, std::string>> WriteTxn::scan(RocksStore::Cf cf,
                                                                const std::string& from,
                                                                const std::string& to,
                                                                size_t limit) {
  std::map<std::string_view, const std::optional<std::string>*> mine;
  for (const auto& [k, v] : overlay_[cf])
    if (k >= from && (to.empty() || k < to)) mine.emplace(k, &v);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(to);
  if (!to.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(s_.db_->NewIterator(ro, s_.cf_[cf]));
  std::vector<std::pair<std::string, std::string>> out;
  auto o = mine.begin();
  it->Seek(from);
  while (out.size() < limit) {
    bool from_db;
    if (it->Valid() && o != mine.end()) {
      int c = it->key().ToStringView().compare(o->first);
      from_db = c < 0;
      if (c == 0) it->Next();  // the batch's own write wins
    } else if (it->Valid()) {
      from_db = true;
    } else if (o != mine.end()) {
      from_db = false;
    } else {
      break;
    }
    if (from_db) {
      out.emplace_back(it->key().ToString(), it->value().ToString());
      it->Next();
    } else {
      if (*o->second) out.emplace_back(std::string(o->first), **o->second);
      ++o;
    }
  }
  if (!it->status().ok()) throw std::runtime_error(it->status().ToString());
  return out;
}

std::unordered_map<UserId, Member>& WriteTxn::active_members(ChatId chat) {
  auto& cache = state().group_members;
  auto it = cache.find(chat);
  if (it != cache.end()) return it->second;
  auto& out = cache[chat];
  std::string prefix = chat_prefix(chat);
  std::unique_ptr<rocksdb::Iterator> iter(
      s_.db_->NewIterator(rocksdb::ReadOptions(), s_.cf_[RocksStore::kMembers]));
  for (iter->Seek(prefix); iter->Valid() && iter->key().starts_with(prefix); iter->Next()) {
    Decoder d(iter->key().ToStringView().substr(8));
    std::string user = d.key_str();
    auto m = decode_member(user, iter->value().ToStringView());
    if (m && m->left_seq == 0) out.emplace(user, std::move(*m));
  }
  return out;
}

void WriteTxn::put_member(ChatId chat, const Member& m) {
  put(RocksStore::kMembers, member_key(chat, m.user), encode(m));
  auto& cache = state().group_members;
  auto it = cache.find(chat);
  if (it == cache.end()) return;
  if (m.left_seq == 0)
    it->second[m.user] = m;
  else
    it->second.erase(m.user);
}

Delivery WriteTxn::log(const UserId& user, const UpdateRecord& rec) {
  uint64_t pts = next_pts(user);
  put_blind(RocksStore::kUpdates, update_key(user, pts), encode(rec));
  // Trim in steps of 1024 so that the log holds at least `retention` entries.
  uint64_t retention = s_.sync_cfg_.update_log_retention;
  if (pts > retention && pts % 1024 == 0)
    delete_range(RocksStore::kUpdates, update_key(user, 0), update_key(user, pts - retention));
  return Delivery{user, pts};
}

void WriteTxn::join_user_chat(const UserId& user, ChatId chat, ChatKind kind, const UserId& peer,
                              uint64_t seq) {
  UserChatRecord rec = get_user_chat(user, chat).value_or(UserChatRecord{});
  rec.kind = kind;
  rec.peer = peer;
  set_positions(rec, rules::joined_at(positions(rec), seq));
  put_user_chat(user, chat, rec);
}

void WriteTxn::own_message(const UserId& user, ChatId chat, uint64_t seq) {
  auto rec = get_user_chat(user, chat);
  if (!rec) return;
  auto after = rules::after_own_message(positions(*rec), seq);
  if (!after) return;
  set_positions(*rec, *after);
  put_user_chat(user, chat, *rec);
}

ChatRecord* WriteTxn::load_chat(ChatId id) {
  auto& st = state();
  auto it = st.chats.find(id);
  if (it != st.chats.end()) return &it->second;
  auto raw = get(RocksStore::kChats, chat_key(id));
  if (!raw) return nullptr;
  auto rec = decode_chat(*raw);
  if (!rec) throw std::runtime_error(fmt::format("corrupt chat record {}", id));
  // Loaded before this batch wrote anything of the chat: the database has its messages.
  apply_last_message(*s_.db_, s_.cf_[RocksStore::kMessages], nullptr, id, *rec);
  return &st.chats.emplace(id, std::move(*rec)).first->second;
}

uint64_t WriteTxn::next_pts(const UserId& user) {
  auto& st = state();
  auto it = st.pts.find(user);
  if (it == st.pts.end()) {
    uint64_t cur =
        last_pts(*s_.db_, s_.cf_[RocksStore::kUpdates], s_.cf_[RocksStore::kMeta], nullptr, user);
    it = st.pts.emplace(user, cur).first;
  }
  return ++it->second;
}

rocksdb::Status WriteTxn::commit(const rocksdb::WriteOptions& wo) {
  auto& st = state();
  for (ChatId id : st.dirty_chats)
    batch_.Put(s_.cf_[RocksStore::kChats], chat_key(id), encode(st.chats[id]));
  if (st.next_chat_id_dirty)
    batch_.Put(s_.cf_[RocksStore::kMeta], kNextChatIdKey, Encoder().u64be(st.next_chat_id).take());
  st.dirty_chats.clear();
  st.next_chat_id_dirty = false;
  if (batch_.Count() == 0) return rocksdb::Status::OK();
  return s_.db_->Write(wo, &batch_);
}

}  // namespace parley::store::rocks
