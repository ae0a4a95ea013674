// Store backend on PostgreSQL (libpq): the shared store of a multi-node deployment
// (DESIGN.md §5). A bounded pool of connections, each owned by one worker thread; the
// Store calls queue operations and their callbacks run on the worker thread once the
// transaction committed (store.h allows any thread).
//
// - Writes: a worker takes up to max_batch queued writes and runs them in one transaction,
//   each inside a SAVEPOINT, so that one failing write (forbidden, not_found, ...) is rolled
//   back alone and the rest commit together (group commit). Callbacks run after COMMIT.
// - seq and pts are counters in rows (chats.last_seq, user_logs.pts) incremented inside the
//   committing transaction; the row lock is held until commit, so commits per chat and per
//   user happen in counter order and a read never sees a hole. Rows are locked in a stable
//   order (the chat, the user's own chat row, then users sorted by id). A group commit holds
//   several ops' locks at once, so it waits at most 200 ms for a lock (lock_timeout); on a
//   lock timeout or a deadlock it runs again one op per transaction. A single op that hits a
//   deadlock or a serialization failure runs again a bounded number of times.
// - Reads run alone in a REPEATABLE READ READ ONLY transaction (one consistent snapshot).
// - Connection lost: the op completes with `unavailable` (nothing of it committed, or the
//   commit's outcome is unknown and a retry is idempotent); the worker reconnects with
//   backoff and health() says why while no connection works.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_placement.h"
#include "store/store.h"

namespace parley::store::pg {

struct PgConfig {
  std::string conninfo;  // libpq connection string or URI
  uint32_t pool_size = 4;
  uint32_t statement_timeout_ms = 30000;
  uint32_t connect_timeout_s = 5;
  uint32_t max_batch = 64;         // writes per group commit
  uint32_t max_queue = 100000;     // queued ops; past it a call completes with unavailable
  uint32_t max_retries = 8;        // of a transaction after a deadlock or serialization failure
  uint32_t reconnect_min_ms = 50;  // backoff between reconnects, doubling, with jitter
  uint32_t reconnect_max_ms = 2000;
  // This server's place in the list of servers the store spans (pg_placement.h); a
  // ShardedPgStore sets it. Alone (count 1) every row is local.
  Placement placement;
};

class PgStore final : public Store {
 public:
  // Connects, applies the schema migrations and starts the workers. unavailable if the
  // server cannot be reached or its schema is newer than this code.
  static Result<std::unique_ptr<PgStore>> open(const PgConfig& config, const SyncConfig& sync);
  ~PgStore() override;

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
  Health health() const override;
  // Transactions run again after a deadlock, a serialization failure or a racing insert.
  uint64_t retried_transactions() const { return retried_.load(); }
  // The most writes one group commit has held so far.
  size_t largest_batch() const { return largest_batch_.load(); }
  const Placement& placement() const { return cfg_.placement; }
  const SyncConfig& sync() const { return sync_; }

  // Runs `fn` on a worker inside a transaction (a write in a group commit, a read in a
  // snapshot of its own) and `done` with its result once the outcome is known. The ops
  // above and ShardedPgStore's steps are built on it.
  template <class T>
  void submit(bool write, std::function<Result<T>(PgConn&)> fn, Callback<T> done,
              std::string order_key = {});

  // A queued operation. apply() runs on a worker inside a transaction and may throw PgError
  // (then the transaction, or the op's savepoint, is rolled back); complete() runs the
  // callback once the transaction's outcome is known.
  struct Op {
    virtual ~Op() = default;
    bool write = true;
    // Writes with the same key commit in the order they were queued: while one worker's
    // batch holds the key, no other worker takes a write with it (a sender's pipelined
    // messages to one chat keep their order in its seq). Empty: no order.
    std::string order_key;
    virtual void apply(PgConn& conn) = 0;
    virtual bool failed() const = 0;  // apply() produced an error: roll the op back
    virtual void fail(Error e) = 0;
    virtual void complete() = 0;
  };

 private:
  PgStore(const PgConfig& config, const SyncConfig& sync) : cfg_(config), sync_(sync) {}

  void enqueue(std::unique_ptr<Op> op);
  void worker_loop();
  // Runs a batch of writes in one transaction; false if the connection was lost.
  bool run_writes(PgConn& conn, std::vector<std::unique_ptr<Op>>& batch);
  // A group commit that hit a deadlock or a lock timeout: each op in its own transaction.
  bool run_one_by_one(PgConn& conn, std::vector<std::unique_ptr<Op>>& batch);
  bool run_read(PgConn& conn, Op& op);
  void set_unhealthy(const std::string& why);

  PgConfig cfg_;
  SyncConfig sync_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Op>> queue_;
  // Order keys of the writes in batches being run, with how many (guarded by mu_).
  std::unordered_map<std::string, uint32_t> busy_keys_;
  bool closing_ = false;
  std::vector<std::thread> workers_;

  std::atomic<uint64_t> retried_{0};
  std::atomic<size_t> largest_batch_{0};
  std::atomic<int> connected_{0};  // workers with a working connection
  // The latest connection attempt or statement failed for want of a connection, and nothing
  // has committed since: health() reports it even while other workers hold connections
  // that have not noticed yet.
  std::atomic<bool> failing_{false};
  mutable std::mutex health_mu_;
  std::string last_error_;
};

}  // namespace parley::store::pg
