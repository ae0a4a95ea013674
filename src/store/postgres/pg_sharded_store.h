// The Store over several PostgreSQL servers (docs/SCALING.md, "Sharding the store"): one
// PgStore per server, each told its place in the list (pg_placement.h). Rows live where
// their key's bucket does: a user's on the user's server, a chat's on the chat's, a media
// record on its id's. An operation runs on the server that owns what it changes; what a
// commit on a chat's server owes to users on other servers (their update-log entries, their
// chat index rows, media references) is written to the chat's outbox in that commit and
// applied on their servers right after it (before the caller hears of the commit, unless a
// server is down), and again by the replay of stale outboxes until it is done. Applying is
// idempotent and goes in outbox order per chat, so each user's log holds every message of a
// chat once, in seq order. Reads that span servers (the chat list, the update log with its
// messages) ask each server for its part and merge.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/postgres/pg_outbox.h"
#include "store/postgres/pg_store.h"

namespace parley::store::pg {

class ShardedPgStore final : public Store {
 public:
  // `servers`: one config per server, in the deployment's order (the order is part of the
  // data layout: every node must list the same servers in the same order). Their placement
  // is set here. Opens every server (connect + migrations) or fails.
  static Result<std::unique_ptr<ShardedPgStore>> open(std::vector<PgConfig> servers,
                                                      const SyncConfig& sync);
  ~ShardedPgStore() override;

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
  // Not ok while any server is down (its chats and users cannot be served); partial while
  // others are up.
  Health health() const override;

  // Applies the outboxes that hold rows older than `older_than_ms` on every server (what a
  // node that died between a commit and its fan-out left). Runs by itself once a second;
  // tests call it. Completes with the number of chats replayed.
  void replay_outboxes(int64_t older_than_ms, Callback<uint32_t> done);
  size_t servers() const { return shards_.size(); }
  PgStore& server(size_t i) { return *shards_[i]; }

 private:
  explicit ShardedPgStore(const SyncConfig& sync) : sync_(sync) {}

  struct FanOut {
    // Shared by the callers one round answers.
    std::shared_ptr<const std::vector<AppliedEntry>> entries =
        std::make_shared<std::vector<AppliedEntry>>();
    bool complete = true;  // every server was reachable and applied the rows read for it
  };
  // Applies the chat's outbox rows on their servers (those that health() says are reachable;
  // each server's rows in id order), answers, then removes the rows each server applied. One round
  // per chat at a time on this node: callers that come while one runs share the next round
  // (their rows committed before they asked, maybe after the running round read the outbox).
  // `pending`: the chat's outbox as the caller's commit saw it under the chat's lock (every
  // earlier commit's rows), which a round that starts now applies instead of reading it again.
  using PendingRows = std::shared_ptr<const std::vector<OutboxRow>>;
  void fan_out(ChatId chat, Callback<FanOut> done, PendingRows pending = nullptr);
  void fan_out_round(ChatId chat, std::vector<Callback<FanOut>> callers, PendingRows pending);
  // One round: `done` once every reachable server applied its rows (or failed), `finished`
  // once the applied rows are removed (the next round may read the outbox then).
  void fan_out_once(ChatId chat, PendingRows pending, Callback<FanOut> done,
                    std::function<void()> finished);
  // Applies rows read from the chat's outbox (fan_out_once's second half).
  void apply_rows(ChatId chat, std::vector<OutboxRow> rows, bool all, Callback<FanOut> done,
                  std::function<void()> finished);
  // Fans the chat's outbox out and answers the update-log entries the commit of (kind, seq,
  // by) owed to `users`: from the fan-out, or (a racing fan-out applied them) read where
  // they are. A user whose server could not be reached is left out.
  void settle(ChatId chat, OutboxKind kind, uint64_t seq, UserId by, std::vector<UserId> users,
              Callback<std::vector<Delivery>> done, PendingRows pending = nullptr);
  void append_step(AppendRequest req, bool to_user_checked, Callback<AppendResult> done);
  // Appends of one chat (or one pair of users) reach the chat's server in the order they
  // came, as on one server: one that needs steps on other servers first (its media checked,
  // the recipient's account checked for a direct chat this node has not seen) holds the
  // later ones back until it is queued there.
  struct PendingAppend {
    AppendRequest req;
    Callback<AppendResult> done;
  };
  struct Lane {
    std::deque<PendingAppend> waiting;
  };
  bool needs_steps_first(const AppendRequest& req, const std::string& key) const;  // lanes_mu_
  void steps_then_append(std::string key, PendingAppend p);
  void admit_next(const std::string& key);
  // The user's group chats as the index on the user's server lists them.
  void group_index(const UserId& user, Callback<std::vector<ChatId>> done);

  PgStore& user_server(std::string_view user) { return *shards_[placement_.user_shard(user)]; }
  PgStore& chat_server(ChatId chat) { return *shards_[placement_.chat_shard(chat)]; }
  PgStore& media_server(std::string_view id) { return *shards_[placement_.media_shard(id)]; }
  PgStore& pair_server(const UserId& a, const UserId& b) {
    return *shards_[placement_.pair_shard(a, b)];
  }

  SyncConfig sync_;
  Placement placement_;  // index unused: the whole list
  std::vector<std::unique_ptr<PgStore>> shards_;

  std::mutex lanes_mu_;
  std::unordered_map<std::string, Lane> lanes_;  // keys with an append in its first steps
  // Direct chats (pair keys) whose recipient was found live: their appends go straight on.
  std::unordered_set<std::string> known_pairs_;

  // Chats with a fan-out round running, and the callers waiting for the next round.
  std::mutex fan_mu_;
  std::unordered_map<ChatId, std::vector<Callback<FanOut>>> fanning_;

  // The replay loop.
  std::thread replayer_;
  std::mutex replay_mu_;
  std::condition_variable replay_cv_;
  bool closing_ = false;
};

// Runs `n` asynchronous steps and calls `done` once with all their results, in order.
template <class T>
void gather(size_t n, const std::function<void(size_t, Callback<T>)>& start,
            std::function<void(std::vector<Result<T>>)> done) {
  struct State {
    std::mutex mu;
    std::vector<std::optional<Result<T>>> results;
    size_t left;
    std::function<void(std::vector<Result<T>>)> done;
  };
  if (n == 0) {
    done({});
    return;
  }
  auto st = std::make_shared<State>();
  st->results.resize(n);
  st->left = n;
  st->done = std::move(done);
  for (size_t i = 0; i < n; ++i)
    start(i, [st, i](Result<T> r) {
      {
        std::lock_guard lock(st->mu);
        st->results[i] = std::move(r);
        if (--st->left > 0) return;
      }
      std::vector<Result<T>> all;
      all.reserve(st->results.size());
      for (auto& one : st->results) all.push_back(std::move(*one));
      st->done(std::move(all));
    });
}

}  // namespace parley::store::pg
