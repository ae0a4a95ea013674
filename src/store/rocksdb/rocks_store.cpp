#include "store/rocksdb/rocks_store.h"

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <unordered_set>

#include "common/clock.h"
#include "common/post_batch.h"
#include "store/rocksdb/codec.h"
#include "store/rules/groups.h"
#include "store/rules/messages.h"
#include "store/rules/push.h"
#include "store/rules/read_state.h"

namespace parley::store::rocks {
namespace {

// Keys and values of each family: docs/ARCHITECTURE.md ("Storage layout"); `media` and
// `push` hold several kinds of rows each, described with their keys in codec.h.
const char* const kCfNames[] = {"default", "users",    "devices",    "tokens",  "chats",
                                "pairs",   "messages", "user_chats", "updates", "idem",
                                "members", "media",    "push"};
static_assert(std::size(kCfNames) == RocksStore::kCfCount);

const std::string kNextChatIdKey = "next_chat_id";
constexpr size_t kCacheLimit = 1 << 20;  // entries per writer cache before it is dropped

Error unavailable() { return Error{Errc::unavailable, "store is closed"}; }

// The last row under `prefix` in `cf` at `snap` (nullptr: the latest state), if any.
std::optional<std::pair<std::string, std::string>> last_under(rocksdb::DB& db,
                                                              rocksdb::ColumnFamilyHandle* cf,
                                                              const rocksdb::Snapshot* snap,
                                                              const std::string& prefix) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string upper = prefix_end(prefix);
  rocksdb::Slice lower_slice(prefix), upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  it->SeekToLast();
  if (!it->Valid()) return std::nullopt;
  return std::make_pair(it->key().ToString(), it->value().ToString());
}

// Counters are not written per message: a chat's last seq and ts come from its last message,
// a user's pts from the last entry of the update log (the record or meta row written before
// this rule, if higher, still counts). That keeps two to three keys per message out of every
// commit.
void apply_last_message(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* messages,
                        const rocksdb::Snapshot* snap, ChatId chat, ChatRecord& rec) {
  auto last = last_under(db, messages, snap, Encoder().u64be(chat).take());
  if (!last) return;
  uint64_t seq = decode_u64be(std::string_view(last->first).substr(8));
  if (seq <= rec.last_seq) return;
  rec.last_seq = seq;
  if (auto m = decode_message(chat, seq, last->second)) rec.last_ts = std::max(rec.last_ts, m->ts);
}

uint64_t last_pts(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* updates,
                  rocksdb::ColumnFamilyHandle* meta, const rocksdb::Snapshot* snap,
                  const UserId& user) {
  uint64_t pts = 0;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  if (db.Get(ro, meta, user_pts_key(user), &v).ok()) pts = decode_u64be(v);
  std::string prefix = user_prefix(user);
  if (auto last = last_under(db, updates, snap, prefix))
    pts = std::max(pts, decode_u64be(std::string_view(last->first).substr(prefix.size())));
  return pts;
}

// Keys of the append-heavy families end in an 8-byte big-endian number after their owner
// (messages: chat | seq; updates: user | pts; user_chats: user | chat), and each owner's
// keys arrive in increasing order or repeat: with the owner as a hint prefix, a memtable
// insert starts from that owner's last position instead of searching the whole skiplist
// from the top (most of the writer's time otherwise).
//
// A key whose number is 0 is outside the domain: update-log trimming deletes the range
// [user | 0, user | floor), and RocksDB 7.8 keeps one hint table for a memtable's point and
// range-tombstone skiplists, so a range tombstone that took a hint would hand the next
// point insert a position in the wrong skiplist (an assertion in InlineSkipList::Insert).
// No real key ends in 0: seq and pts start at 1, chat ids at 1.
class OwnerPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "parley.OwnerPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    if (key.size() < 8) return false;
    const char* n = key.data() + key.size() - 8;
    for (int i = 0; i < 8; ++i)
      if (n[i] != 0) return true;
    return false;
  }
};

rocksdb::ColumnFamilyOptions family_options(RocksStore::Cf cf) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions table;
  // Bloom filters: most point reads on the write path miss (a new client_msg_id, a pair
  // with no chat yet), and a filter answers them without reading SST blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  static std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(64 << 20);
  table.block_cache = cache;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  o.compression = rocksdb::kLZ4Compression;
  bool hot = cf == RocksStore::kMessages || cf == RocksStore::kUpdates || cf == RocksStore::kIdem;
  // Smaller memtables for the hot families keep skiplist inserts shallow; the others are small.
  o.write_buffer_size = hot ? 32 << 20 : 4 << 20;
  if (cf == RocksStore::kMessages || cf == RocksStore::kUpdates || cf == RocksStore::kUserChats)
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<OwnerPrefix>();
  o.max_write_buffer_number = 3;
  if (cf == RocksStore::kIdem || cf == RocksStore::kPairs) {
    // Every send looks its idempotency key up and almost always misses: a memtable bloom
    // filter answers that without walking the skiplist.
    o.memtable_whole_key_filtering = true;
    o.memtable_prefix_bloom_size_ratio = 0.05;
  }
  o.level_compaction_dynamic_level_bytes = true;
  return o;
}

}  // namespace

// Writer-owned counters and caches. Only the writer thread touches them. They are an
// overlay of the database: on a failed commit they are dropped and reloaded.
struct RocksStore::WriterState {
  uint64_t next_chat_id = 1;
  std::unordered_map<ChatId, ChatRecord> chats;
  std::unordered_map<UserId, uint64_t> pts;
  std::unordered_map<std::string, ChatId> pairs;
  // Active members of small groups (large groups are never loaded whole).
  std::unordered_map<ChatId, std::unordered_map<UserId, Member>> group_members;
  // Dirty in the current batch: written once at the end of it.
  std::unordered_set<ChatId> dirty_chats;
  bool next_chat_id_dirty = false;

  void drop_caches() {
    chats.clear();
    pts.clear();
    pairs.clear();
    group_members.clear();
  }
};

// A user's chat row's positions, as the read-state rules see them.
inline rules::ReadPositions positions(const UserChatRecord& r) {
  return rules::ReadPositions{r.read_seq, r.delivered_seq};
}
inline void set_positions(UserChatRecord& r, const rules::ReadPositions& p) {
  r.read_seq = p.read_seq;
  r.delivered_seq = p.delivered_seq;
}

// One group commit in the making: a RocksDB WriteBatch plus reads that see the batch's own
// earlier writes (so two ops in one batch behave as if committed one after the other).
class WriteTxn {
 public:
  explicit WriteTxn(RocksStore& s) : s_(s) {}

  std::optional<std::string> get(RocksStore::Cf cf, const std::string& key) {
    auto it = overlay_[cf].find(key);
    if (it != overlay_[cf].end()) return it->second;
    std::string value;
    auto st = s_.db_->Get(rocksdb::ReadOptions(), s_.cf_[cf], key, &value);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw std::runtime_error(st.ToString());
    return value;
  }
  void put(RocksStore::Cf cf, std::string key, std::string value) {
    batch_.Put(s_.cf_[cf], key, value);
    overlay_[cf][std::move(key)] = std::move(value);
  }
  // A write that nothing in the batch reads back.
  void put_blind(RocksStore::Cf cf, const std::string& key, const std::string& value) {
    batch_.Put(s_.cf_[cf], key, value);
  }
  void del(RocksStore::Cf cf, std::string key) {
    batch_.Delete(s_.cf_[cf], key);
    overlay_[cf][std::move(key)] = std::nullopt;
  }
  void delete_range(RocksStore::Cf cf, const std::string& from, const std::string& to) {
    batch_.DeleteRange(s_.cf_[cf], from, to);
  }

  // At most `limit` rows of `cf` in [from, to) in key order, as this batch sees them: the
  // database merged with the batch's own put() and del() (as they stand when called; later
  // writes do not change the result; put_blind and delete_range are not seen). An empty
  // `to` is no upper bound.
  std::vector<std::pair<std::string, std::string>> scan(RocksStore::Cf cf, const std::string& from,
                                                        const std::string& to,
                                                        size_t limit = SIZE_MAX) {
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
  // Whether a row of `cf` starts with `prefix`, as this batch sees it.
  bool any(RocksStore::Cf cf, const std::string& prefix) {
    return !scan(cf, prefix, prefix_end(prefix), 1).empty();
  }

  RocksStore::WriterState& state() { return *s_.ws_; }

  std::optional<Member> get_member(ChatId chat, const UserId& user) {
    auto raw = get(RocksStore::kMembers, member_key(chat, user));
    if (!raw) return std::nullopt;
    return decode_member(user, *raw);
  }

  // Active members of a small group, loaded once into the writer cache. Every member write
  // goes through put_member, which keeps a loaded cache current.
  std::unordered_map<UserId, Member>& active_members(ChatId chat) {
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

  rocksdb::Iterator* iterator(RocksStore::Cf cf) {
    return s_.db_->NewIterator(rocksdb::ReadOptions(), s_.cf_[cf]);
  }

  void put_member(ChatId chat, const Member& m) {
    put(RocksStore::kMembers, member_key(chat, m.user), encode(m));
    auto& cache = state().group_members;
    auto it = cache.find(chat);
    if (it == cache.end()) return;
    if (m.left_seq == 0)
      it->second[m.user] = m;
    else
      it->second.erase(m.user);
  }

  // Appends a message reference to the user's update log; returns its pts.
  Delivery log(const UserId& user, ChatId chat, uint64_t seq) {
    return log(user, UpdateRecord{UpdateKind::message, chat, seq, {}, 0});
  }
  Delivery log(const UserId& user, const UpdateRecord& rec) {
    uint64_t pts = next_pts(user);
    put_blind(RocksStore::kUpdates, update_key(user, pts), encode(rec));
    // Trim in steps of 1024 so that the log holds at least `retention` entries.
    uint64_t retention = s_.sync_cfg_.update_log_retention;
    if (pts > retention && pts % 1024 == 0)
      delete_range(RocksStore::kUpdates, update_key(user, 0), update_key(user, pts - retention));
    return Delivery{user, pts};
  }

  std::optional<UserChatRecord> get_user_chat(const UserId& user, ChatId chat) {
    auto raw = get(RocksStore::kUserChats, user_chat_key(user, chat));
    if (!raw) return std::nullopt;
    return decode_user_chat(*raw);
  }
  void put_user_chat(const UserId& user, ChatId chat, const UserChatRecord& rec) {
    put(RocksStore::kUserChats, user_chat_key(user, chat), encode(rec));
  }
  // A user (re)joins a chat at `seq` (rules::joined_at).
  void join_user_chat(const UserId& user, ChatId chat, ChatKind kind, const UserId& peer,
                      uint64_t seq) {
    UserChatRecord rec = get_user_chat(user, chat).value_or(UserChatRecord{});
    rec.kind = kind;
    rec.peer = peer;
    set_positions(rec, rules::joined_at(positions(rec), seq));
    put_user_chat(user, chat, rec);
  }
  // The user's own message at `seq` (rules::after_own_message).
  void own_message(const UserId& user, ChatId chat, uint64_t seq) {
    auto rec = get_user_chat(user, chat);
    if (!rec) return;
    auto after = rules::after_own_message(positions(*rec), seq);
    if (!after) return;
    set_positions(*rec, *after);
    put_user_chat(user, chat, *rec);
  }

  // Number of groups the user is an active member of.
  uint64_t group_count(const UserId& user) {
    auto raw = get(RocksStore::kMeta, group_count_key(user));
    return raw ? decode_u64be(*raw) : 0;
  }
  void set_group_count(const UserId& user, uint64_t n) {
    put(RocksStore::kMeta, group_count_key(user), Encoder().u64be(n).take());
  }
  const SyncConfig& sync_config() const { return s_.sync_cfg_; }

  ChatRecord* load_chat(ChatId id) {
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

  uint64_t next_pts(const UserId& user) {
    auto& st = state();
    auto it = st.pts.find(user);
    if (it == st.pts.end()) {
      uint64_t cur =
          last_pts(*s_.db_, s_.cf_[RocksStore::kUpdates], s_.cf_[RocksStore::kMeta], nullptr, user);
      it = st.pts.emplace(user, cur).first;
    }
    return ++it->second;
  }

  // Writes the chat records whose metadata changed once per batch, then the batch itself.
  rocksdb::Status commit(const rocksdb::WriteOptions& wo) {
    auto& st = state();
    for (ChatId id : st.dirty_chats)
      batch_.Put(s_.cf_[RocksStore::kChats], chat_key(id), encode(st.chats[id]));
    if (st.next_chat_id_dirty)
      batch_.Put(s_.cf_[RocksStore::kMeta], kNextChatIdKey,
                 Encoder().u64be(st.next_chat_id).take());
    st.dirty_chats.clear();
    st.next_chat_id_dirty = false;
    if (batch_.Count() == 0) return rocksdb::Status::OK();
    return s_.db_->Write(wo, &batch_);
  }

 private:
  RocksStore& s_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<std::string, std::optional<std::string>> overlay_[RocksStore::kCfCount];
};

namespace {

// Account writes: a function over the transaction and a completion.
struct FnOp final : RocksStore::Op {
  std::function<Status(WriteTxn&)> fn;
  Callback<Unit> done;
  std::optional<Status> result;

  void apply(WriteTxn& txn) override { result = fn(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }
};

// Writes with a value: a function over the transaction and a completion.
template <class T>
struct ValueOp final : RocksStore::Op {
  std::function<Result<T>(WriteTxn&)> fn;
  Callback<T> done;
  std::optional<Result<T>> result;

  void apply(WriteTxn& txn) override { result = fn(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }
};

// Whether the user exists and is not deleted (a deleted user keeps its row: the name stays
// taken).
bool live_user(WriteTxn& txn, const UserId& user) {
  auto raw = txn.get(RocksStore::kUsers, user_key(user));
  if (!raw) return false;
  auto row = decode_user(user, *raw);
  return row && !row->deleted;
}

// Ids that fit in a key (key_str keeps 255 bytes).
bool valid_media_id(std::string_view id) { return !id.empty() && id.size() <= 255; }

Error no_media(std::string_view id) {
  return Error{Errc::not_found, fmt::format("no such media {}", id)};
}

// Push rows (codec.h). A job's row, its due and age index rows and the job counter change
// together, in write_push_job; every job write goes through it.

void add_to_counter(WriteTxn& txn, const std::string& key, int64_t delta) {
  uint64_t n = 0;
  if (auto raw = txn.get(RocksStore::kPush, key)) n = decode_u64be(*raw);
  if (delta < 0)
    n -= std::min(n, static_cast<uint64_t>(-delta));
  else
    n += static_cast<uint64_t>(delta);
  txn.put(RocksStore::kPush, key, Encoder().u64be(n).take());
}

// Replaces the job `prev` (absent: none) with `next` (absent: removes it). Both, when given,
// are the same (user, device, chat).
void write_push_job(WriteTxn& txn, const PushJob* prev, const PushJob* next) {
  const PushJob& j = next ? *next : *prev;
  constexpr auto cf = RocksStore::kPush;
  if (prev && (!next || prev->due_at != next->due_at))
    txn.del(cf, push_due_key(prev->due_at, j.user, j.device_id, j.chat_id));
  if (next && (!prev || prev->due_at != next->due_at))
    txn.put(cf, push_due_key(next->due_at, j.user, j.device_id, j.chat_id), "");
  if (prev && (!next || prev->created_at != next->created_at))
    txn.del(cf, push_created_key(prev->created_at, j.user, j.device_id, j.chat_id));
  if (next && (!prev || prev->created_at != next->created_at))
    txn.put(cf, push_created_key(next->created_at, j.user, j.device_id, j.chat_id), "");
  if (next)
    txn.put(cf, push_job_key(j.user, j.device_id, j.chat_id), encode(*next));
  else
    txn.del(cf, push_job_key(j.user, j.device_id, j.chat_id));
  if (!prev != !next) add_to_counter(txn, push_job_count_key(), next ? 1 : -1);
}

// The job of (user, device, chat) as this batch sees it. An unreadable row is removed (its
// index rows cannot be found from it; claims skip and remove such leftovers).
std::optional<PushJob> load_push_job(WriteTxn& txn, const UserId& user, const std::string& device,
                                     ChatId chat) {
  auto key = push_job_key(user, device, chat);
  auto raw = txn.get(RocksStore::kPush, key);
  if (!raw) return std::nullopt;
  auto job = decode_push_job(user, device, chat, *raw);
  if (!job) {
    spdlog::warn("store: dropping an unreadable push job of {}/{} in chat {}", user, device, chat);
    txn.del(RocksStore::kPush, std::move(key));
    add_to_counter(txn, push_job_count_key(), -1);
  }
  return job;
}

// Removes every job whose key starts with `prefix` (a user's or a device's).
void drop_push_jobs(WriteTxn& txn, const std::string& prefix) {
  for (auto& [key, value] : txn.scan(RocksStore::kPush, prefix, prefix_end(prefix))) {
    auto k = decode_push_job_key(key);
    auto job = k ? decode_push_job(k->user, k->device, k->chat, value) : std::nullopt;
    if (job) {
      write_push_job(txn, &*job, nullptr);
    } else {
      txn.del(RocksStore::kPush, std::move(key));
      add_to_counter(txn, push_job_count_key(), -1);
    }
  }
}

// The device's target and its queued jobs go (logout, revocation, a dead token).
void drop_push_device(WriteTxn& txn, const UserId& user, const std::string& device) {
  auto key = push_target_key(user, device);
  if (txn.get(RocksStore::kPush, key)) txn.del(RocksStore::kPush, std::move(key));
  drop_push_jobs(txn, push_job_prefix(user, device));
}

// Everything push keeps for the user: targets, jobs and mutes (delete_user).
void drop_push_user(WriteTxn& txn, const UserId& user) {
  for (const auto& prefix : {push_target_prefix(user), push_mute_prefix(user)})
    for (auto& [key, value] : txn.scan(RocksStore::kPush, prefix, prefix_end(prefix)))
      txn.del(RocksStore::kPush, std::move(key));
  drop_push_jobs(txn, push_job_prefix(user));
}

}  // namespace

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

struct ReceiptOp final : RocksStore::Op {
  ReceiptRequest req;
  Callback<ReceiptResult> done;
  std::optional<Result<ReceiptResult>> result;

  void apply(WriteTxn& txn) override { result = run(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }

  Result<ReceiptResult> run(WriteTxn& txn) {
    auto& st = txn.state();
    ChatId chat_id = req.chat_id;
    if (chat_id == 0) {
      std::string pk = pair_key(req.user, req.with);
      auto pit = st.pairs.find(pk);
      if (pit != st.pairs.end()) {
        chat_id = pit->second;
      } else if (auto raw = txn.get(RocksStore::kPairs, pk)) {
        chat_id = decode_u64be(*raw);
      } else {
        return Error{Errc::not_found, fmt::format("no chat with {}", req.with)};
      }
    }
    ChatRecord* chat = txn.load_chat(chat_id);
    if (!chat) return Error{Errc::not_found, fmt::format("no such chat: {}", chat_id)};

    // What the user may read, and whether it is still an active member.
    rules::Visible visible = rules::direct_visible(chat->last_seq);
    if (chat->kind == ChatKind::direct) {
      if (std::find(chat->members.begin(), chat->members.end(), req.user) == chat->members.end())
        return Error{Errc::forbidden, "not a member of this chat"};
    } else {
      auto m = txn.get_member(chat_id, req.user);
      if (!m) return Error{Errc::forbidden, "not a member of this chat"};
      visible = rules::group_visible(chat->last_seq, chat->full_history, *m);
    }
    auto row = txn.get_user_chat(req.user, chat_id);
    if (!row) return Error{Errc::forbidden, "not a member of this chat"};

    auto decision = rules::decide_receipt(req.kind, req.seq, visible, positions(*row));
    if (decision.advanced) {
      set_positions(*row, decision.positions);
      txn.put_user_chat(req.user, chat_id, *row);
    }
    ReceiptResult r;
    r.receipt = Receipt{chat_id, req.user, req.kind, decision.seq, req.ts};
    r.advanced = decision.advanced;
    r.unread = decision.unread;

    auto audience = rules::receipt_audience(req.kind, decision.advanced, visible.member, chat->kind,
                                            chat->large);
    std::vector<UserId> members;
    if (audience.other_members) {
      if (chat->kind == ChatKind::direct)
        members = chat->members;
      else
        for (const auto& [member, m] : txn.active_members(chat_id)) members.push_back(member);
    }
    UpdateRecord rec{req.kind, chat_id, decision.seq, req.user, req.ts};
    for (const auto& u : rules::receipt_recipients(audience, req.user, members))
      r.deliveries.push_back(txn.log(u, rec));
    if (audience.own_log) r.user_pts = r.deliveries.front().pts;
    r.broadcast = audience.broadcast;
    return r;
  }
};

Result<std::unique_ptr<RocksStore>> RocksStore::open(const std::string& dir,
                                                     const StoreConfig& store_cfg,
                                                     const SyncConfig& sync_cfg) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.max_open_files = 512;  // leave descriptors for connections
  // Reuse old WAL files instead of growing new ones: a sync of a file overwritten in place
  // is an fdatasync without an inode (size) update, so on ext4 it does not wait for a
  // journal commit that also carries the data of SST files being flushed. Halved the p99
  // of acks at 20,000 msg/s (docs/BENCHMARKS.md). Recovery still stops at the first record
  // of an older log's life (RocksDB's recyclable record format carries the log number).
  options.recycle_log_file_num = 4;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (size_t cf = 0; cf < kCfCount; ++cf)
    descs.emplace_back(kCfNames[cf], family_options(static_cast<Cf>(cf)));

  std::unique_ptr<RocksStore> s(new RocksStore());
  s->store_cfg_ = store_cfg;
  s->sync_cfg_ = sync_cfg;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(options, dir, descs, &s->cf_, &raw);
  if (!st.ok())
    return Error{Errc::unavailable, fmt::format("rocksdb open {}: {}", dir, st.ToString())};
  s->db_.reset(raw);
  s->ws_ = std::make_unique<WriterState>();
  std::string v;
  if (s->db_->Get(rocksdb::ReadOptions(), s->cf_[kMeta], kNextChatIdKey, &v).ok())
    s->ws_->next_chat_id = decode_u64be(v);
  s->view_ = s->take_snapshot();  // what recovery found is durable
  s->writer_ = std::thread([p = s.get()] { p->writer_loop(); });
  s->completer_ = std::thread([p = s.get()] { p->completion_loop(); });
  return s;
}

std::shared_ptr<const rocksdb::Snapshot> RocksStore::take_snapshot() {
  rocksdb::DB* db = db_.get();
  return std::shared_ptr<const rocksdb::Snapshot>(
      db->GetSnapshot(), [db](const rocksdb::Snapshot* snap) { db->ReleaseSnapshot(snap); });
}

std::shared_ptr<const rocksdb::Snapshot> RocksStore::read_view() {
  std::lock_guard lock(view_mu_);
  return view_;
}

RocksStore::DurableRead RocksStore::durable_read() {
  DurableRead r{read_view(), {}};
  r.options.snapshot = r.view.get();
  return r;
}

RocksStore::~RocksStore() { close(); }

void RocksStore::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // drains the queue, then ends the completer
  if (completer_.joinable()) completer_.join();
  {
    std::lock_guard lock(view_mu_);
    view_.reset();  // readers are gone by now: the last snapshot goes before the database
  }
  std::lock_guard lock(mu_);
  for (auto* h : cf_) db_->DestroyColumnFamilyHandle(h);
  cf_.clear();
  if (db_) db_->Close();
  db_.reset();
  closed_ = true;
}

void RocksStore::enqueue(std::unique_ptr<Op> op, const std::function<void()>& on_closed) {
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      queue_.push_back(std::move(op));
      if (queue_.size() == 1) cv_.notify_one();
      return;
    }
  }
  on_closed();
}

void RocksStore::writer_loop() {
  rocksdb::WriteOptions wo;
  // With fsync durability the completion thread syncs the WAL (completion_loop), so that
  // the writer applies the next batch while the disk works on this one.
  wo.sync = false;
  wo.disableWAL = store_cfg_.durability == Durability::none;
  std::vector<std::unique_ptr<Op>> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) {  // closing and drained
        lock.unlock();
        std::lock_guard wl(written_mu_);
        writer_done_ = true;
        written_cv_.notify_all();
        return;
      }
      while (!queue_.empty() && batch.size() < store_cfg_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool committed = false;
    try {
      WriteTxn txn(*this);
      for (auto& op : batch) op->apply(txn);
      auto st = txn.commit(wo);
      committed = st.ok();
      if (!committed)
        spdlog::error("store: commit of {} writes failed: {}", batch.size(), st.ToString());
    } catch (const std::exception& e) {
      spdlog::error("store: batch failed: {}", e.what());
    }
    if (!committed || ws_->chats.size() + ws_->pts.size() + ws_->pairs.size() > kCacheLimit)
      ws_->drop_caches();
    if (!committed) {
      ws_->dirty_chats.clear();
      std::string v;
      if (db_->Get(rocksdb::ReadOptions(), cf_[kMeta], kNextChatIdKey, &v).ok())
        ws_->next_chat_id = decode_u64be(v);
    }
    Written w{std::move(batch), committed, committed ? take_snapshot() : nullptr};
    batch.clear();  // moved from: make it empty
    std::unique_lock wl(written_mu_);
    written_cv_.wait(wl, [&] { return written_.size() < kMaxWritten; });
    written_.push_back(std::move(w));
    written_cv_.notify_all();
  }
}

void RocksStore::completion_loop() {
  const bool fsync = store_cfg_.durability == Durability::fsync;
  for (;;) {
    std::deque<Written> ready;
    {
      std::unique_lock lock(written_mu_);
      written_cv_.wait(lock, [&] { return writer_done_ || !written_.empty(); });
      if (written_.empty()) return;  // the writer is done and everything was completed
      ready.swap(written_);
      written_cv_.notify_all();  // room for the writer again
    }
    // One fsync covers every batch written so far (group commit across batches).
    bool any =
        std::any_of(ready.begin(), ready.end(), [](const Written& w) { return w.committed; });
    if (fsync && any) {
      auto st = db_->SyncWAL();
      if (!st.ok()) {
        spdlog::error("store: WAL sync failed: {}; {} batches fail", st.ToString(), ready.size());
        for (auto& w : ready) w.committed = false;
      }
    }
    // Publish first, then answer: whoever learns of a commit can read it, and a device
    // that authenticates after the publish reads a pts that includes it.
    for (auto it = ready.rbegin(); it != ready.rend(); ++it) {
      if (!it->committed) continue;
      std::lock_guard lock(view_mu_);
      view_ = std::move(it->view);
      break;
    }
    for (auto& w : ready) {
      // The completions hand their answers and pushes to I/O threads: one post per thread
      // for the whole batch (common/post_batch.h).
      PostBatch hand_offs;
      for (auto& op : w.ops) op->finish(w.committed);  // in commit order, on this thread
    }
  }
}

void RocksStore::create_user(UserRecord user, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user)](WriteTxn& txn) -> Status {
    auto key = user_key(user.id);
    if (txn.get(kUsers, key)) return Error{Errc::username_taken, "username is taken"};
    txn.put(kUsers, key, encode(user));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

namespace {
// An existing user row for ensure_user: ok, or forbidden once the account was deleted.
Status existing_user(const UserId& id, std::string_view raw) {
  auto row = decode_user(id, raw);
  if (!row) return Error{Errc::internal, "corrupt user record"};
  if (row->deleted) return Error{Errc::forbidden, "account deleted"};
  return ok_status();
}
}  // namespace

void RocksStore::ensure_user(UserId id, Callback<Unit> done) {
  std::string v;
  if (!closing_ && db_->Get(durable_read(), cf_[kUsers], user_key(id), &v).ok())
    return done(existing_user(id, v));
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [id = std::move(id)](WriteTxn& txn) -> Status {
    auto key = user_key(id);
    if (auto raw = txn.get(kUsers, key)) return existing_user(id, *raw);
    txn.put(kUsers, key, encode(UserRecord{id, "", 0}));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::get_user(UserId id, Callback<UserRecord> done) {
  std::string v;
  auto st = db_->Get(durable_read(), cf_[kUsers], user_key(id), &v);
  if (st.IsNotFound()) return done(Error{Errc::not_found, "no such user"});
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto rec = decode_user(id, v);
  if (!rec) return done(Error{Errc::internal, "corrupt user record"});
  if (rec->deleted) return done(Error{Errc::not_found, "no such user"});
  done(std::move(rec->user));
}

void RocksStore::create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [device = std::move(device), max_devices](WriteTxn& txn) -> Status {
    if (max_devices > 0) {
      std::string prefix = user_prefix(device.user);
      uint32_t live = 0;
      for (const auto& [key, value] : txn.scan(kDevices, prefix, prefix_end(prefix))) {
        auto dev = decode_device(value);
        if (dev && !dev->revoked) ++live;
      }
      if (live >= max_devices)
        return Error{Errc::too_many_devices,
                     fmt::format("{} devices already: revoke one first", live)};
    }
    txn.put(kDevices, device_key(device.user, device.device_id), encode(device));
    txn.put(kTokens, token_key(device.token_hash), encode_token(device.user, device.device_id));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) {
  std::string v;
  auto st = db_->Get(durable_read(), cf_[kTokens], token_key(token_hash), &v);
  if (st.IsNotFound()) return done(Error{Errc::unauthorized, "invalid token"});
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto ref = decode_token(v);
  if (!ref) return done(Error{Errc::internal, "corrupt token record"});
  st = db_->Get(durable_read(), cf_[kDevices], device_key(ref->first, ref->second), &v);
  if (!st.ok()) return done(Error{Errc::unauthorized, "invalid token"});
  auto dev = decode_device(v);
  if (!dev || dev->revoked) return done(Error{Errc::unauthorized, "token revoked"});
  done(std::move(*dev));
}

void RocksStore::list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) {
  std::string prefix = user_prefix(user);
  std::string end = prefix_end(prefix);
  auto view = read_view();
  rocksdb::ReadOptions ro;
  ro.snapshot = view.get();
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kDevices]));
  std::vector<DeviceRecord> devices;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto dev = decode_device(std::string_view(it->value().data(), it->value().size()));
    if (!dev) return done(Error{Errc::internal, "corrupt device record"});
    if (!dev->revoked) devices.push_back(std::move(*dev));
  }
  if (!it->status().ok()) return done(Error{Errc::unavailable, it->status().ToString()});
  done(std::move(devices));
}

void RocksStore::revoke_device(UserId user, std::string device_id, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id)](WriteTxn& txn) -> Status {
    auto key = device_key(user, device_id);
    auto raw = txn.get(kDevices, key);
    if (!raw) return Error{Errc::not_found, "no such device"};
    auto dev = decode_device(*raw);
    if (!dev) return Error{Errc::internal, "corrupt device record"};
    dev->revoked = true;
    txn.del(kTokens, token_key(dev->token_hash));
    txn.put(kDevices, key, encode(*dev));
    drop_push_device(txn, user, device_id);
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

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
    list.unread_total += c.unread;
    if (c.unread > 0) ++list.unread_chats;
    list.chats.push_back(std::move(c));
  }
  auto newer = [](const ChatSummary& a, const ChatSummary& b) {
    return a.last_ts != b.last_ts ? a.last_ts > b.last_ts : a.chat_id > b.chat_id;
  };
  std::sort(list.chats.begin(), list.chats.end(), newer);
  if (!after.from_start()) {
    ChatSummary at;
    at.last_ts = after.last_ts;
    at.chat_id = after.chat_id;
    list.chats.erase(list.chats.begin(),
                     std::upper_bound(list.chats.begin(), list.chats.end(), at, newer));
  }
  if (list.chats.size() > limit) {
    list.chats.resize(limit);
    list.has_more = true;
  }
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
      uint64_t first = vis->last >= messages_per_chat ? vis->last - messages_per_chat + 1 : 1;
      first = std::max(first, vis->first);
      w.messages = read_range(snap, c.chat_id, first, vis->last);
      w.has_more = first > vis->first;
      w.older = first - vis->first;
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

void RocksStore::mark(ReceiptRequest req, Callback<ReceiptResult> done) {
  auto op = std::make_unique<ReceiptOp>();
  op->req = std::move(req);
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
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

void RocksStore::get_settings(UserId user, Callback<UserSettings> done) {
  std::string v;
  std::optional<UserRow> row;
  if (db_->Get(durable_read(), cf_[kUsers], user_key(user), &v).ok()) row = decode_user(user, v);
  if (!row || row->deleted)
    return done(Error{Errc::not_found, fmt::format("no such user: {}", user)});
  if (!db_->Get(durable_read(), cf_[kMeta], settings_key(user), &v).ok())
    return done(UserSettings{});
  auto s = decode_settings(v);
  if (!s) return done(Error{Errc::internal, "corrupt settings record"});
  done(std::move(*s));
}

namespace {
// Settings writes: read-modify-write of the user's settings row on the writer thread.
Status update_settings(WriteTxn& txn, const UserId& user,
                       const std::function<void(UserSettings&)>& change) {
  if (!live_user(txn, user)) return Error{Errc::not_found, fmt::format("no such user: {}", user)};
  UserSettings s;
  if (auto raw = txn.get(RocksStore::kMeta, settings_key(user))) {
    auto decoded = decode_settings(*raw);
    if (!decoded) return Error{Errc::internal, "corrupt settings record"};
    s = *decoded;
  }
  change(s);
  txn.put(RocksStore::kMeta, settings_key(user), encode(s));
  return Unit{};
}
}  // namespace

void RocksStore::set_presence_visibility(UserId user, PresenceVisibility vis, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->fn = [user, vis](WriteTxn& txn) {
    return update_settings(txn, user, [vis](UserSettings& s) { s.presence = vis; });
  };
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::set_last_seen(UserId user, int64_t ts, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->fn = [user, ts](WriteTxn& txn) {
    return update_settings(txn, user,
                           [ts](UserSettings& s) { s.last_seen = std::max(s.last_seen, ts); });
  };
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
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

// Media ------------------------------------------------------------------------------------
// Rows and invariants: codec.h. Writes run on the writer thread, so a sweep and an append
// that refer to the same record are ordered by their commits.

namespace {
// Whether a row of `cf` starts with `prefix`, in the database at `ro`.
bool has_prefix(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::ReadOptions& ro,
                const std::string& prefix) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  it->Seek(prefix);
  return it->Valid() && it->key().starts_with(prefix);
}
}  // namespace

void RocksStore::put_media(MediaRecord record, UserId uploader, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [record = std::move(record), uploader = std::move(uploader)](WriteTxn& txn) -> Status {
    if (!valid_media_id(record.id)) return Error{Errc::bad_request, "bad media id"};
    if (!live_user(txn, uploader))
      return Error{Errc::not_found, fmt::format("no such user: {}", uploader)};
    const std::string& id = record.id;
    auto key = media_key(id);
    bool referenced = txn.any(kMedia, media_ref_prefix(id));
    if (auto raw = txn.get(kMedia, key)) {
      // The same bytes again: only the upload time moves (forwards), and the pending
      // entry with it.
      auto rec = decode_media(id, *raw);
      if (!rec) return Error{Errc::internal, "corrupt media record"};
      if (record.uploaded_at > rec->uploaded_at) {
        if (!referenced) {
          txn.del(kMedia, media_pending_key(rec->uploaded_at, id));
          txn.put(kMedia, media_pending_key(record.uploaded_at, id), "");
        }
        rec->uploaded_at = record.uploaded_at;
        txn.put(kMedia, key, encode(*rec));
      }
    } else {
      txn.put(kMedia, key, encode(record));
      if (!referenced) txn.put(kMedia, media_pending_key(record.uploaded_at, id), "");
    }
    txn.put(kMedia, media_owner_key(id, uploader), "");
    txn.put(kMedia, media_user_key(uploader, id), "");
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::get_media(std::string id, Callback<MediaRecord> done) {
  if (!valid_media_id(id)) return done(no_media(id));
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  auto st = db_->Get(ro, cf_[kMedia], media_key(id), &v);
  if (st.IsNotFound()) return done(no_media(id));
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  auto rec = decode_media(id, v);
  if (!rec) return done(Error{Errc::internal, "corrupt media record"});
  rec->referenced = has_prefix(*db_, cf_[kMedia], ro, media_ref_prefix(id));
  done(std::move(*rec));
}

void RocksStore::media_access(UserId user, std::string id, Callback<bool> done) {
  if (!valid_media_id(id)) return done(false);
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  auto st = db_->Get(ro, cf_[kMedia], media_key(id), &v);
  if (st.IsNotFound()) return done(false);
  if (!st.ok()) return done(Error{Errc::unavailable, st.ToString()});
  st = db_->Get(ro, cf_[kMedia], media_owner_key(id, user), &v);
  if (st.ok()) return done(true);
  if (!st.IsNotFound()) return done(Error{Errc::unavailable, st.ToString()});
  // An active member of a chat where a message refers to it.
  bool allowed = false;
  std::unordered_set<ChatId> checked;
  std::string prefix = media_ref_prefix(id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kMedia]));
  for (it->Seek(prefix); !allowed && it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto ref = decode_media_ref_key(it->key().ToStringView());
    if (!ref || !checked.insert(ref->chat).second) continue;
    auto vis = visible_range(snap, ref->chat, user);
    allowed = vis && vis->member;
  }
  it.reset();
  done(allowed);
}

void RocksStore::sweep_media(int64_t uploaded_before, uint32_t limit,
                             Callback<std::vector<std::string>> done) {
  auto op = std::make_unique<ValueOp<std::vector<std::string>>>();
  op->done = done;
  op->fn = [uploaded_before, limit](WriteTxn& txn) -> Result<std::vector<std::string>> {
    std::vector<std::string> removed;
    if (limit == 0) return removed;
    auto pending =
        txn.scan(kMedia, media_pending_prefix(), media_pending_bound(uploaded_before), limit);
    for (const auto& [key, value] : pending) {
      txn.del(kMedia, key);
      auto entry = decode_media_pending_key(key);
      if (!entry) continue;
      const auto& [ts, id] = *entry;
      auto raw = txn.get(kMedia, media_key(id));
      if (!raw) continue;  // a stale entry: nothing to remove
      auto rec = decode_media(id, *raw);
      if (rec && rec->uploaded_at != ts) continue;          // stale: the record moved on
      if (txn.any(kMedia, media_ref_prefix(id))) continue;  // stale: referred to since
      std::string owners = media_owner_prefix(id);
      for (const auto& [okey, ovalue] : txn.scan(kMedia, owners, prefix_end(owners))) {
        if (auto owner = decode_media_owner_key(okey))
          txn.del(kMedia, media_user_key(owner->second, id));
        txn.del(kMedia, okey);
      }
      txn.del(kMedia, media_key(id));
      removed.push_back(id);
    }
    return removed;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::delete_user(UserId user, Callback<DeleteUserResult> done) {
  auto op = std::make_unique<ValueOp<DeleteUserResult>>();
  op->done = done;
  op->fn = [user = std::move(user)](WriteTxn& txn) -> Result<DeleteUserResult> {
    auto ukey = user_key(user);
    auto raw = txn.get(kUsers, ukey);
    std::optional<UserRow> row;
    if (raw) row = decode_user(user, *raw);
    if (raw && !row) return Error{Errc::internal, "corrupt user record"};
    if (!row || row->deleted) return Error{Errc::not_found, fmt::format("no such user: {}", user)};

    // Everything is read first, so that an error leaves nothing half-written.
    std::vector<std::pair<std::string, DeviceRecord>> live;  // key, device
    std::string dprefix = user_prefix(user);
    for (auto& [key, value] : txn.scan(kDevices, dprefix, prefix_end(dprefix))) {
      auto dev = decode_device(value);
      if (!dev) return Error{Errc::internal, "corrupt device record"};
      if (!dev->revoked) live.emplace_back(std::move(key), std::move(*dev));
    }
    // The user's media marks: its owner mark and its references go; a record that nothing
    // else holds goes with them, one that only owners still hold becomes pending.
    struct Plan {
      std::vector<std::string> drop;  // keys to delete
      std::optional<MediaRecord> rec;
      bool remove = false, pending = false;
    };
    std::vector<Plan> plans;
    std::string mprefix = media_user_prefix(user);
    for (auto& [key, value] : txn.scan(kMedia, mprefix, prefix_end(mprefix))) {
      auto mine = decode_media_user_key(key);
      Plan p;
      p.drop.push_back(key);
      if (!mine) {
        plans.push_back(std::move(p));
        continue;
      }
      const std::string& id = mine->second;
      std::string my_owner = media_owner_key(id, user);
      if (txn.get(kMedia, my_owner)) p.drop.push_back(my_owner);
      std::string oprefix = media_owner_prefix(id);
      bool owned = false;  // by someone else
      for (const auto& [okey, ovalue] : txn.scan(kMedia, oprefix, prefix_end(oprefix), 2))
        owned = owned || okey != my_owner;
      std::string my_refs = media_ref_prefix(id, user);
      size_t mine_count = 0;
      for (auto& [rkey, rvalue] : txn.scan(kMedia, my_refs, prefix_end(my_refs))) {
        p.drop.push_back(std::move(rkey));
        ++mine_count;
      }
      std::string rprefix = media_ref_prefix(id);
      bool referenced =  // by someone else: there are more references than the user's
          txn.scan(kMedia, rprefix, prefix_end(rprefix), mine_count + 1).size() > mine_count;
      if (auto rraw = txn.get(kMedia, media_key(id))) {
        p.rec = decode_media(id, *rraw);
        if (!p.rec) return Error{Errc::internal, "corrupt media record"};
        p.remove = !owned && !referenced;
        p.pending = owned && !referenced;
      }
      plans.push_back(std::move(p));
    }

    DeleteUserResult r;
    row->deleted = true;
    row->user.password_hash.clear();
    txn.put(kUsers, ukey, encode(*row));
    for (auto& [key, dev] : live) {
      dev.revoked = true;
      txn.del(kTokens, token_key(dev.token_hash));
      txn.put(kDevices, key, encode(dev));
      r.devices.push_back(dev.device_id);
    }
    txn.del(kMeta, settings_key(user));
    drop_push_user(txn, user);
    for (auto& p : plans) {
      for (auto& key : p.drop) txn.del(kMedia, std::move(key));
      if (!p.rec) continue;
      if (p.remove) {
        txn.del(kMedia, media_key(p.rec->id));
        txn.del(kMedia, media_pending_key(p.rec->uploaded_at, p.rec->id));
        r.removed_media.push_back(p.rec->id);
      } else if (p.pending) {
        txn.put(kMedia, media_pending_key(p.rec->uploaded_at, p.rec->id), "");
      }
    }
    return r;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

// Push notifications --------------------------------------------------------------------
// Rows and invariants: codec.h. Every write runs on the writer thread, so two claims never
// lease the same job and a collapse is ordered with the finish of the send it races with.

namespace {
// Whether `user` is an active member of `chat`: not_found for no such chat, else forbidden.
Status active_member(WriteTxn& txn, ChatId chat, const UserId& user) {
  ChatRecord* rec = txn.load_chat(chat);
  if (!rec || rec->deleted) return Error{Errc::not_found, fmt::format("no such chat: {}", chat)};
  if (rec->kind == ChatKind::direct) {
    if (std::find(rec->members.begin(), rec->members.end(), user) == rec->members.end())
      return Error{Errc::forbidden, "not a member of this chat"};
    return ok_status();
  }
  auto m = txn.get_member(chat, user);
  if (!m || m->left_seq) return Error{Errc::forbidden, "not a member of this chat"};
  return ok_status();
}
}  // namespace

void RocksStore::set_push_target(PushTarget target, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [t = std::move(target)](WriteTxn& txn) -> Status {
    if (!live_user(txn, t.user))
      return Error{Errc::not_found, fmt::format("no such user: {}", t.user)};
    auto raw = txn.get(kDevices, device_key(t.user, t.device_id));
    auto dev = raw ? decode_device(*raw) : std::nullopt;
    if (!dev || dev->revoked)
      return Error{Errc::not_found, fmt::format("no such device: {}", t.device_id)};
    if (auto st = rules::validate_push_target(t); !st) return st;
    txn.put(kPush, push_target_key(t.user, t.device_id), encode(t));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::remove_push_target(UserId user, std::string device_id, std::string token,
                                    Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id),
            token = std::move(token)](WriteTxn& txn) -> Status {
    if (!token.empty()) {  // only that registration: a newer one stays
      auto raw = txn.get(kPush, push_target_key(user, device_id));
      auto t = raw ? decode_push_target(user, device_id, *raw) : std::nullopt;
      if (!t || t->token != token) return ok_status();
    }
    drop_push_device(txn, user, device_id);
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::push_targets(UserId user, Callback<std::vector<PushTarget>> done) {
  std::vector<PushTarget> out;
  std::string prefix = push_target_prefix(user);
  auto view = read_view();
  rocksdb::ReadOptions ro;
  ro.snapshot = view.get();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kPush]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto k = decode_push_target_key(it->key().ToStringView());
    if (!k) continue;
    if (auto t = decode_push_target(k->user, k->device, it->value().ToStringView()))
      out.push_back(std::move(*t));
  }
  if (!it->status().ok()) return done(Error{Errc::unavailable, it->status().ToString()});
  it.reset();
  done(std::move(out));
}

void RocksStore::set_chat_mute(UserId user, ChatId chat, int64_t muted_until, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), chat, muted_until](WriteTxn& txn) -> Status {
    auto row = rules::mute_row(muted_until);
    if (!row) return row.error();
    if (!live_user(txn, user)) return Error{Errc::not_found, fmt::format("no such user: {}", user)};
    if (auto st = active_member(txn, chat, user); !st) return st;
    auto key = push_mute_key(user, chat);
    if (!row.value()) {
      if (txn.get(kPush, key)) txn.del(kPush, std::move(key));
    } else {
      txn.put(kPush, std::move(key), encode_mute(*row.value()));
    }
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::set_push_settings(UserId user, int64_t dnd_until, bool preview,
                                   Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), dnd_until, preview](WriteTxn& txn) {
    return update_settings(txn, user, [dnd_until, preview](UserSettings& s) {
      s.dnd_until = dnd_until;
      s.push_preview = preview;
    });
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::enqueue_push(std::vector<PushEnqueue> items, int64_t now,
                              Callback<uint32_t> done) {
  auto op = std::make_unique<ValueOp<uint32_t>>();
  op->done = done;
  op->fn = [items = std::move(items), now](WriteTxn& txn) -> Result<uint32_t> {
    uint32_t queued = 0;
    for (const auto& item : items) {
      std::optional<int64_t> dnd_until, muted_until;
      if (auto raw = txn.get(kMeta, settings_key(item.user)))
        if (auto s = decode_settings(*raw)) dnd_until = s->dnd_until;
      if (auto raw = txn.get(kPush, push_mute_key(item.user, item.chat_id)))
        muted_until = decode_mute(*raw);
      if (!rules::push_allowed(dnd_until, muted_until, now)) continue;
      std::string prefix = push_target_prefix(item.user);
      for (const auto& [tkey, tvalue] : txn.scan(kPush, prefix, prefix_end(prefix))) {
        auto k = decode_push_target_key(tkey);
        if (!k || std::find(item.connected.begin(), item.connected.end(), k->device) !=
                      item.connected.end())
          continue;  // a live device got the message already
        auto prev = load_push_job(txn, item.user, k->device, item.chat_id);
        PushJob next = rules::collapse_push(prev, item, k->device, now);
        write_push_job(txn, prev ? &*prev : nullptr, &next);
        ++queued;
      }
    }
    return queued;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [user = std::move(user), device_id = std::move(device_id)](WriteTxn& txn) -> Status {
    drop_push_jobs(txn, push_job_prefix(user, device_id));
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                                 Callback<std::vector<PushJob>> done) {
  auto op = std::make_unique<ValueOp<std::vector<PushJob>>>();
  op->done = done;
  op->fn = [now, limit, lease_until](WriteTxn& txn) -> Result<std::vector<PushJob>> {
    constexpr size_t kChunk = 256;  // due rows read at a time (leased ones are skipped)
    std::vector<PushJob> out;
    std::string from = push_due_prefix();
    const std::string to = now == INT64_MAX ? prefix_end(from) : push_due_bound(now + 1);
    while (out.size() < limit) {
      auto rows = txn.scan(kPush, from, to, kChunk);
      for (const auto& [key, value] : rows) {
        if (out.size() >= limit) break;
        auto k = decode_push_due_key(key);
        auto job = k ? load_push_job(txn, k->user, k->device, k->chat) : std::nullopt;
        if (!job || job->due_at != k->ts) {  // a leftover: not the job's due row
          txn.del(kPush, key);
          continue;
        }
        if (job->lease_until > now) continue;  // another worker has it
        auto raw = txn.get(kPush, push_target_key(job->user, job->device_id));
        auto target = raw ? decode_push_target(job->user, job->device_id, *raw) : std::nullopt;
        if (!target) {  // nowhere to send it
          write_push_job(txn, &*job, nullptr);
          continue;
        }
        PushJob next = *job;
        next.lease_until = lease_until;
        write_push_job(txn, &*job, &next);
        next.target = std::move(*target);
        out.push_back(std::move(next));
      }
      if (rows.size() < kChunk) break;
      from = rows.back().first + '\0';  // the next key after the last one read
    }
    return out;
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at,
                                 std::string error, Callback<Unit> done) {
  auto op = std::make_unique<FnOp>();
  op->done = done;
  op->fn = [job = std::move(job), outcome, retry_at,
            error = std::move(error)](WriteTxn& txn) -> Status {
    // The job as it stands; a job created after the claimed one went (same key, another
    // created_at) is not the one that was sent: it is left alone.
    auto cur = load_push_job(txn, job.user, job.device_id, job.chat_id);
    if (cur && cur->created_at != job.created_at) cur.reset();
    if (outcome == PushOutcome::token_gone) {
      auto raw = txn.get(kPush, push_target_key(job.user, job.device_id));
      auto target = raw ? decode_push_target(job.user, job.device_id, *raw) : std::nullopt;
      if (!target || job.target.token.empty() || target->token == job.target.token) {
        drop_push_device(txn, job.user, job.device_id);
      } else if (cur) {  // registered again since the claim: the job goes to the new token
        PushJob next = *cur;
        next.lease_until = 0;
        write_push_job(txn, &*cur, &next);
      }
      return ok_status();
    }
    if (!cur) return ok_status();
    int64_t now = now_ms();
    auto f = rules::finish_push(*cur, job, outcome, retry_at, now);
    switch (f.action) {
      case rules::PushFinish::Action::remove:
        write_push_job(txn, &*cur, nullptr);
        break;
      case rules::PushFinish::Action::replace:
        write_push_job(txn, &*cur, &f.next);
        break;
      case rules::PushFinish::Action::dead_letter: {
        PushDeadLetter dead{std::move(f.next), now, error};
        auto key = push_dead_key(dead.failed_at, job.user, job.device_id, job.chat_id);
        if (!txn.get(kPush, key)) add_to_counter(txn, push_dead_count_key(), 1);
        txn.put(kPush, std::move(key), encode(dead));
        write_push_job(txn, &*cur, nullptr);
        break;
      }
    }
    return ok_status();
  };
  enqueue(std::move(op), [done] { done(unavailable()); });
}

void RocksStore::push_queue_stats(Callback<PushQueueStats> done) {
  auto view = read_view();
  const rocksdb::Snapshot* snap = view.get();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  PushQueueStats stats;
  std::string v;
  if (db_->Get(ro, cf_[kPush], push_job_count_key(), &v).ok()) stats.depth = decode_u64be(v);
  if (db_->Get(ro, cf_[kPush], push_dead_count_key(), &v).ok())
    stats.dead_letters = decode_u64be(v);
  std::string prefix = push_created_prefix();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kPush]));
  it->Seek(prefix);
  if (it->Valid() && it->key().starts_with(prefix))
    if (auto k = decode_push_created_key(it->key().ToStringView())) stats.oldest_created_at = k->ts;
  it.reset();
  done(stats);
}

}  // namespace parley::store::rocks
