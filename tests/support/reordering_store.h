// A Store that completes writes out of order, on purpose: what a pool of database
// connections does (several commits in flight, each finishing when it does) and what the
// one-thread RocksDB backend never shows. It wraps a real store: every call goes through,
// and the completions of the writes that route updates (append_message, group_op, mark)
// are each held for a random 0..max_delay before they run, on a thread of their own, so
// that writes committed close together complete in a shuffled order. Tests use it to check
// that every device still sees its updates in pts order (session/ordered_stream.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "common/post_batch.h"
#include "store/store.h"

namespace parley::test {

class ReorderingStore final : public store::Store {
 public:
  ReorderingStore(std::shared_ptr<store::Store> inner, std::chrono::microseconds max_delay,
                  unsigned seed = 1)
      : inner_(std::move(inner)), max_delay_(max_delay), rng_(seed) {
    thread_ = std::thread([this] { run(); });
  }
  ~ReorderingStore() override { stop(); }

  // Completions that ran before one that was held earlier: how often the order changed.
  uint64_t reordered() const { return reordered_.load(); }

  void append_message(store::AppendRequest req,
                      store::Callback<store::AppendResult> done) override {
    inner_->append_message(std::move(req), delayed(std::move(done)));
  }
  void group_op(store::GroupRequest req, store::Callback<store::GroupResult> done) override {
    inner_->group_op(std::move(req), delayed(std::move(done)));
  }
  void mark(store::ReceiptRequest req, store::Callback<store::ReceiptResult> done) override {
    inner_->mark(std::move(req), delayed(std::move(done)));
  }

  void create_user(store::UserRecord u, store::Callback<Unit> d) override {
    inner_->create_user(std::move(u), std::move(d));
  }
  void get_user(store::UserId id, store::Callback<store::UserRecord> d) override {
    inner_->get_user(std::move(id), std::move(d));
  }
  void ensure_user(store::UserId id, store::Callback<Unit> d) override {
    inner_->ensure_user(std::move(id), std::move(d));
  }
  void create_device(store::DeviceRecord dev, uint32_t max, store::Callback<Unit> d) override {
    inner_->create_device(std::move(dev), max, std::move(d));
  }
  void find_device_by_token(std::string h, store::Callback<store::DeviceRecord> d) override {
    inner_->find_device_by_token(std::move(h), std::move(d));
  }
  void list_devices(store::UserId u, store::Callback<std::vector<store::DeviceRecord>> d) override {
    inner_->list_devices(std::move(u), std::move(d));
  }
  void revoke_device(store::UserId u, std::string dev, store::Callback<Unit> d) override {
    inner_->revoke_device(std::move(u), std::move(dev), std::move(d));
  }
  void group_info(store::UserId u, store::ChatId c, store::Callback<store::ChatInfo> d) override {
    inner_->group_info(std::move(u), c, std::move(d));
  }
  void member_groups(store::UserId u, bool large,
                     store::Callback<std::vector<store::ChatId>> d) override {
    inner_->member_groups(std::move(u), large, std::move(d));
  }
  void audience(store::UserId u, store::ChatId c, store::UserId w,
                store::Callback<store::Audience> d) override {
    inner_->audience(std::move(u), c, std::move(w), std::move(d));
  }
  void get_settings(store::UserId u, store::Callback<store::UserSettings> d) override {
    inner_->get_settings(std::move(u), std::move(d));
  }
  void set_presence_visibility(store::UserId u, store::PresenceVisibility v,
                               store::Callback<Unit> d) override {
    inner_->set_presence_visibility(std::move(u), v, std::move(d));
  }
  void set_last_seen(store::UserId u, int64_t ts, store::Callback<Unit> d) override {
    inner_->set_last_seen(std::move(u), ts, std::move(d));
  }
  void shares_chat(store::UserId a, store::UserId b, store::Callback<bool> d) override {
    inner_->shares_chat(std::move(a), std::move(b), std::move(d));
  }
  void put_media(store::MediaRecord r, store::UserId u, store::Callback<Unit> d) override {
    inner_->put_media(std::move(r), std::move(u), std::move(d));
  }
  void get_media(std::string id, store::Callback<store::MediaRecord> d) override {
    inner_->get_media(std::move(id), std::move(d));
  }
  void media_access(store::UserId u, std::string id, store::Callback<bool> d) override {
    inner_->media_access(std::move(u), std::move(id), std::move(d));
  }
  void sweep_media(int64_t before, uint32_t limit,
                   store::Callback<std::vector<std::string>> d) override {
    inner_->sweep_media(before, limit, std::move(d));
  }
  void delete_user(store::UserId u, store::Callback<store::DeleteUserResult> d) override {
    inner_->delete_user(std::move(u), std::move(d));
  }
  void set_push_target(store::PushTarget t, store::Callback<Unit> d) override {
    inner_->set_push_target(std::move(t), std::move(d));
  }
  void remove_push_target(store::UserId u, std::string dev, std::string token,
                          store::Callback<Unit> d) override {
    inner_->remove_push_target(std::move(u), std::move(dev), std::move(token), std::move(d));
  }
  void push_targets(store::UserId u, store::Callback<std::vector<store::PushTarget>> d) override {
    inner_->push_targets(std::move(u), std::move(d));
  }
  void set_chat_mute(store::UserId u, store::ChatId c, int64_t until,
                     store::Callback<Unit> d) override {
    inner_->set_chat_mute(std::move(u), c, until, std::move(d));
  }
  void set_push_settings(store::UserId u, int64_t dnd, bool preview,
                         store::Callback<Unit> d) override {
    inner_->set_push_settings(std::move(u), dnd, preview, std::move(d));
  }
  void enqueue_push(std::vector<store::PushEnqueue> items, int64_t now,
                    store::Callback<uint32_t> d) override {
    inner_->enqueue_push(std::move(items), now, std::move(d));
  }
  void drop_device_pushes(store::UserId u, std::string dev, store::Callback<Unit> d) override {
    inner_->drop_device_pushes(std::move(u), std::move(dev), std::move(d));
  }
  void claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                       store::Callback<std::vector<store::PushJob>> d) override {
    inner_->claim_push_jobs(now, limit, lease_until, std::move(d));
  }
  void finish_push_job(store::PushJob job, store::PushOutcome outcome, int64_t retry_at,
                       std::string error, store::Callback<Unit> d) override {
    inner_->finish_push_job(std::move(job), outcome, retry_at, std::move(error), std::move(d));
  }
  void push_queue_stats(store::Callback<store::PushQueueStats> d) override {
    inner_->push_queue_stats(std::move(d));
  }
  void current_pts(store::UserId u, store::Callback<uint64_t> d) override {
    inner_->current_pts(std::move(u), std::move(d));
  }
  void read_updates(store::UserId u, uint64_t after, uint32_t limit,
                    store::Callback<store::UpdatesPage> d) override {
    inner_->read_updates(std::move(u), after, limit, std::move(d));
  }
  void snapshot(store::UserId u, uint32_t chats, uint32_t messages,
                store::Callback<store::Snapshot> d) override {
    inner_->snapshot(std::move(u), chats, messages, std::move(d));
  }
  void history(store::HistoryQuery q, store::Callback<store::HistoryPage> d) override {
    inner_->history(std::move(q), std::move(d));
  }
  void list_chats(store::UserId u, uint32_t limit, store::ChatListCursor after,
                  store::Callback<store::ChatList> d) override {
    inner_->list_chats(std::move(u), limit, std::move(after), std::move(d));
  }
  void close() override {
    inner_->close();  // its last completions reach the queue first
    stop();
  }
  Health health() const override { return inner_->health(); }

 private:
  struct Held {
    std::chrono::steady_clock::time_point due;
    uint64_t order = 0;  // when it was held
    std::function<void()> run;
    bool operator>(const Held& o) const { return due > o.due; }
  };

  template <class T>
  store::Callback<T> delayed(store::Callback<T> done) {
    return [this, done = std::move(done)](Result<T> r) mutable {
      std::unique_lock lock(mu_);
      if (stopping_) {  // closing: no thread left to run it later
        lock.unlock();
        return done(std::move(r));
      }
      std::uniform_int_distribution<int64_t> pick(0, max_delay_.count());
      held_.push(Held{
          std::chrono::steady_clock::now() + std::chrono::microseconds(pick(rng_)), ++held_count_,
          [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); }});
      cv_.notify_one();
    };
  }

  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (held_.empty()) {
        if (stopping_) return;
        cv_.wait(lock);
        continue;
      }
      const auto due = held_.top().due;
      if (!stopping_ && due > std::chrono::steady_clock::now()) {
        cv_.wait_until(lock, due);
        continue;
      }
      // Everything due now runs in one batch, as a store's completion thread runs a commit's.
      std::vector<Held> ready;
      while (!held_.empty() && (stopping_ || held_.top().due <= std::chrono::steady_clock::now())) {
        ready.push_back(std::move(const_cast<Held&>(held_.top())));
        held_.pop();
      }
      lock.unlock();
      {
        PostBatch batch;
        for (auto& h : ready) {
          if (h.order < max_run_) reordered_.fetch_add(1);
          max_run_ = std::max(max_run_, h.order);
          h.run();
        }
      }
      lock.lock();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

  std::shared_ptr<store::Store> inner_;
  const std::chrono::microseconds max_delay_;
  std::mt19937_64 rng_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Held, std::vector<Held>, std::greater<>> held_;
  uint64_t held_count_ = 0;
  uint64_t max_run_ = 0;  // the releasing thread's only
  bool stopping_ = false;
  std::atomic<uint64_t> reordered_{0};
  std::thread thread_;
};

}  // namespace parley::test
