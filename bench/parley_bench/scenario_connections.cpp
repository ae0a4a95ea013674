// connections: N authenticated idle connections held for a while with heartbeats; connect
// rate, failures, and the server's memory per connection (RSS delta / N). With --processes
// K, K forked processes hold a share each (one process holds at most its descriptor limit).
#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <deque>
#include <thread>
#include <vector>

#include "child_processes.h"
#include "connection.h"
#include "report.h"
#include "run.h"
#include "scenarios.h"
#include "system.h"

namespace parley::bench {

namespace {

constexpr auto kTick = std::chrono::milliseconds(250);

// One process's share of a run: `count` connections from index `first` (so that the users
// of several processes differ and round-robin over the nodes goes on across them). A child
// of --processes (go_fd >= 0) says "open" on stdout once its connections are open, then
// holds them until the parent releases it instead of for --hold seconds.
struct Share {
  uint64_t count = 0;
  uint64_t first = 0;
  int go_fd = -1;
};

class IdleFleet final : public ConnectionListener {
 public:
  IdleFleet(Run& run, const ConnectionsOptions& o) : run_(run), o_(o) {}

  void create(uint64_t count, uint64_t first) {
    // std::deque: stable addresses without one allocation per connection.
    const size_t nodes = run_.options().nodes();
    for (uint64_t i = 0; i < count; ++i)
      conns_.emplace_back(run_.worker(i), *this, uint32_t(first + i),
                          round_robin_node(first + i, nodes));
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

// The whole run's bound: the hold, a minute, and the connects at 200 per second.
double run_timeout(const CommonOptions& common, const ConnectionsOptions& o) {
  return common.timeout_s > 0 ? common.timeout_s
                              : o.hold_s + 60 + static_cast<double>(o.count) / 200;
}

// The servers' RSS (one --server-pid per --url) at one moment: per server and the sum (0 when
// one of them is unknown: no --server-pid, or /proc not readable).
struct ServerRss {
  std::vector<uint64_t> per_node;
  uint64_t sum = 0;
};

ServerRss read_servers(const std::vector<int>& pids) {
  ServerRss out;
  for (int pid : pids) {
    out.per_node.push_back(rss_kib(pid).value_or(0));
    if (out.per_node.back() == 0) return ServerRss{};
    out.sum += out.per_node.back();
  }
  return out;
}

// The servers' memory figures: RSS before, connected and held, KiB per connection in all and,
// with several servers, per server over the connections it holds (`by_node`).
void add_server_memory(boost::json::object& r, const ServerRss& before, const ServerRss& open,
                       const ServerRss& held, const std::vector<uint64_t>& by_node,
                       uint64_t connected) {
  auto delta = [](uint64_t from, uint64_t to) {
    return static_cast<double>(static_cast<int64_t>(to) - static_cast<int64_t>(from));
  };
  if (!before.sum || !held.sum || !connected) {
    r["server_kib_per_conn"] = nullptr;
    return;
  }
  r["server_rss_before_kib"] = before.sum;
  r["server_rss_connected_kib"] = open.sum;
  r["server_rss_held_kib"] = held.sum;
  r["server_kib_per_conn"] = delta(before.sum, held.sum) / static_cast<double>(connected);
  if (by_node.size() < 2) return;
  boost::json::array held_kib, per_node;
  for (size_t i = 0; i < by_node.size(); ++i) {
    held_kib.push_back(held.per_node[i]);
    if (by_node[i])
      per_node.push_back(delta(before.per_node[i], held.per_node[i]) /
                         static_cast<double>(by_node[i]));
    else
      per_node.push_back(nullptr);
  }
  r["node_server_rss_held_kib"] = std::move(held_kib);
  r["node_server_kib_per_conn"] = std::move(per_node);
}

// The fields of the message scenarios, which mean nothing here.
void add_no_messages(boost::json::object& r) {
  r["lost"] = 0;
  r["duplicated"] = 0;
  r["reordered"] = 0;
  r["e2e_p50_ms"] = nullptr;
  r["e2e_p99_ms"] = nullptr;
  r["e2e_max_ms"] = nullptr;
  r["ack_p99_ms"] = nullptr;
}

int run_share(const CommonOptions& common, const ConnectionsOptions& o, const Share& share) {
  const size_t nodes = common.nodes();
  Run run(common);
  if (share.count + 16 > run.socket_budget()) {
    std::fprintf(stderr,
                 "connections: %llu connections do not fit this process's descriptor limit "
                 "(%llu sockets); give --processes\n",
                 static_cast<unsigned long long>(share.count),
                 static_cast<unsigned long long>(run.socket_budget()));
    return 2;
  }
  uint64_t deadline = now_ns() + static_cast<uint64_t>(run_timeout(common, o) * 1e9);
  ServerRss before = read_servers(o.server_pids);
  uint64_t self_before = rss_kib(getpid()).value_or(0);

  IdleFleet fleet(run, o);
  fleet.create(share.count, share.first);
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
        return t.connected + t.failed >= share.count;
      },
      deadline, line);
  uint64_t t1 = now_ns();
  auto after_open = run.totals();
  double connect_s = static_cast<double>(t1 - t0) / 1e9;
  fleet.start_heartbeats();
  ServerRss open = read_servers(o.server_pids);
  if (share.go_fd >= 0) {
    std::printf("open\n");
    std::fflush(stdout);
    if (opened) run.wait([&] { return released(share.go_fd); }, deadline, line);
  } else {
    uint64_t hold_end = std::min(deadline, now_ns() + static_cast<uint64_t>(o.hold_s * 1e9));
    if (opened) run.wait([] { return false; }, hold_end, line);
  }
  ServerRss held_rss = read_servers(o.server_pids);
  uint64_t self_held = rss_kib(getpid()).value_or(0);
  auto held = run.totals();
  fleet.close_all();
  run.finish();
  auto t = run.totals();

  boost::json::object r;
  r["scenario"] = "connections";
  r["requested"] = share.count;
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
  std::vector<uint64_t> by_node(after_open.connected_by_node.begin(),
                                after_open.connected_by_node.begin() + nodes);
  add_server_memory(r, before, open, held_rss, by_node, after_open.connected);
  if (self_before && self_held && after_open.connected)
    r["bench_kib_per_conn"] =
        static_cast<double>(static_cast<int64_t>(self_held) - static_cast<int64_t>(self_before)) /
        static_cast<double>(after_open.connected);
  add_no_messages(r);
  r["completed"] = opened && !run.interrupted();
  print_report(r, common.json);
  bool ok = opened && t.failed + held.dropped == 0 && held.heartbeat_errors == 0 &&
            after_open.connected == share.count;
  return ok ? 0 : 1;
}

// --processes K: K forked children hold a share each; the parent measures the servers'
// memory while all of them hold their connections and reports the sums.
int run_forked(const CommonOptions& common, const ConnectionsOptions& o) {
  const size_t nodes = common.nodes();
  const unsigned k_n = o.processes;
  if (o.count < k_n) {
    std::fprintf(stderr, "connections: --count is smaller than --processes\n");
    return 2;
  }
  const double timeout = run_timeout(common, o);
  // Children bound their own runs by `timeout`; the parent waits a little longer.
  const uint64_t deadline = now_ns() + static_cast<uint64_t>((timeout + 30) * 1e9);
  ServerRss before = read_servers(o.server_pids);

  ChildSet children;
  uint64_t t0 = now_ns();
  bool spawned = children.spawn(k_n, [&](unsigned k, int go_fd) {
    CommonOptions child_common = common;
    child_common.json = true;
    child_common.no_progress = true;
    child_common.timeout_s = timeout;
    ConnectionsOptions child_o = o;
    child_o.server_pids.clear();
    child_o.processes = 1;
    Share share;
    share.count = o.count / k_n + (k < o.count % k_n ? 1 : 0);
    share.first = k * (o.count / k_n) + std::min<uint64_t>(k, o.count % k_n);
    share.go_fd = go_fd;
    return run_share(child_common, child_o, share);
  });
  if (!spawned) {
    std::fprintf(stderr, "connections: could not fork %u processes\n", k_n);
    return 2;
  }
  size_t open_n = children.wait_for_line("open", deadline);
  uint64_t t1 = now_ns();
  ServerRss open = read_servers(o.server_pids);
  if (open_n == k_n) {
    uint64_t hold_end = std::min(deadline, now_ns() + static_cast<uint64_t>(o.hold_s * 1e9));
    while (now_ns() < hold_end) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ServerRss held = read_servers(o.server_pids);
  auto results = children.collect(deadline);

  // Sums of the children's reports.
  uint64_t connected = 0, failed = 0, dropped = 0, heartbeats = 0, heartbeat_errors = 0;
  std::vector<uint64_t> by_node(nodes, 0);
  double bench_kib = 0;
  bool children_ok = true;
  for (size_t k = 0; k < results.size(); ++k) {
    const auto& out = results[k].output;
    size_t start = out.rfind("\n{");
    start = start == std::string::npos ? (out.starts_with("{") ? 0 : std::string::npos) : start + 1;
    boost::system::error_code ec;
    boost::json::value v;
    if (start != std::string::npos) v = boost::json::parse(out.substr(start), ec);
    if (start == std::string::npos || ec || !v.is_object()) {
      std::fprintf(stderr, "connections: process %zu (exit %d) gave no report\n", k,
                   results[k].exit_code);
      children_ok = false;
      continue;
    }
    const auto& r = v.get_object();
    auto num = [&](const char* key) -> uint64_t {
      const auto* x = r.if_contains(key);
      return x && x->is_int64()    ? static_cast<uint64_t>(x->get_int64())
             : x && x->is_uint64() ? x->get_uint64()
                                   : 0;
    };
    uint64_t c = num("connections");
    connected += c;
    failed += num("failed");
    dropped += num("dropped_during_hold");
    heartbeats += num("heartbeats");
    heartbeat_errors += num("heartbeat_errors");
    if (const auto* per = r.if_contains("node_connections"); per && per->is_array())
      for (size_t i = 0; i < nodes && i < per->get_array().size(); ++i)
        if (per->get_array()[i].is_int64())
          by_node[i] += static_cast<uint64_t>(per->get_array()[i].get_int64());
    if (const auto* b = r.if_contains("bench_kib_per_conn"); b && b->is_double())
      bench_kib += b->get_double() * static_cast<double>(c);
    if (nodes == 1) by_node[0] += c;
    if (results[k].exit_code != 0) children_ok = false;
  }

  double connect_s = static_cast<double>(t1 - t0) / 1e9;
  boost::json::object r;
  r["scenario"] = "connections";
  r["requested"] = o.count;
  r["connections"] = connected;
  r["processes"] = k_n;
  if (nodes > 1) {
    r["urls"] = nodes;
    boost::json::array per;
    for (uint64_t n : by_node) per.push_back(n);
    r["node_connections"] = std::move(per);
  }
  r["failed"] = failed;
  r["dropped_during_hold"] = dropped;
  r["connect_s"] = connect_s;
  r["connect_rate"] = connect_s > 0 ? static_cast<double>(connected) / connect_s : 0.0;
  r["throughput"] = r["connect_rate"];
  r["hold_s"] = o.hold_s;
  r["users"] = o.users ? o.users : o.count;
  r["heartbeats"] = heartbeats;
  r["heartbeat_errors"] = heartbeat_errors;
  add_server_memory(r, before, open, held, by_node, connected);
  if (connected) r["bench_kib_per_conn"] = bench_kib / static_cast<double>(connected);
  add_no_messages(r);
  r["completed"] = open_n == k_n;
  print_report(r, common.json);
  bool ok = children_ok && open_n == k_n && failed + dropped == 0 && heartbeat_errors == 0 &&
            connected == o.count;
  return ok ? 0 : 1;
}

}  // namespace

int run_connections(const CommonOptions& common, const ConnectionsOptions& o) {
  if (!o.server_pids.empty() && o.server_pids.size() != common.nodes()) {
    std::fprintf(stderr, "connections: give --server-pid once per --url (%zu), in the same order\n",
                 common.nodes());
    return 2;
  }
  if (o.processes > 1) return run_forked(common, o);
  return run_share(common, o, Share{o.count, 0, -1});
}

}  // namespace parley::bench
