// The RocksDB backend's core: opening the database (one column family per table), the
// writer thread that applies queued ops in group commits, the completion thread that makes
// them durable and answers them, and the durable read view. The tables' operations live in
// rocks_<family>.cpp.
#include "store/rocksdb/rocks_store.h"

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/post_batch.h"
#include "store/rocksdb/codec.h"
#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"

namespace parley::store::rocks {
namespace {

// Keys and values of each family: docs/ARCHITECTURE.md ("Storage layout"); `media` and
// `push` hold several kinds of rows each, described with their keys in codec.h.
const char* const kCfNames[] = {"default", "users",    "devices",    "tokens",  "chats",
                                "pairs",   "messages", "user_chats", "updates", "idem",
                                "members", "media",    "push"};
static_assert(std::size(kCfNames) == RocksStore::kCfCount);

constexpr size_t kCacheLimit = 1 << 20;  // entries per writer cache before it is dropped

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

}  // namespace parley::store::rocks
