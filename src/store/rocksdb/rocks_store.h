// Store backend on embedded RocksDB: one column family per table (DESIGN.md §4) and a
// single writer thread that assigns seq/pts and commits queued writes in group commits.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rocksdb/options.h>

#include "common/config.h"
#include "store/rules/read_state.h"
#include "store/store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Snapshot;
}  // namespace rocksdb

namespace parley::store::rocks {

class WriteTxn;

class RocksStore final : public Store {
 public:
  // Opens (creating if missing) the database in `dir`.
  static Result<std::unique_ptr<RocksStore>> open(const std::string& dir, const StoreConfig& store,
                                                  const SyncConfig& sync);
  ~RocksStore() override;

  void create_user(UserRecord user, Callback<Unit> done) override;
  void get_user(UserId id, Callback<UserRecord> done) override;
  void ensure_user(UserId id, Callback<Unit> done) override;
  void create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) override;
  void find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) override;
  void list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) override;
  void revoke_device(UserId user, std::string device_id, Callback<Unit> done) override;
  void append_message(AppendRequest req, Callback<AppendResult> done) override;
  void group_op(GroupRequest req, Callback<GroupResult> done) override;
  void group_info(UserId user, ChatId chat, Callback<ChatInfo> done) override;
  void member_groups(UserId user, bool large_only, Callback<std::vector<ChatId>> done) override;
  void current_pts(UserId user, Callback<uint64_t> done) override;
  void read_updates(UserId user, uint64_t after_pts, uint32_t limit,
                    Callback<UpdatesPage> done) override;
  void snapshot(UserId user, uint32_t max_chats, uint32_t messages_per_chat,
                Callback<Snapshot> done) override;
  void history(HistoryQuery query, Callback<HistoryPage> done) override;
  void list_chats(UserId user, uint32_t limit, ChatListCursor after,
                  Callback<ChatList> done) override;
  void mark(ReceiptRequest req, Callback<ReceiptResult> done) override;
  void audience(UserId user, ChatId chat, UserId with, Callback<Audience> done) override;
  void get_settings(UserId user, Callback<UserSettings> done) override;
  void set_presence_visibility(UserId user, PresenceVisibility v, Callback<Unit> done) override;
  void set_last_seen(UserId user, int64_t ts, Callback<Unit> done) override;
  void shares_chat(UserId a, UserId b, Callback<bool> done) override;
  void put_media(MediaRecord record, UserId uploader, Callback<Unit> done) override;
  void get_media(std::string id, Callback<MediaRecord> done) override;
  void media_access(UserId user, std::string id, Callback<bool> done) override;
  void sweep_media(int64_t uploaded_before, uint32_t limit,
                   Callback<std::vector<std::string>> done) override;
  void delete_user(UserId user, Callback<DeleteUserResult> done) override;
  void set_push_target(PushTarget target, Callback<Unit> done) override;
  void remove_push_target(UserId user, std::string device_id, std::string token,
                          Callback<Unit> done) override;
  void push_targets(UserId user, Callback<std::vector<PushTarget>> done) override;
  void set_chat_mute(UserId user, ChatId chat, int64_t muted_until, Callback<Unit> done) override;
  void set_push_settings(UserId user, int64_t dnd_until, bool preview,
                         Callback<Unit> done) override;
  void enqueue_push(std::vector<PushEnqueue> items, int64_t now, Callback<uint32_t> done) override;
  void drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) override;
  void claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                       Callback<std::vector<PushJob>> done) override;
  void finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at, std::string error,
                       Callback<Unit> done) override;
  void push_queue_stats(Callback<PushQueueStats> done) override;
  void close() override;

  enum Cf : size_t {
    kMeta,
    kUsers,
    kDevices,
    kTokens,
    kChats,
    kPairs,
    kMessages,
    kUserChats,
    kUpdates,
    kIdem,
    kMembers,
    kMedia,
    kPush,
    kCfCount
  };

  // A queued write. apply() runs on the writer thread inside a batch; finish() runs on the
  // completion thread once the batch is durable (ok = true) or failed, in commit order.
  struct Op {
    virtual ~Op() = default;
    virtual void apply(WriteTxn& txn) = 0;
    virtual void finish(bool committed) = 0;
  };

 private:
  RocksStore() = default;
  void enqueue(std::unique_ptr<Op> op, const std::function<void()>& on_closed);
  // The commit pipeline: the writer applies a batch and writes it (WAL + memtable, no
  // fsync), then hands it to the completion thread and goes on with the next batch; the
  // completion thread fsyncs the WAL once for every batch handed over meanwhile, publishes
  // the new durable view and only then runs the batches' callbacks.
  void writer_loop();
  void completion_loop();
  struct Written {
    std::vector<std::unique_ptr<Op>> ops;
    bool committed = false;
    std::shared_ptr<const rocksdb::Snapshot> view;  // the database right after this batch
  };
  // What readers see: the last durable batch and everything before it, never a batch whose
  // fsync has not finished (so nothing is shown that a crash could take back).
  std::shared_ptr<const rocksdb::Snapshot> read_view();
  std::shared_ptr<const rocksdb::Snapshot> take_snapshot();
  // Read options of one point read at the durable view (the temporary keeps it alive
  // until the end of the full expression: not for iterators).
  struct DurableRead {
    std::shared_ptr<const rocksdb::Snapshot> view;
    rocksdb::ReadOptions options;
    operator const rocksdb::ReadOptions&() const { return options; }  // NOLINT
  };
  DurableRead durable_read();
  // A user's (read_seq, delivered_seq) in a chat; zeros if it has no row.
  std::pair<uint64_t, uint64_t> read_positions(const rocksdb::Snapshot* snap, const UserId& user,
                                               ChatId chat);
  Result<ChatList> list_chats_at(const rocksdb::Snapshot* snap, const UserId& user, uint32_t limit,
                                 ChatListCursor after);
  std::optional<Message> read_message(const rocksdb::Snapshot* snap, ChatId chat, uint64_t seq);
  std::vector<Message> read_range(const rocksdb::Snapshot* snap, ChatId chat, uint64_t first,
                                  uint64_t last);
  uint64_t read_pts(const rocksdb::Snapshot* snap, const UserId& user);
  // The seqs of `chat` that `user` may read: [first, last], or forbidden/not_found.
  using Visible = rules::Visible;
  Result<Visible> visible_range(const rocksdb::Snapshot* snap, ChatId chat, const UserId& user);

  StoreConfig store_cfg_;
  SyncConfig sync_cfg_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cf_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Op>> queue_;
  bool closing_ = false;
  bool closed_ = false;
  std::thread writer_;

  // Writer -> completion thread. At most kMaxWritten batches wait for their fsync, so that
  // the writer cannot run arbitrarily far ahead of the disk.
  static constexpr size_t kMaxWritten = 4;
  std::mutex written_mu_;
  std::condition_variable written_cv_;
  std::deque<Written> written_;
  bool writer_done_ = false;
  std::thread completer_;

  std::mutex view_mu_;
  std::shared_ptr<const rocksdb::Snapshot> view_;

  friend class WriteTxn;
  friend struct AppendOp;
  friend struct GroupOpImpl;
  friend struct ReceiptOp;
  // Writer-thread state: caches of what the writer owns (seq and pts counters).
  struct WriterState;
  std::unique_ptr<WriterState> ws_;
};

}  // namespace parley::store::rocks
