// direct: P sender/receiver pairs at an aggregate rate R (0: as fast as a bounded window of
// sends in flight allows). Each sender paces itself from the worker's 1 ms tick, builds its
// frames into one reused buffer and keeps the send times of its window in a ring; each
// receiver checks the per-chat seq, the sender's counter and its own pts.
#include <fmt/format.h>

#include <bit>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>
#include <deque>
#include <vector>

#include "body.h"
#include "connection.h"
#include "order_check.h"
#include "report.h"
#include "run.h"
#include "scenarios.h"
#include "system.h"

namespace parley::bench {

namespace {

struct Sender {
  std::string to;         // the receiver's user id
  uint64_t issued = 0;    // sends written (ids 1 .. issued)
  uint64_t answered = 0;  // acks + errors
  uint64_t acked = 0;
  uint64_t limit = 0;  // most sends this run (rate * duration, or unbounded)
  // Where in its period this sender's sends fall, in (0, 1]: spread evenly over the senders,
  // so that the offered load arrives smoothly instead of in one burst per period.
  double phase = 1;
  std::vector<uint64_t> sent_ns;  // ring, indexed by id & mask
  uint64_t mask = 0;
};

struct Receiver {
  uint64_t pts = 0;  // cursor
  OrderCheck by_counter;
  OrderCheck by_seq;
};

class Pairs final : public ConnectionListener {
 public:
  Pairs(Run& run, const DirectOptions& o) : run_(run), o_(o) {
    uint64_t ring = std::bit_ceil<uint64_t>(std::max<uint32_t>(o.window, 1));
    per_sender_rate_ = o.rate / o.pairs;
    for (uint32_t i = 0; i < o.pairs; ++i) {
      // Pair i: sender conn 2i and receiver conn 2i+1 on the same worker index parity mix;
      // with several --url, on two different nodes (options.h).
      const size_t nodes = run.options().nodes();
      conns_.emplace_back(run.worker(2 * i), *this, 2 * i, direct_sender_node(i, nodes));
      conns_.emplace_back(run.worker(2 * i + 1), *this, 2 * i + 1, direct_receiver_node(i, nodes));
      auto& s = senders_.emplace_back();
      s.to = user(2 * i + 1);
      s.sent_ns.assign(ring, 0);
      s.mask = ring - 1;
      s.limit = o.rate > 0 ? static_cast<uint64_t>(std::floor(per_sender_rate_ * o.duration_s))
                           : UINT64_MAX;
      s.phase = static_cast<double>(i + 1) / o.pairs;
      receivers_.emplace_back();
    }
  }

  std::string user(uint32_t conn) const {
    return fmt::format("{}{}{}", run_.options().user_prefix, conn % 2 ? "r" : "s", conn / 2);
  }

  void open_all() {
    for (auto& c : conns_) {
      auto* cp = &c;
      c.worker().post([cp] { cp->queue_open(); });
    }
  }

  // Starts sending at `start_ns` (same on every worker); stops issuing at `stop_ns`.
  void go(uint64_t start_ns, uint64_t stop_ns) {
    start_ns_ = start_ns;
    stop_ns_ = stop_ns;
    warm_ns_ = start_ns + static_cast<uint64_t>(o_.warmup_s * 1e9);
    for (size_t w = 0; w < run_.size(); ++w) {
      run_.worker(w).post([this, w] {
        running_on_[w] = true;
        run_.worker(w).every(std::chrono::milliseconds(1), [this, w] { tick(w); });
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
    return run_.shared().minter.mint(user(c.index()), "");
  }

  void on_ready(Connection& c, uint64_t pts) override {
    if (c.index() % 2) receivers_[c.index() / 2].pts = pts;
  }

  void on_frame(Connection& c, const boost::json::object& f) override {
    if (c.index() % 2 == 0)
      on_sender_frame(c, f);
    else
      on_receiver_frame(c, f);
  }

  void on_writable(Connection& c) override { pump(c); }

  void on_down(Connection& c, Down how, std::string_view why) override {
    if (how != Down::closed && logged_++ < 5)
      std::fprintf(stderr, "\nconnection %u (%s) %s: %.*s\n", c.index(), user(c.index()).c_str(),
                   how == Down::failed ? "failed" : "dropped", int(why.size()), why.data());
  }

  uint64_t in_flight() const {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s.issued - s.answered;  // racy: progress only
    return n;
  }
  uint64_t last_delivery_ns() const {
    uint64_t m = 0;
    for (const auto& v : last_delivery_) m = std::max(m, v.load());
    return m;
  }

  // Called after the workers have finished: acked messages that never arrived.
  uint64_t lost() const {
    uint64_t n = 0;
    for (size_t i = 0; i < senders_.size(); ++i) {
      uint64_t got = receivers_[i].by_counter.distinct();
      if (senders_[i].acked > got) n += senders_[i].acked - got;
    }
    return n;
  }
  // Which order a reordered delivery broke: the sender's (its counter) or the chat's (seq).
  uint64_t reordered_by_counter() const { return sum(reordered_by_counter_); }
  uint64_t reordered_by_seq() const { return sum(reordered_by_seq_); }

  uint64_t behind() const {  // sends due by the schedule but never issued
    if (o_.rate <= 0) return 0;
    uint64_t n = 0;
    for (const auto& s : senders_) n += s.limit - std::min(s.limit, s.issued);
    return n;
  }

 private:
  void tick(size_t w) {
    for (size_t i = w; i < conns_.size(); i += run_.size())  // this worker's connections
      if (i % 2 == 0) pump(conns_[i]);
  }

  uint64_t due(const Sender& s, uint64_t now) const {
    if (now < start_ns_) return 0;
    if (now >= stop_ns_) return s.issued;  // a backlog is reported, not sent late
    if (o_.rate <= 0) return UINT64_MAX;
    auto n = static_cast<uint64_t>(static_cast<double>(now - start_ns_) / 1e9 * per_sender_rate_ +
                                   s.phase);
    return std::min(n, s.limit);
  }

  void pump(Connection& c) {
    if (!c.writable() || c.index() % 2 || !running_on_[c.worker().id()]) return;
    auto& s = senders_[c.index() / 2];
    uint64_t now = now_ns();
    auto& out = c.out();
    out.clear();
    // Every send that is due and fits in the window goes in one message, one per line
    // (PROTOCOL.md §3.1), up to --batch: what a client with a backlog does.
    uint32_t n = 0;
    const uint64_t due_now = due(s, now);
    while (n < o_.batch && s.issued - s.answered < o_.window && s.issued < due_now) {
      uint64_t id = ++s.issued;
      s.sent_ns[id & s.mask] = now;
      if (n++) out += '\n';
      out += R"({"type":"send","id":)";
      fmt::format_to(std::back_inserter(out), R"({},"to":"{}","client_msg_id":"{}","body":)", id,
                     s.to, id);
      append_body(out, now, id, o_.size);
      out += '}';
    }
    if (n == 0) return;
    c.write();
    c.worker().counters().sent.add(n);
  }

  void on_sender_frame(Connection& c, const boost::json::object& f) {
    auto& s = senders_[c.index() / 2];
    auto& k = c.worker().counters();
    auto type = get_str(f, "type");
    uint64_t id = get_u64(f, "id");
    if (id == 0 || id > s.issued) {
      if (logged_++ < 5)
        std::fprintf(stderr, "\nunexpected frame on a sender's connection: %s\n",
                     boost::json::serialize(f).c_str());
      return k.bad_frames.add();
    }
    ++s.answered;
    if (type == "ok") {
      ++s.acked;
      k.acked.add();
      uint64_t sent = s.sent_ns[id & s.mask];
      if (sent >= warm_ns_) k.ack_ns.record(now_ns() - sent);
    } else {
      k.send_errors.add();
      if (logged_++ < 5)
        std::fprintf(stderr, "\nsend error: %s %s\n", std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
    }
    pump(c);
  }

  void on_receiver_frame(Connection& c, const boost::json::object& f) {
    if (get_str(f, "type") != "message") return;
    auto& r = receivers_[c.index() / 2];
    auto& k = c.worker().counters();
    uint64_t now = now_ns();
    uint64_t pts = get_u64(f, "pts");
    if (pts == r.pts + 1) {
      r.pts = pts;
    } else if (pts > r.pts + 1) {
      k.pts_gaps.add();
      r.pts = pts;
    }
    const auto* m = get_obj(f, "message");
    BodyStamp stamp;
    if (!m || !parse_body(get_str(*m, "body"), stamp)) return k.bad_frames.add();
    auto by_counter = r.by_counter.see(stamp.k);
    auto by_seq = r.by_seq.see(get_u64(*m, "seq"));
    using V = OrderCheck::Verdict;
    if (by_counter == V::duplicate) {
      k.duplicated.add();
      return;
    }
    if (by_counter == V::reordered || by_seq == V::reordered) k.reordered.add();
    if (by_counter == V::reordered) bump(reordered_by_counter_[c.worker().id()]);
    if (by_seq == V::reordered) bump(reordered_by_seq_[c.worker().id()]);
    k.delivered.add();
    if (stamp.send_ns >= warm_ns_) k.e2e_ns.record(now - stamp.send_ns);
    last_delivery_[c.worker().id()].store(now, std::memory_order_relaxed);
  }

  Run& run_;
  const DirectOptions& o_;
  double per_sender_rate_ = 0;
  std::deque<Connection> conns_;
  std::deque<Sender> senders_;
  std::deque<Receiver> receivers_;
  uint64_t start_ns_ = 0, stop_ns_ = 0, warm_ns_ = 0;
  std::array<bool, 256> running_on_{};
  std::array<std::atomic<uint64_t>, 256> last_delivery_{};
  // Per worker, one writer each.
  std::array<std::atomic<uint64_t>, 256> reordered_by_counter_{};
  std::array<std::atomic<uint64_t>, 256> reordered_by_seq_{};
  static void bump(std::atomic<uint64_t>& v) {
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  static uint64_t sum(const std::array<std::atomic<uint64_t>, 256>& a) {
    uint64_t n = 0;
    for (const auto& v : a) n += v.load(std::memory_order_relaxed);
    return n;
  }
  std::atomic<int> logged_{0};
};

}  // namespace

int run_direct(const CommonOptions& common, const DirectOptions& o) {
  if (o.pairs == 0 || o.duration_s <= 0) {
    std::fprintf(stderr, "direct: --pairs and --duration must be positive\n");
    return 2;
  }
  if (common.threads > 256) {
    std::fprintf(stderr, "direct: at most 256 --threads\n");
    return 2;
  }
  Run run(common);
  if (2ull * o.pairs + 16 > run.socket_budget()) {
    std::fprintf(stderr, "direct: 2 x --pairs does not fit the descriptor limit\n");
    return 2;
  }
  double timeout =
      common.timeout_s > 0 ? common.timeout_s : o.duration_s + o.drain_s + 60 + o.pairs / 200.0;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout * 1e9);
  Pairs pairs(run, o);
  run.start();
  pairs.open_all();
  auto conn_line = [&] {
    auto t = run.totals();
    return fmt::format("[direct] {:.1f}s connecting {}/{} failed {}", run.elapsed_s(), t.connected,
                       2 * o.pairs, t.failed);
  };
  bool opened = run.wait(
      [&] {
        auto t = run.totals();
        return t.connected + t.failed >= 2ull * o.pairs;
      },
      deadline, conn_line);
  auto after_open = run.totals();
  bool all_open = opened && after_open.failed == 0;

  uint64_t start = now_ns() + 20'000'000;
  uint64_t stop = start + static_cast<uint64_t>(o.duration_s * 1e9);
  uint64_t last_sent = 0, last_ns = start;
  double rate_now = 0;
  auto line = [&] {
    auto t = run.totals();
    uint64_t now = now_ns();
    if (now > last_ns) {
      rate_now = static_cast<double>(t.sent - last_sent) * 1e9 / static_cast<double>(now - last_ns);
      last_sent = t.sent;
      last_ns = now;
    }
    Histogram e2e;
    for (size_t i = 0; i < run.size(); ++i) e2e.merge(run.worker(i).counters().e2e_ns);
    return fmt::format(
        "[direct] {:.1f}s sent {} acked {} delivered {} rate {:.0f}/s in flight {} e2e p99 "
        "{:.2f}ms lost? {} dup {} reord {}",
        run.elapsed_s(), t.sent, t.acked, t.delivered, rate_now, pairs.in_flight(),
        to_ms(e2e.percentile(99)), t.acked > t.delivered ? t.acked - t.delivered : 0, t.duplicated,
        t.reordered);
  };
  bool finished = false;
  if (all_open) {
    pairs.go(start, stop);
    run.wait([] { return false; }, std::min(stop, deadline), line);
    uint64_t drain_end = std::min(deadline, now_ns() + static_cast<uint64_t>(o.drain_s * 1e9));
    finished = run.wait(
        [&] {
          auto t = run.totals();
          return t.acked + t.send_errors >= t.sent && t.delivered + t.duplicated >= t.acked;
        },
        drain_end, line);
  }
  pairs.close_all();
  run.finish();

  auto t = run.totals();
  Histogram ack, e2e;
  run.histograms(ack, e2e);
  uint64_t end = pairs.last_delivery_ns();
  double active_s = end > start ? static_cast<double>(end - start) / 1e9 : o.duration_s;
  boost::json::object r;
  r["scenario"] = "direct";
  r["pairs"] = o.pairs;
  r["offered_rate"] = o.rate;
  r["duration_s"] = o.duration_s;
  r["size"] = o.size;
  r["window"] = o.window;
  r["threads"] = common.threads;
  r["throughput"] = static_cast<double>(t.delivered) / active_s;
  r["sent"] = t.sent;
  r["acked"] = t.acked;
  r["send_errors"] = t.send_errors;
  r["delivered"] = t.delivered;
  uint64_t lost = pairs.lost();
  r["lost"] = lost;
  r["duplicated"] = t.duplicated;
  r["reordered"] = t.reordered;
  if (common.nodes() > 1) {  // with several nodes: which order broke (one URL: unchanged)
    r["reordered_by_counter"] = pairs.reordered_by_counter();
    r["reordered_by_seq"] = pairs.reordered_by_seq();
  }
  r["pts_gaps"] = t.pts_gaps;
  r["bad_frames"] = t.bad_frames;
  r["behind_schedule"] = pairs.behind();
  r["connections"] = after_open.connected;
  add_nodes(r, common, after_open);
  r["failed"] = t.failed + t.dropped;
  add_percentiles(r, "e2e", e2e);
  add_percentiles(r, "ack", ack);
  r["completed"] = all_open && finished && !run.interrupted();
  print_report(r, common.json);
  bool ok = all_open && finished && lost == 0 && t.duplicated == 0 && t.reordered == 0 &&
            t.pts_gaps == 0 && t.dropped == 0 && t.send_errors == 0 && t.bad_frames == 0;
  return ok ? 0 : 1;
}

}  // namespace parley::bench
