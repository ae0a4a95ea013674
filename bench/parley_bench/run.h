// The frame of every scenario: the shared state, one Worker per thread, the main thread's
// wait loop (bounded in time, interruptible with Ctrl-C) and the live progress line.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "options.h"
#include "worker.h"

namespace parley::bench {

class Run {
 public:
  explicit Run(const CommonOptions& options);
  ~Run();

  const CommonOptions& options() const { return options_; }
  Shared& shared() { return shared_; }
  size_t size() const { return workers_.size(); }
  Worker& worker(size_t i) { return *workers_[i % workers_.size()]; }
  // Runs `fn(worker)` on every worker's thread.
  void on_each(const std::function<void(Worker&)>& fn);

  void start();
  // Cancels timers and joins the threads (each gets `grace` to close its connections).
  void finish(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

  Totals totals() const;
  void histograms(Histogram& ack, Histogram& e2e) const;

  // Polls every 50 ms until `done()` is true (returns true), `deadline_ns` passes or Ctrl-C
  // (returns false). Meanwhile shows `line()` as the progress line on a terminal.
  bool wait(const std::function<bool()>& done, uint64_t deadline_ns,
            const std::function<std::string()>& line);
  bool interrupted() const;
  // Seconds since start() as the progress line's prefix.
  double elapsed_s() const;

  // The largest number of sockets this process can hold, given its descriptor limit.
  uint64_t socket_budget() const { return nofile_ > 64 ? nofile_ - 64 : 0; }

 private:
  void show(const std::string& line);
  void clear_line();

  const CommonOptions& options_;
  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t nofile_;
  uint64_t started_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  bool progress_;
  bool line_shown_ = false;
};

// "p99 3.2ms" style formatting of nanoseconds as milliseconds.
double to_ms(uint64_t ns);
// Adds `<prefix>_p50_ms`, p90, p99, p999, max to `out`.
void add_percentiles(boost::json::object& out, const std::string& prefix, const Histogram& h);
// With several --url: adds `urls` (how many) and `node_connections` (authenticated
// connections per URL, in --url order, from `t`). Nothing with one URL.
void add_nodes(boost::json::object& out, const CommonOptions& o, const Totals& t);

}  // namespace parley::bench
