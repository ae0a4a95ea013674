// One client thread with its own io_context (the server's model too): connections are
// pinned to a worker at creation, so nothing on the hot path takes a lock.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "counters.h"
#include "json_reader.h"
#include "jwt.h"
#include "options.h"
#include "source_pool.h"

namespace parley::bench {

class Connection;

// What every worker shares; read-only during the run except the source pool.
struct Shared {
  const CommonOptions& options;
  JwtMinter minter;
  SourcePool sources;
};

class Worker {
 public:
  Worker(unsigned id, Shared& shared);
  ~Worker();

  unsigned id() const { return id_; }
  boost::asio::io_context& ioc() { return ioc_; }
  Shared& shared() { return shared_; }
  JsonReader& json() { return json_; }
  Counters& counters() { return counters_; }

  void start();
  // Cancels this worker's timers and lets its thread finish once the connections are closed;
  // after `grace` the io_context is stopped regardless. Call from another thread.
  void finish(std::chrono::milliseconds grace);

  template <class F>
  void post(F&& f) {
    boost::asio::post(ioc_, std::forward<F>(f));
  }

  // Opens `c` once fewer than this worker's share of --connect-concurrency are opening.
  void queue_open(Connection* c);
  // Called by a connection when its open finished, either way.
  void open_finished(Connection* c);

  // Calls `fn` every `period` on this thread until the worker stops.
  void every(std::chrono::nanoseconds period, std::function<void()> fn);

 private:
  struct Tick {
    explicit Tick(boost::asio::io_context& ioc) : timer(ioc) {}
    boost::asio::steady_timer timer;
    std::chrono::nanoseconds period{};
    std::function<void()> fn;
  };
  void arm(Tick* t);
  void pump_opens();
  void sweep_opens();

  unsigned id_;
  Shared& shared_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  JsonReader json_;
  Counters counters_;
  std::thread thread_;
  std::deque<Connection*> waiting_;
  std::vector<Connection*> opening_;
  unsigned open_limit_;
  boost::asio::steady_timer sweep_timer_;
  std::vector<std::unique_ptr<Tick>> ticks_;
  bool stopping_ = false;
  std::atomic<bool> done_{false};
};

}  // namespace parley::bench
