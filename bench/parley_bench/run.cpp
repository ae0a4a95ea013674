#include "run.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json/array.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "system.h"

namespace parley::bench {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted = true; }

}  // namespace

Run::Run(const CommonOptions& options)
    : options_(options),
      shared_{options, JwtMinter(options.jwt_secret, options.jwt_ttl_s),
              SourcePool(options.target.address, options.source_addrs)},
      nofile_(raise_nofile_limit()),
      progress_(!options.no_progress && stderr_is_tty()) {
  for (unsigned i = 0; i < options.threads; ++i)
    workers_.push_back(std::make_unique<Worker>(i, shared_));
  std::signal(SIGINT, on_sigint);
  std::signal(SIGPIPE, SIG_IGN);
}

Run::~Run() { finish(std::chrono::milliseconds(100)); }

void Run::on_each(const std::function<void(Worker&)>& fn) {
  for (auto& w : workers_) w->post([fn, wp = w.get()] { fn(*wp); });
}

void Run::start() {
  started_ns_ = now_ns();
  for (auto& w : workers_) w->start();
}

void Run::finish(std::chrono::milliseconds grace) {
  for (auto& w : workers_) w->finish(grace);
  clear_line();
}

Totals Run::totals() const {
  Totals t;
  for (const auto& w : workers_) t.add(w->counters());
  return t;
}

void Run::histograms(Histogram& ack, Histogram& e2e) const {
  for (const auto& w : workers_) {
    ack.merge(w->counters().ack_ns);
    e2e.merge(w->counters().e2e_ns);
  }
}

bool Run::interrupted() const { return g_interrupted.load(); }

double Run::elapsed_s() const { return static_cast<double>(now_ns() - started_ns_) / 1e9; }

bool Run::wait(const std::function<bool()>& done, uint64_t deadline_ns,
               const std::function<std::string()>& line) {
  while (true) {
    if (done()) return true;
    if (now_ns() >= deadline_ns || interrupted()) return false;
    if (progress_ && now_ns() - last_progress_ns_ > 250'000'000) {
      last_progress_ns_ = now_ns();
      show(line());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Run::show(const std::string& line) {
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  line_shown_ = true;
}

void Run::clear_line() {
  if (!line_shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  line_shown_ = false;
}

double to_ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

void add_percentiles(boost::json::object& out, const std::string& prefix, const Histogram& h) {
  auto r = [](double v) {
    return static_cast<double>(static_cast<int64_t>(v * 1000 + 0.5)) / 1000;
  };
  out[prefix + "_p50_ms"] = r(to_ms(h.percentile(50)));
  out[prefix + "_p90_ms"] = r(to_ms(h.percentile(90)));
  out[prefix + "_p99_ms"] = r(to_ms(h.percentile(99)));
  out[prefix + "_p999_ms"] = r(to_ms(h.percentile(99.9)));
  out[prefix + "_max_ms"] = r(to_ms(h.max()));
}

void add_nodes(boost::json::object& out, const CommonOptions& o, const Totals& t) {
  if (o.nodes() < 2) return;
  out["urls"] = o.nodes();
  boost::json::array per;
  for (size_t i = 0; i < o.nodes(); ++i) per.push_back(t.connected_by_node[i]);
  out["node_connections"] = std::move(per);
}

}  // namespace parley::bench
