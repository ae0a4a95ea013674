// The PostgreSQL backend's core: opening (connect + migrations), the worker pool that runs
// queued ops (writes in group commits with a savepoint per op, reads alone in a snapshot),
// retries, reconnects and health. The tables' operations live in pg_<family>.cpp.
#include "store/postgres/pg_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "store/postgres/pg_internal.h"
#include "store/postgres/pg_migrations.h"

namespace parley::store::pg {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kIdleCheck = std::chrono::seconds(1);  // an idle worker checks its connection
constexpr int kMaxOpReruns = 3;  // of one op after a unique violation (a racing insert)
// How long a group commit waits for a lock before it runs again one op per transaction.
constexpr const char* kBatchLockTimeout = "SET LOCAL lock_timeout = '200ms'";

// What an error that is neither a lost connection nor a retryable conflict means for the op.
Error classify(const PgError& e) {
  const std::string& s = e.sqlstate();
  if (s.rfind("22", 0) == 0) return Error{Errc::bad_request, e.what()};  // data exception
  if (s == "57014" || s.rfind("53", 0) == 0 || s.rfind("08", 0) == 0 || e.retryable())
    return Error{Errc::unavailable, e.what()};  // timeout, resources, connection
  return Error{Errc::internal, e.what()};
}

void complete_all(std::vector<std::unique_ptr<PgStore::Op>>& batch) {
  for (auto& op : batch) op->complete();
}

}  // namespace

Result<std::unique_ptr<PgStore>> PgStore::open(const PgConfig& config, const SyncConfig& sync) {
  if (config.pool_size == 0 || config.max_batch == 0)
    return Error{Errc::bad_request, "postgres: pool_size and max_batch must be at least 1"};
  try {
    PgConn conn(config.conninfo, static_cast<int>(config.connect_timeout_s),
                static_cast<int>(config.statement_timeout_ms));
    if (auto st = migrate(conn); !st) return st.error();
    if (auto st = check_place(conn, config.placement, true); !st) return st.error();
  } catch (const PgError& e) {
    return Error{Errc::unavailable, fmt::format("postgres: {}", e.what())};
  }
  std::unique_ptr<PgStore> s(new PgStore(config, sync));
  for (uint32_t i = 0; i < config.pool_size; ++i)
    s->workers_.emplace_back([p = s.get()] { p->worker_loop(); });
  return s;
}

PgStore::~PgStore() { close(); }

void PgStore::close() {
  {
    std::lock_guard lock(mu_);
    if (closing_ && workers_.empty()) return;
    closing_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();  // they drain the queue first
  std::lock_guard lock(mu_);
  workers_.clear();
}

Health PgStore::health() const {
  // Healthy unless the latest connection attempt or op found no server (a store that just
  // opened connected to it, while its workers are still connecting).
  if (!failing_.load()) return {};
  std::lock_guard lock(health_mu_);
  return Health{false, last_error_.empty() ? "postgres: no connection" : last_error_};
}

void PgStore::set_unhealthy(const std::string& why) {
  std::lock_guard lock(health_mu_);
  last_error_ = "postgres: " + why;
  failing_ = true;
}

void PgStore::enqueue(std::unique_ptr<Op> op) {
  {
    std::lock_guard lock(mu_);
    if (!closing_ && queue_.size() < cfg_.max_queue) {
      queue_.push_back(std::move(op));
      cv_.notify_one();
      return;
    }
    op->fail(closing_ ? unavailable() : unavailable("store queue is full"));
  }
  op->complete();
}

void PgStore::worker_loop() {
  std::unique_ptr<PgConn> conn;
  const auto min_backoff = std::chrono::milliseconds(std::max<uint32_t>(1, cfg_.reconnect_min_ms));
  const auto max_backoff = std::max(min_backoff, std::chrono::milliseconds(cfg_.reconnect_max_ms));
  std::minstd_rand jitter(std::random_device{}());
  auto backoff = min_backoff;
  Clock::time_point next_attempt{};
  std::string conn_error;
  auto try_connect = [&] {
    try {
      conn = std::make_unique<PgConn>(cfg_.conninfo, static_cast<int>(cfg_.connect_timeout_s),
                                      static_cast<int>(cfg_.statement_timeout_ms));
      ++connected_;
      failing_ = false;
      backoff = min_backoff;
    } catch (const PgError& e) {
      conn_error = e.what();
      set_unhealthy(conn_error);
      // Up to a quarter less than the backoff: workers (and nodes) do not all knock at once.
      auto spread = backoff.count() / 4 + 1;
      next_attempt = Clock::now() + backoff - std::chrono::milliseconds(jitter() % spread);
      backoff = std::min(backoff * 2, max_backoff);
    }
  };
  auto drop = [&](const std::string& why) {
    conn.reset();
    --connected_;
    conn_error = why;
    set_unhealthy(why);
    spdlog::warn("store: postgres connection lost: {}", why);
    next_attempt = Clock::now();  // reconnect at once, then back off
  };
  try_connect();
  for (;;) {
    std::vector<std::unique_ptr<Op>> batch;
    // The order keys this batch holds, given back once it has run (whatever the outcome).
    std::vector<std::string> held;
    struct Release {
      PgStore* store;
      std::vector<std::string>& keys;
      ~Release() {
        if (keys.empty()) return;
        {
          std::lock_guard lock(store->mu_);
          for (const auto& k : keys)
            if (auto it = store->busy_keys_.find(k);
                it != store->busy_keys_.end() && --it->second == 0)
              store->busy_keys_.erase(it);
        }
        store->cv_.notify_all();
      }
    } release{this, held};
    {
      std::unique_lock lock(mu_);
      // Without a connection, a worker takes ops only while no worker has one (they then
      // fail fast with unavailable); otherwise it waits to reconnect and leaves them to
      // the others.
      // An op whose order key another batch holds waits for it (see Op::order_key).
      auto free = [&](const Op& op) {
        return op.order_key.empty() || !busy_keys_.contains(op.order_key);
      };
      auto first_free = [&]() -> size_t {
        size_t i = 0;
        while (i < queue_.size() && !free(*queue_[i])) ++i;
        return i;
      };
      auto can_take = [&] {
        return !queue_.empty() && (conn || connected_.load() == 0) && first_free() < queue_.size();
      };
      // A queue whose every op waits for a key another batch holds is nothing to take: wait
      // for the key's release (Release notifies), not spin over the queue.
      if (conn)
        cv_.wait_for(lock, kIdleCheck, [&] { return (closing_ && queue_.empty()) || can_take(); });
      else
        cv_.wait_until(lock, next_attempt,
                       [&] { return (closing_ && queue_.empty()) || can_take(); });
      if (closing_ && queue_.empty()) break;
      if (can_take()) {
        // A read runs alone. A write takes the writes queued behind it into its group commit,
        // also past reads in between (no order between ops is promised), looking a bounded
        // way into the queue.
        // Writes whose key another batch holds stay queued (in their order); the keys this
        // batch takes are held until it has run.
        auto take = [&](size_t i) {
          if (!queue_[i]->order_key.empty()) {
            ++busy_keys_[queue_[i]->order_key];
            held.push_back(queue_[i]->order_key);
          }
          batch.push_back(std::move(queue_[i]));
          queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
        };
        const size_t first = first_free();
        bool write = queue_[first]->write;
        take(first);
        if (write) {
          size_t window = std::min<size_t>(queue_.size(), size_t{cfg_.max_batch} * 4);
          for (size_t i = first; i < window && batch.size() < cfg_.max_batch;) {
            if (queue_[i]->write &&
                (free(*queue_[i]) ||
                 std::find(held.begin(), held.end(), queue_[i]->order_key) != held.end())) {
              take(i);
              --window;
            } else {
              ++i;
            }
          }
        }
        if (!queue_.empty()) cv_.notify_one();
      }
    }
    if (!conn && Clock::now() >= next_attempt) try_connect();
    if (batch.empty()) {
      // Idle: notice a server that went away (health) before an op has to.
      if (conn && !conn->alive()) drop(conn->error_message());
      continue;
    }
    if (conn && !conn->alive()) {  // closed by the server since its last use: replace it now
      drop(conn->error_message());
      try_connect();
    }
    if (!conn) {
      for (auto& op : batch) op->fail(unavailable("postgres: " + conn_error));
      complete_all(batch);
      continue;
    }
    bool alive = batch.front()->write ? run_writes(*conn, batch) : run_read(*conn, *batch.front());
    if (alive && conn->ok()) {
      failing_ = false;
    } else {
      drop(conn->error_message());
    }
  }
  if (conn) --connected_;
}

bool PgStore::run_read(PgConn& conn, Op& op) {
  try {
    // Sent with the op's first statement (PgConn::later): one round trip less per read.
    conn.later("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    op.apply(conn);
    conn.run("COMMIT");
  } catch (const PgError& e) {
    if (e.connection_lost() || !conn.ok()) {
      op.fail(unavailable(fmt::format("postgres: {}", e.what())));
      op.complete();
      return false;
    }
    try {
      conn.run("ROLLBACK");
    } catch (const PgError&) {
    }
    op.fail(classify(e));
  }
  op.complete();
  return true;
}

bool PgStore::run_writes(PgConn& conn, std::vector<std::unique_ptr<Op>>& batch) {
  for (size_t seen = largest_batch_.load(); batch.size() > seen;)
    if (largest_batch_.compare_exchange_weak(seen, batch.size())) break;
  // One op alone needs no savepoint: its failure rolls the whole transaction back.
  const bool savepoints = batch.size() > 1;
  std::minstd_rand jitter(std::random_device{}());
  for (uint32_t attempt = 0;; ++attempt) {
    try {
      // The transaction and savepoint statements are queued (PgConn::later) and go with the
      // ops' own statements: BEGIN with the first op's first statement, a savepoint's
      // release with the next op's, the last with COMMIT.
      conn.later("BEGIN");
      // A group commit holds the locks of every op until its end, so two of them (two
      // workers, two nodes) can wait on each other where single ops, which lock in one order
      // (the chat, the user's chat row, the users' logs sorted), cannot. Such a batch gives
      // up after a short wait instead of the server's deadlock timeout and runs again one
      // op per transaction.
      if (savepoints) conn.later(kBatchLockTimeout);
      auto roll_back_op = [&conn] {
        conn.later("ROLLBACK TO SAVEPOINT op");
        conn.later("RELEASE SAVEPOINT op");
      };
      for (auto& op : batch) {
        for (int rerun = 0;; ++rerun) {
          if (savepoints) conn.later("SAVEPOINT op");
          try {
            op->apply(conn);
            conn.flush();  // the op's own queued statements: their errors are the op's
          } catch (const PgError& e) {
            if (!savepoints || e.connection_lost() || e.retryable() || e.sqlstate() == kLockTimeout)
              throw;
            roll_back_op();
            // A racing insert (a direct chat, an idempotency record) committed first: the
            // op runs again and now finds it.
            if (e.sqlstate() == kUniqueViolation && rerun < kMaxOpReruns) continue;
            op->fail(classify(e));
            break;
          }
          if (savepoints) {
            if (op->failed())
              roll_back_op();
            else
              conn.later("RELEASE SAVEPOINT op");
          }
          break;
        }
      }
      conn.run(!savepoints && batch.front()->failed() ? "ROLLBACK" : "COMMIT");
      complete_all(batch);
      return true;
    } catch (const PgError& e) {
      if (e.connection_lost() || !conn.ok()) {
        // Nothing committed, or the COMMIT's outcome is unknown: either way the op is
        // retryable (appends are idempotent by client_msg_id).
        for (auto& op : batch) op->fail(unavailable(fmt::format("postgres: {}", e.what())));
        complete_all(batch);
        return false;
      }
      try {
        conn.run("ROLLBACK");
      } catch (const PgError&) {
        if (!conn.ok()) {
          for (auto& op : batch) op->fail(unavailable("postgres: connection lost"));
          complete_all(batch);
          return false;
        }
      }
      if (savepoints && (e.retryable() || e.sqlstate() == kLockTimeout)) {
        ++retried_;
        spdlog::debug("store: postgres group commit of {} ops runs again one op at a time ({})",
                      batch.size(), e.sqlstate());
        return run_one_by_one(conn, batch);
      }
      bool again = e.retryable() || (!savepoints && e.sqlstate() == kUniqueViolation);
      if (again && attempt < cfg_.max_retries) {
        ++retried_;
        spdlog::debug("store: postgres transaction of {} ops runs again ({}): {}", batch.size(),
                      e.sqlstate(), e.what());
        // Deadlock or serialization failure: the other transaction goes on; run again after
        // a short random pause so that the two do not collide the same way.
        std::this_thread::sleep_for(std::chrono::microseconds((jitter() % 1000 + 100) *
                                                              std::min<uint32_t>(attempt + 1, 8)));
        continue;
      }
      Error err = classify(e);
      if (e.retryable()) err = unavailable(fmt::format("postgres: {}", e.what()));
      for (auto& op : batch) op->fail(err);
      complete_all(batch);
      return true;
    }
  }
}

bool PgStore::run_one_by_one(PgConn& conn, std::vector<std::unique_ptr<Op>>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    std::vector<std::unique_ptr<Op>> one;
    one.push_back(std::move(batch[i]));
    if (!run_writes(conn, one)) {
      for (size_t j = i + 1; j < batch.size(); ++j) {
        batch[j]->fail(unavailable("postgres: connection lost"));
        batch[j]->complete();
      }
      return false;
    }
  }
  return true;
}

}  // namespace parley::store::pg
