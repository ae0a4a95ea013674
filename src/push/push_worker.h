// The push worker (docs/PUSH.md, "Workers and retries"): a dispatcher thread claims due jobs
// from the Store's queue with a lease, and each provider's own pool of push.concurrency
// threads builds the notification, sends it and ends the job with its outcome.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/config.h"
#include "push/provider.h"
#include "store/store.h"

namespace parley::push {

class PushWorker {
 public:
  struct Stats {
    uint64_t sent = 0;            // accepted by a provider
    uint64_t retried = 0;         // rescheduled after a retryable failure
    uint64_t failed = 0;          // dead letters
    uint64_t tokens_dropped = 0;  // targets removed (the provider said the token is gone)
    uint64_t in_flight = 0;       // jobs being sent right now
  };

  PushWorker(store::Store& store,
             std::map<store::PushProvider, std::unique_ptr<Provider>> providers,
             const PushConfig& config);
  ~PushWorker();  // stop()
  PushWorker(const PushWorker&) = delete;
  PushWorker& operator=(const PushWorker&) = delete;

  // Starts the dispatcher and the providers' send threads.
  void start();
  // Stops claiming, waits for the sends in flight (and their finish_push_job), and
  // returns. Jobs claimed but not started yet keep their lease and come back when it
  // expires. Idempotent.
  void stop();

  Stats stats() const;

  // The delay before the next attempt of a job that failed its attempt number `attempts`
  // + 1: Retry-After when given, else full jitter up to min(max, base * 2^attempts).
  static int64_t retry_delay_ms(const PushConfig& config, uint32_t attempts,
                                std::optional<int64_t> retry_after_ms, std::mt19937_64& rng);

 private:
  struct Lane {
    std::unique_ptr<Provider> provider;
    std::deque<store::PushJob> queue;
    size_t running = 0;
    std::condition_variable cv;
    std::vector<std::thread> threads;
  };

  void dispatch_loop();
  void lane_loop(Lane& lane);
  void process(Lane& lane, store::PushJob job);
  Notification notification_of(const store::PushJob& job);
  void finish(store::PushJob job, store::PushOutcome outcome, int64_t retry_at, std::string error);
  size_t free_slots_locked() const;
  void log_stats();

  store::Store& store_;
  PushConfig config_;
  std::map<store::PushProvider, std::unique_ptr<Lane>> lanes_;

  mutable std::mutex mu_;
  std::condition_variable dispatch_cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::thread dispatcher_;
  std::mt19937_64 rng_;  // under mu_

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> retried_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> tokens_dropped_{0};
  std::atomic<uint64_t> in_flight_{0};
};

}  // namespace parley::push
