// sync: N devices go offline, K messages arrive for each of their users, then all devices
// reconnect at once and page through `sync` from their cursor: time until every device has
// caught up, messages/s, and the loss/duplicate/order counts.
//
// Phase 1 connects every device once (creating the users) and keeps its cursor; phase 2
// fills: S sender users send K messages to each user over a bounded window; phase 3
// reconnects every device and syncs.
#include <fmt/format.h>

#include <boost/json/object.hpp>
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

struct Device {
  uint64_t cursor = 0;  // pts applied
  uint64_t target = 0;  // pts advertised at (re)connect
  OrderCheck by_counter;
  OrderCheck by_seq;
  uint64_t next_id = 1;
  bool caught_up = false;
  bool limited = false;
};

struct FillSender {
  std::vector<uint32_t> users;  // receiving user numbers
  uint64_t total = 0;           // K * users.size()
  uint64_t issued = 0, answered = 0, acked = 0;
};

class SyncRun final : public ConnectionListener {
 public:
  SyncRun(Run& run, const SyncOptions& o) : run_(run), o_(o) {
    users_ = (o.devices + o.devices_per_user - 1) / o.devices_per_user;
    for (uint32_t i = 0; i < o.devices; ++i) devices_.emplace_back();
    senders_.resize(std::min(o.senders, users_));
    for (uint32_t u = 0; u < users_; ++u) senders_[u % senders_.size()].users.push_back(u);
    for (auto& s : senders_) s.total = uint64_t{o.missed} * s.users.size();
  }

  std::string user_of_device(uint32_t d) const {
    return fmt::format("{}u{}", run_.options().user_prefix, d / o_.devices_per_user);
  }
  std::string user_name(uint32_t u) const {
    return fmt::format("{}u{}", run_.options().user_prefix, u);
  }

  // Phase 1 and 3: a fresh set of device connections.
  void open_devices(bool syncing) {
    syncing_ = syncing;
    phase_start_ns_ = now_ns();
    // A new set each phase: the old connections may still have aborted handlers queued,
    // so they live until the run is over.
    auto& conns = syncing ? phase3_conns_ : phase1_conns_;
    for (uint32_t d = 0; d < o_.devices; ++d) conns.emplace_back(run_.worker(d), *this, d);
    for (auto& c : conns) {
      auto* cp = &c;
      c.worker().post([cp] { cp->queue_open(); });
    }
  }
  void close(std::deque<Connection>& conns) {
    for (auto& c : conns) {
      auto* cp = &c;
      c.worker().post([cp] { cp->close(); });
    }
  }
  void close_devices() { close(syncing_ ? phase3_conns_ : phase1_conns_); }
  bool devices_down() const { return closed_.load() + failed_.load() >= o_.devices; }

  void open_senders() {
    closed_ = 0;
    failed_ = 0;
    for (uint32_t j = 0; j < senders_.size(); ++j)
      send_conns_.emplace_back(run_.worker(j), *this, kSenderBase + j);
    for (auto& c : send_conns_) {
      auto* cp = &c;
      c.worker().post([cp] { cp->queue_open(); });
    }
  }
  void close_senders() { close(send_conns_); }
  void reset_counts() {
    closed_ = 0;
    failed_ = 0;
    ready_ = 0;
    caught_up_ = 0;
  }

  uint64_t fill_answered() const {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s.answered;
    return n;
  }
  uint64_t fill_total() const {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s.total;
    return n;
  }
  uint64_t fill_acked() const {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s.acked;
    return n;
  }
  uint32_t ready() const { return ready_.load(); }
  uint32_t caught_up() const { return caught_up_.load(); }
  uint32_t failed() const { return failed_.load(); }
  uint64_t last_catch_up_ns() const { return last_catch_up_ns_.load(); }

  // After phase 3: what each device should have had (K of its user's messages) minus what
  // it got.
  uint64_t lost() const {
    uint64_t n = 0;
    for (const auto& d : devices_)
      if (d.by_counter.distinct() < o_.missed) n += o_.missed - d.by_counter.distinct();
    return n;
  }
  uint64_t limited() const {
    uint64_t n = 0;
    for (const auto& d : devices_) n += d.limited;
    return n;
  }

  std::string token(Connection& c) override {
    if (c.index() >= kSenderBase)
      return run_.shared().minter.mint(
          fmt::format("{}w{}", run_.options().user_prefix, c.index() - kSenderBase), "");
    return run_.shared().minter.mint(user_of_device(c.index()),
                                     fmt::format("d{}", c.index() % o_.devices_per_user));
  }

  void on_ready(Connection& c, uint64_t pts) override {
    ready_.fetch_add(1);
    if (c.index() >= kSenderBase) return pump(c);
    auto& d = devices_[c.index()];
    if (!syncing_) {
      d.cursor = pts;  // phase 1: remember where the device was when it went offline
      return;
    }
    d.target = pts;
    request_sync(c, d);
  }

  void on_frame(Connection& c, const boost::json::object& f) override {
    if (c.index() >= kSenderBase) return on_ack(c, f);
    if (!syncing_) return;
    auto& d = devices_[c.index()];
    auto& k = c.worker().counters();
    auto type = get_str(f, "type");
    if (type == "message") return;  // a live push: none expected, nothing is being sent
    if (type != "ok") {
      k.send_errors.add();
      if (logged_++ < 5)
        std::fprintf(stderr, "\nsync error: %s %s\n", std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
      return;
    }
    const auto* result = get_obj(f, "result");
    if (!result) return k.bad_frames.add();
    if (auto* snap = result->if_contains("snapshot"); snap && snap->is_bool() && snap->get_bool())
      d.limited = true;
    if (auto* ups = result->if_contains("updates"); ups && ups->is_array()) {
      for (const auto& uv : ups->get_array()) {
        if (!uv.is_object()) continue;
        const auto& u = uv.get_object();
        uint64_t pts = get_u64(u, "pts");
        if (pts != d.cursor + 1) k.pts_gaps.add();
        d.cursor = std::max(d.cursor, pts);
        const auto* m = get_obj(u, "message");
        BodyStamp stamp;
        if (!m || !parse_body(get_str(*m, "body"), stamp)) {
          k.bad_frames.add();
          continue;
        }
        auto by_counter = d.by_counter.see(stamp.k);
        auto by_seq = d.by_seq.see(get_u64(*m, "seq"));
        using V = OrderCheck::Verdict;
        if (by_counter == V::duplicate) {
          k.duplicated.add();
          continue;
        }
        if (by_counter == V::reordered || by_seq == V::reordered) k.reordered.add();
        k.delivered.add();
      }
    }
    uint64_t result_pts = get_u64(*result, "pts");
    bool more = false;
    if (auto* hm = result->if_contains("has_more"); hm && hm->is_bool()) more = hm->get_bool();
    if (result_pts > d.cursor) d.cursor = result_pts;
    if (more && !d.limited) return request_sync(c, d);
    d.caught_up = true;
    uint64_t now = now_ns();
    k.e2e_ns.record(now - phase_start_ns_);
    uint64_t prev = last_catch_up_ns_.load();
    while (prev < now && !last_catch_up_ns_.compare_exchange_weak(prev, now)) {
    }
    caught_up_.fetch_add(1);
  }

  void on_writable(Connection& c) override {
    if (c.index() >= kSenderBase) pump(c);
  }

  void on_down(Connection& c, Down how, std::string_view why) override {
    if (how == Down::closed)
      closed_.fetch_add(1);
    else
      failed_.fetch_add(1);
    if (how != Down::closed && logged_++ < 5)
      std::fprintf(stderr, "\nconnection %u %s: %.*s\n", c.index(),
                   how == Down::failed ? "failed" : "dropped", int(why.size()), why.data());
  }

  static constexpr uint32_t kSenderBase = 1u << 30;

 private:
  void request_sync(Connection& c, Device& d) {
    if (!c.writable()) return;  // one request at a time per device: never the case here
    auto& out = c.out();
    out.clear();
    fmt::format_to(std::back_inserter(out), R"({{"type":"sync","id":{},"pts":{},"limit":{}}})",
                   d.next_id++, d.cursor, o_.page);
    c.write();
    c.worker().counters().sent.add();
  }

  void pump(Connection& c) {
    auto& s = senders_[c.index() - kSenderBase];
    if (!c.writable() || s.issued >= s.total || s.issued - s.answered >= o_.window) return;
    uint64_t m = s.issued++;
    uint32_t u = s.users[m % s.users.size()];
    uint64_t round = m / s.users.size() + 1;  // the k-th message to this user
    auto& out = c.out();
    out.clear();
    fmt::format_to(std::back_inserter(out),
                   R"({{"type":"send","id":{},"to":"{}","client_msg_id":"{}-{}","body":)", m + 1,
                   user_name(u), u, round);
    append_body(out, now_ns(), round, o_.size);
    out += '}';
    c.write();
  }

  void on_ack(Connection& c, const boost::json::object& f) {
    auto& s = senders_[c.index() - kSenderBase];
    ++s.answered;
    if (get_str(f, "type") == "ok") {
      ++s.acked;
      c.worker().counters().acked.add();
    } else {
      c.worker().counters().send_errors.add();
      if (logged_++ < 5)
        std::fprintf(stderr, "\nsend error: %s %s\n", std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
    }
    pump(c);
  }

  Run& run_;
  const SyncOptions& o_;
  uint32_t users_ = 0;
  std::deque<Device> devices_;
  std::vector<FillSender> senders_;
  std::deque<Connection> phase1_conns_;
  std::deque<Connection> phase3_conns_;
  std::deque<Connection> send_conns_;
  bool syncing_ = false;
  uint64_t phase_start_ns_ = 0;
  std::atomic<uint32_t> ready_{0}, closed_{0}, failed_{0}, caught_up_{0};
  std::atomic<uint64_t> last_catch_up_ns_{0};
  std::atomic<int> logged_{0};
};

}  // namespace

int run_sync(const CommonOptions& common, const SyncOptions& o) {
  if (o.devices == 0 || o.missed == 0 || o.devices_per_user == 0 || o.senders == 0) {
    std::fprintf(stderr, "sync: --devices, --missed, --devices-per-user, --senders must be > 0\n");
    return 2;
  }
  Run run(common);
  if (uint64_t{o.devices} + o.senders + 16 > run.socket_budget()) {
    std::fprintf(stderr, "sync: --devices does not fit the descriptor limit (%llu)\n",
                 static_cast<unsigned long long>(run.socket_budget()));
    return 2;
  }
  double timeout = common.timeout_s > 0 ? common.timeout_s
                                        : 120 + static_cast<double>(o.devices) * o.missed / 2000.0;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout * 1e9);
  SyncRun s(run, o);
  run.start();

  // Phase 1: every device connects once, so the users exist and the cursors are known.
  s.open_devices(false);
  bool ok =
      run.wait([&] { return s.ready() + s.failed() >= o.devices; }, deadline,
               [&] {
                 return fmt::format("[sync] {:.1f}s phase 1: devices connected {}/{} failed {}",
                                    run.elapsed_s(), s.ready(), o.devices, s.failed());
               });
  ok = ok && s.failed() == 0;
  s.close_devices();
  run.wait([&] { return s.devices_down(); }, deadline, [] { return std::string(); });

  // Phase 2: K messages to every user while its devices are offline.
  s.reset_counts();
  uint64_t fill_start = now_ns();
  double fill_s = 0;
  if (ok) {
    s.open_senders();
    ok = run.wait([&] { return s.fill_answered() >= s.fill_total() || s.failed() > 0; }, deadline,
                  [&] {
                    return fmt::format("[sync] {:.1f}s phase 2: fill {}/{} acked {}",
                                       run.elapsed_s(), s.fill_answered(), s.fill_total(),
                                       s.fill_acked());
                  });
    ok = ok && s.failed() == 0;
    fill_s = static_cast<double>(now_ns() - fill_start) / 1e9;
    s.close_senders();
  }

  // Phase 3: every device reconnects at once and syncs from its cursor.
  s.reset_counts();
  uint64_t sync_start = now_ns();
  bool synced = false;
  if (ok) {
    s.open_devices(true);
    synced = run.wait([&] { return s.caught_up() + s.failed() >= o.devices; }, deadline,
                      [&] {
                        auto t = run.totals();
                        return fmt::format(
                            "[sync] {:.1f}s phase 3: connected {} caught up {}/{} messages {}",
                            run.elapsed_s(), s.ready(), s.caught_up(), o.devices, t.delivered);
                      });
    synced = synced && s.failed() == 0;
  }
  uint64_t sync_end = s.last_catch_up_ns() > sync_start ? s.last_catch_up_ns() : now_ns();
  s.close_devices();
  run.finish();

  auto t = run.totals();
  Histogram ack, catchup;
  run.histograms(ack, catchup);
  double sync_s = static_cast<double>(sync_end - sync_start) / 1e9;
  uint64_t lost = s.lost();
  boost::json::object r;
  r["scenario"] = "sync";
  r["devices"] = o.devices;
  r["missed"] = o.missed;
  r["devices_per_user"] = o.devices_per_user;
  r["senders"] =
      std::min<uint64_t>(o.senders, (o.devices + o.devices_per_user - 1) / o.devices_per_user);
  r["page"] = o.page;
  r["fill_messages"] = s.fill_acked();
  r["fill_s"] = fill_s;
  r["fill_rate"] = fill_s > 0 ? static_cast<double>(s.fill_acked()) / fill_s : 0.0;
  r["catchup_s"] = sync_s;
  r["throughput"] = sync_s > 0 ? static_cast<double>(t.delivered) / sync_s : 0.0;
  r["sync_requests"] = t.sent;
  r["delivered"] = t.delivered;
  r["lost"] = lost;
  r["duplicated"] = t.duplicated;
  r["reordered"] = t.reordered;
  r["pts_gaps"] = t.pts_gaps;
  r["limited"] = s.limited();
  r["errors"] = t.send_errors;
  r["failed"] = t.failed + t.dropped;
  // Per-device catch-up time, from the moment all devices start reconnecting.
  add_percentiles(r, "e2e", catchup);
  r["ack_p99_ms"] = nullptr;
  r["completed"] = ok && synced && !run.interrupted();
  print_report(r, common.json);
  bool good = ok && synced && lost == 0 && t.duplicated == 0 && t.reordered == 0 &&
              t.pts_gaps == 0 && s.limited() == 0 && t.send_errors == 0 && t.failed == 0 &&
              t.dropped == 0;
  return good ? 0 : 1;
}

}  // namespace parley::bench
