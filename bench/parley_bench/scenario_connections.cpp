// connections: N authenticated idle connections held for a while with heartbeats; connect
// rate, failures, and the server's memory per connection (RSS delta / N).
#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdio>
#include <deque>
#include <vector>

#include "connection.h"
#include "report.h"
#include "run.h"
#include "scenarios.h"
#include "system.h"

namespace parley::bench {

namespace {

constexpr auto kTick = std::chrono::milliseconds(250);

class IdleFleet final : public ConnectionListener {
 public:
  IdleFleet(Run& run, const ConnectionsOptions& o) : run_(run), o_(o) {}

  void create(uint64_t count) {
    // std::deque: stable addresses without one allocation per connection.
    const size_t nodes = run_.options().nodes();
    for (uint64_t i = 0; i < count; ++i)
      conns_.emplace_back(run_.worker(i), *this, uint32_t(i), round_robin_node(i, nodes));
  }
  void open_all() {
    for (auto& c : conns_) {
      auto* cp = &c;
      c.worker().post([cp] { cp->queue_open(); });
    }
  }
  // Each worker walks its connections every tick; connection i pings in slot i % slots.
  void start_heartbeats() {
    uint64_t slots =
        std::max<uint64_t>(1, static_cast<uint64_t>(o_.heartbeat_s * 1000 / kTick.count()));
    size_t workers = run_.size();
    for (size_t w = 0; w < workers; ++w) {
      run_.worker(w).post([this, w, workers, slots] {
        auto tick = std::make_shared<uint64_t>(0);
        run_.worker(w).every(kTick, [this, w, workers, slots, tick] {
          uint64_t slot = (*tick)++ % slots;
          for (uint64_t i = w + slot * workers; i < conns_.size(); i += slots * workers) {
            auto& c = conns_[i];
            if (!c.writable()) continue;
            c.out().clear();
            fmt::format_to(std::back_inserter(c.out()), R"({{"type":"ping","id":{}}})", i + 1);
            c.write();
          }
        });
      });
    }
  }
  void close_all() {
    for (auto& c : conns_) {
      auto* cp = &c;
      c.worker().post([cp] { cp->close(); });
    }
  }

  std::string token(Connection& c) override {
    // fmt rather than string concatenation: GCC 12 reports a false -Wrestrict on the latter.
    const auto& prefix = run_.options().user_prefix;
    if (o_.users == 0)
      return run_.shared().minter.mint(fmt::format("{}c{}", prefix, c.index()), "");
    return run_.shared().minter.mint(fmt::format("{}c{}", prefix, c.index() % o_.users),
                                     fmt::format("d{}", c.index()));
  }
  void on_ready(Connection&, uint64_t) override {}
  void on_frame(Connection& c, const boost::json::object& f) override {
    auto type = get_str(f, "type");
    if (type == "ok") {
      c.worker().counters().heartbeats.add();
    } else if (type == "error") {
      c.worker().counters().heartbeat_errors.add();
      if (errors_logged_++ < 5)
        std::fprintf(stderr, "\nheartbeat error: %s\n", std::string(get_str(f, "code")).c_str());
    }
  }
  void on_writable(Connection&) override {}
  void on_down(Connection& c, Down how, std::string_view why) override {
    if (how != Down::closed && errors_logged_++ < 5)
      std::fprintf(stderr, "\nconnection %u %s: %.*s\n", c.index(),
                   how == Down::failed ? "failed" : "dropped", int(why.size()), why.data());
  }

 private:
  Run& run_;
  const ConnectionsOptions& o_;
  std::deque<Connection> conns_;
  std::atomic<int> errors_logged_{0};
};

}  // namespace

int run_connections(const CommonOptions& common, const ConnectionsOptions& o) {
  const size_t nodes = common.nodes();
  if (!o.server_pids.empty() && o.server_pids.size() != nodes) {
    std::fprintf(stderr, "connections: give --server-pid once per --url (%zu), in the same order\n",
                 nodes);
    return 2;
  }
  Run run(common);
  if (o.count + 16 > run.socket_budget()) {
    std::fprintf(stderr,
                 "connections: --count %llu does not fit this process's descriptor limit "
                 "(%llu sockets); run several parley-bench processes\n",
                 static_cast<unsigned long long>(o.count),
                 static_cast<unsigned long long>(run.socket_budget()));
    return 2;
  }
  double timeout =
      common.timeout_s > 0 ? common.timeout_s : o.hold_s + 60 + static_cast<double>(o.count) / 200;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout * 1e9);
  // 0: unknown (no --server-pid, or /proc not readable).
  auto rss = [](int pid) -> uint64_t { return pid ? rss_kib(pid).value_or(0) : 0; };
  // Per server (one per --url), and their sum; empty without --server-pid.
  auto rss_all = [&](std::vector<uint64_t>& per) {
    per.clear();
    uint64_t sum = 0;
    for (int pid : o.server_pids) {
      per.push_back(rss(pid));
      if (per.back() == 0) return uint64_t{0};  // one unknown: the sum is unknown
      sum += per.back();
    }
    return sum;
  };
  std::vector<uint64_t> node_before, node_open, node_held;
  uint64_t rss_before = rss_all(node_before);
  uint64_t self_before = rss(getpid());

  IdleFleet fleet(run, o);
  fleet.create(o.count);
  run.start();
  uint64_t t0 = now_ns();
  fleet.open_all();
  auto line = [&] {
    auto t = run.totals();
    return fmt::format("[connections] {:.1f}s connected {} failed {} dropped {} heartbeats {}",
                       run.elapsed_s(), t.connected, t.failed, t.dropped, t.heartbeats);
  };
  bool opened = run.wait(
      [&] {
        auto t = run.totals();
        return t.connected + t.failed >= o.count;
      },
      deadline, line);
  uint64_t t1 = now_ns();
  auto after_open = run.totals();
  double connect_s = static_cast<double>(t1 - t0) / 1e9;
  fleet.start_heartbeats();
  uint64_t rss_open = rss_all(node_open);
  uint64_t hold_end = std::min(deadline, now_ns() + static_cast<uint64_t>(o.hold_s * 1e9));
  if (opened) run.wait([] { return false; }, hold_end, line);
  uint64_t rss_held = rss_all(node_held);
  uint64_t self_held = rss(getpid());
  auto held = run.totals();
  fleet.close_all();
  run.finish();
  auto t = run.totals();

  boost::json::object r;
  r["scenario"] = "connections";
  r["requested"] = o.count;
  r["connections"] = after_open.connected;
  add_nodes(r, common, after_open);
  r["failed"] = t.failed + held.dropped;
  r["dropped_during_hold"] = held.dropped;
  r["connect_s"] = connect_s;
  r["connect_rate"] = connect_s > 0 ? static_cast<double>(after_open.connected) / connect_s : 0.0;
  r["throughput"] = r["connect_rate"];
  r["hold_s"] = o.hold_s;
  r["users"] = o.users ? o.users : o.count;
  r["heartbeats"] = held.heartbeats;
  r["heartbeat_errors"] = held.heartbeat_errors;
  auto per_conn = [&](uint64_t before, uint64_t after) {
    return static_cast<double>(static_cast<int64_t>(after) - static_cast<int64_t>(before)) /
           static_cast<double>(after_open.connected);
  };
  if (rss_before && rss_held && after_open.connected) {
    r["server_rss_before_kib"] = rss_before;
    r["server_rss_connected_kib"] = rss_open;
    r["server_rss_held_kib"] = rss_held;
    r["server_kib_per_conn"] = per_conn(rss_before, rss_held);
    if (nodes > 1) {  // each server's RSS delta over the connections it holds
      boost::json::array held_kib, per_node;
      for (size_t i = 0; i < nodes; ++i) {
        held_kib.push_back(node_held[i]);
        uint64_t n = after_open.connected_by_node[i];
        if (n)
          per_node.push_back(static_cast<double>(static_cast<int64_t>(node_held[i]) -
                                                 static_cast<int64_t>(node_before[i])) /
                             static_cast<double>(n));
        else
          per_node.push_back(nullptr);
      }
      r["node_server_rss_held_kib"] = std::move(held_kib);
      r["node_server_kib_per_conn"] = std::move(per_node);
    }
  } else {
    r["server_kib_per_conn"] = nullptr;
  }
  if (self_before && self_held && after_open.connected)
    r["bench_kib_per_conn"] = per_conn(self_before, self_held);
  r["lost"] = 0;
  r["duplicated"] = 0;
  r["reordered"] = 0;
  r["e2e_p50_ms"] = nullptr;
  r["e2e_p99_ms"] = nullptr;
  r["e2e_max_ms"] = nullptr;
  r["ack_p99_ms"] = nullptr;
  r["completed"] = opened && !run.interrupted();
  print_report(r, common.json);
  bool ok = opened && t.failed + held.dropped == 0 && held.heartbeat_errors == 0 &&
            after_open.connected == o.count;
  return ok ? 0 : 1;
}

}  // namespace parley::bench
