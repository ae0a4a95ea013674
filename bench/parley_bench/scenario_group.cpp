// group: G groups of M members (distinct users, one connection each), S senders per group at
// an aggregate rate R (0: as fast as a bounded window allows). Every member counts the
// deliveries of its group.
//
// Setup: every member connects (creating its user); member 0 of each group creates it with
// `group_create` (and `group_add` for members past the 1000 users one request may carry);
// sending starts once every member has seen the last setup event of its group.
//
// Sending: sender s (member s < S) sends {"chat_id"} messages whose body stamp carries
// k = s << 32 | n, n its 1-based counter. A group's window counts messages sent but not yet
// delivered to all M - 1 other members (deliveries / (M - 1)), so that the bench never queues
// more than window x (M - 1) frames at the server, whatever the group's size.
//
// Checks at each receiver: per sender, the counter n is gapless and increasing (lost,
// duplicated, reordered); across senders, the group's seq increases (a smaller seq is
// reordered) and, at members that do not send, is gapless counting events (seq_gaps);
// pushes with `pts` (small groups) continue the member's pts (pts_gaps), as do send acks.
#include <fmt/format.h>

#include <array>
#include <atomic>
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

constexpr uint64_t kSetupId = uint64_t{1} << 51;  // group_create / group_add ids; sends below
constexpr uint32_t kMaxUsersPerRequest = 1000;    // PROTOCOL.md §3.9 (group_add)

struct Sender {
  uint64_t issued = 0;    // sends written (ids 1 .. issued)
  uint64_t answered = 0;  // acks + errors
  uint64_t acked = 0;
  uint64_t limit = 0;             // most sends this run (rate * duration, or unbounded)
  std::vector<uint64_t> sent_ns;  // ring, indexed by id & mask
  uint64_t mask = 0;
};

struct Member {
  uint32_t group = 0;
  uint32_t slot = 0;     // index in the group; senders are slots 0 .. S-1, the creator is 0
  uint64_t chat_id = 0;  // learnt from the create result or the first event push
  uint64_t pts = 0;      // cursor of the user's update log
  uint64_t last_seq = 0;
  uint64_t seq_gaps = 0;
  std::atomic<uint64_t> event_seq{0};  // seq of the last event seen (read by the main thread)
  std::vector<OrderCheck> by_sender;   // per sender slot
};

struct Group {
  std::atomic<uint64_t> issued{0};     // messages sent by its senders
  std::atomic<uint64_t> delivered{0};  // deliveries to its members
  std::atomic<uint64_t> final_seq{0};  // seq of the last setup event, once acknowledged
  std::atomic<bool> large{false};
  uint32_t added = 1;  // members in the group so far (creator's worker only)
  uint64_t step = 0;   // setup requests written (creator's worker only)
  bool setup_due = false;
};

class Groups final : public ConnectionListener {
 public:
  Groups(Run& run, const GroupOptions& o) : run_(run), o_(o), senders_per_group_(o.senders) {
    uint64_t ring = std::bit_ceil<uint64_t>(std::max<uint32_t>(o.window, 1));
    uint64_t all_senders = uint64_t{o.groups} * senders_per_group_;
    per_sender_rate_ = o.rate / static_cast<double>(all_senders);
    for (uint32_t g = 0; g < o.groups; ++g) groups_.emplace_back();
    sender_conns_.resize(run.size());
    for (uint32_t g = 0; g < o.groups; ++g) {
      for (uint32_t m = 0; m < o.members; ++m) {
        uint32_t i = g * o.members + m;
        conns_.emplace_back(run.worker(i), *this, i, round_robin_node(i, run.options().nodes()));
        auto& mem = members_.emplace_back();
        mem.group = g;
        mem.slot = m;
        mem.by_sender.resize(senders_per_group_);
        auto& s = senders_.emplace_back();
        if (m < senders_per_group_) {
          s.sent_ns.assign(ring, 0);
          s.mask = ring - 1;
          s.limit = o.rate > 0 ? static_cast<uint64_t>(std::floor(per_sender_rate_ * o.duration_s))
                               : UINT64_MAX;
          sender_conns_[i % run.size()].push_back(i);
        }
      }
    }
  }

  std::string user(uint32_t conn) const {
    return fmt::format("{}g{}m{}", run_.options().user_prefix, conn / o_.members,
                       conn % o_.members);
  }

  void open_all() {
    for (auto& c : conns_) {
      auto* cp = &c;
      c.worker().post([cp] { cp->queue_open(); });
    }
  }

  // Member 0 of every group creates it.
  void create_all() {
    for (uint32_t g = 0; g < o_.groups; ++g) {
      auto* cp = &conns_[g * o_.members];
      cp->worker().post([this, cp, g] {
        groups_[g].setup_due = true;
        setup_step(*cp);
      });
    }
  }

  // Groups whose every member has seen the last setup event; setup errors.
  uint64_t groups_ready() const {
    uint64_t n = 0;
    for (uint32_t g = 0; g < o_.groups; ++g) {
      uint64_t fin = groups_[g].final_seq.load();
      if (fin == 0) continue;
      bool all = true;
      for (uint32_t m = 1; m < o_.members && all; ++m)
        all = members_[g * o_.members + m].event_seq.load() >= fin;
      n += all;
    }
    return n;
  }
  uint64_t setup_errors() const { return setup_errors_.load(); }
  uint64_t large_groups() const {
    uint64_t n = 0;
    for (const auto& g : groups_) n += g.large.load();
    return n;
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

  void on_ready(Connection& c, uint64_t pts) override { members_[c.index()].pts = pts; }

  void on_frame(Connection& c, const boost::json::object& f) override {
    auto type = get_str(f, "type");
    if (type == "message") return on_push(c, f);
    uint64_t id = get_u64(f, "id");
    if (id > kSetupId) return on_setup_reply(c, type, f);
    on_ack(c, type, id, f);
  }

  void on_writable(Connection& c) override {
    if (members_[c.index()].slot == 0 && groups_[members_[c.index()].group].setup_due)
      return setup_step(c);
    pump(c);
  }

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

  // After the workers have finished: deliveries of acked messages that never arrived.
  uint64_t lost() const {
    uint64_t n = 0;
    for (uint32_t g = 0; g < o_.groups; ++g) {
      for (uint32_t s = 0; s < senders_per_group_; ++s) {
        uint64_t acked = senders_[g * o_.members + s].acked;
        for (uint32_t m = 0; m < o_.members; ++m) {
          if (m == s) continue;
          uint64_t got = members_[g * o_.members + m].by_sender[s].distinct();
          if (acked > got) n += acked - got;
        }
      }
    }
    return n;
  }
  uint64_t seq_gaps() const {
    uint64_t n = 0;
    for (const auto& m : members_) n += m.seq_gaps;
    return n;
  }
  uint64_t behind() const {  // sends due by the schedule but never issued
    if (o_.rate <= 0 || start_ns_ == 0) return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < members_.size(); ++i)
      if (members_[i].slot < senders_per_group_)
        n += senders_[i].limit - std::min(senders_[i].limit, senders_[i].issued);
    return n;
  }

 private:
  // The creator's next setup request: group_create with the first 1000 other members, then
  // group_add with 1000 more at a time.
  void setup_step(Connection& c) {
    auto& g = groups_[members_[c.index()].group];
    if (!g.setup_due || !c.writable()) return;
    g.setup_due = false;
    uint32_t first = g.added;
    uint32_t last = std::min(o_.members, first + kMaxUsersPerRequest);
    auto& out = c.out();
    out.clear();
    if (first == 1) {
      fmt::format_to(std::back_inserter(out),
                     R"({{"type":"group_create","id":{},"name":"{}","members":[)",
                     kSetupId + ++g.step, user(c.index()));
    } else {
      fmt::format_to(std::back_inserter(out),
                     R"({{"type":"group_add","id":{},"chat_id":{},"users":[)", kSetupId + ++g.step,
                     members_[c.index()].chat_id);
    }
    uint32_t base = c.index();  // member 0's connection index
    for (uint32_t m = first; m < last; ++m) {
      if (m > first) out += ',';
      out += '"';
      out += user(base + m);
      out += '"';
    }
    out += "]}";
    g.added = last;
    c.write();
  }

  void on_setup_reply(Connection& c, std::string_view type, const boost::json::object& f) {
    auto& mem = members_[c.index()];
    auto& g = groups_[mem.group];
    const auto* r = get_obj(f, "result");
    if (type != "ok" || !r || mem.slot != 0) {
      setup_errors_.fetch_add(1);
      if (logged_++ < 5)
        std::fprintf(stderr, "\ngroup setup error: %s %s\n",
                     std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
      return;
    }
    const auto* chat = get_obj(*r, "chat");
    if (chat) {
      mem.chat_id = get_u64(*chat, "chat_id");
      const auto* large = chat->if_contains("large");
      g.large = large && large->is_bool() && large->get_bool();
    }
    uint64_t seq = get_u64(*r, "seq");
    mem.last_seq = std::max(mem.last_seq, seq);
    mem.event_seq = mem.last_seq;
    check_pts(c, get_u64(*r, "pts"));
    if (g.added < o_.members) {
      g.setup_due = true;
      return setup_step(c);
    }
    g.final_seq = seq;
  }

  void check_pts(Connection& c, uint64_t pts) {
    if (pts == 0) return;  // a large group's message: not in the update log
    auto& mem = members_[c.index()];
    if (pts != mem.pts + 1) c.worker().counters().pts_gaps.add();
    mem.pts = std::max(mem.pts, pts);
  }

  void tick(size_t w) {
    for (uint32_t i : sender_conns_[w]) pump(conns_[i]);
  }

  uint64_t due(const Sender& s, uint64_t now) const {
    if (now < start_ns_) return 0;
    if (now >= stop_ns_) return s.issued;  // a backlog is reported, not sent late
    if (o_.rate <= 0) return UINT64_MAX;
    auto n =
        static_cast<uint64_t>(static_cast<double>(now - start_ns_) / 1e9 * per_sender_rate_) + 1;
    return std::min(n, s.limit);
  }

  void pump(Connection& c) {
    if (!c.writable() || !running_on_[c.worker().id()]) return;
    auto& mem = members_[c.index()];
    if (mem.slot >= senders_per_group_ || mem.chat_id == 0) return;
    auto& s = senders_[c.index()];
    auto& g = groups_[mem.group];
    if (s.issued - s.answered >= o_.window) return;
    uint64_t others = o_.members - 1;
    if (g.issued.load(std::memory_order_relaxed) * others >=
        g.delivered.load(std::memory_order_relaxed) + uint64_t{o_.window} * others)
      return;
    uint64_t now = now_ns();
    if (s.issued >= due(s, now)) return;
    uint64_t id = ++s.issued;
    g.issued.fetch_add(1, std::memory_order_relaxed);
    s.sent_ns[id & s.mask] = now;
    auto& out = c.out();
    out.clear();
    fmt::format_to(std::back_inserter(out),
                   R"({{"type":"send","id":{},"chat_id":{},"client_msg_id":"{}","body":)", id,
                   mem.chat_id, id);
    append_body(out, now, (uint64_t{mem.slot} << 32) | id, o_.size);
    out += '}';
    c.write();
    c.worker().counters().sent.add();
  }

  void on_ack(Connection& c, std::string_view type, uint64_t id, const boost::json::object& f) {
    auto& mem = members_[c.index()];
    auto& k = c.worker().counters();
    if (mem.slot >= senders_per_group_) return k.bad_frames.add();
    auto& s = senders_[c.index()];
    if (id == 0 || id > s.issued) return k.bad_frames.add();
    ++s.answered;
    if (type == "ok") {
      ++s.acked;
      k.acked.add();
      uint64_t sent = s.sent_ns[id & s.mask];
      if (sent >= warm_ns_) k.ack_ns.record(now_ns() - sent);
      if (const auto* r = get_obj(f, "result")) check_pts(c, get_u64(*r, "pts"));
    } else {
      k.send_errors.add();
      if (logged_++ < 5)
        std::fprintf(stderr, "\nsend error: %s %s\n", std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
    }
    pump(c);
  }

  void on_push(Connection& c, const boost::json::object& f) {
    auto& mem = members_[c.index()];
    auto& k = c.worker().counters();
    uint64_t now = now_ns();
    check_pts(c, get_u64(f, "pts"));
    const auto* m = get_obj(f, "message");
    if (!m) return k.bad_frames.add();
    uint64_t chat_id = get_u64(*m, "chat_id");
    uint64_t seq = get_u64(*m, "seq");
    bool sends = mem.slot < senders_per_group_;
    if (get_str(*m, "kind") == "event") {
      if (mem.chat_id == 0) mem.chat_id = chat_id;
      if (chat_id != mem.chat_id) return k.bad_frames.add();
      if (seq <= mem.last_seq)
        k.reordered.add();
      else if (!sends && mem.last_seq != 0 && seq != mem.last_seq + 1)
        ++mem.seq_gaps;
      mem.last_seq = std::max(mem.last_seq, seq);
      mem.event_seq.store(mem.last_seq);
      return;
    }
    BodyStamp stamp;
    if (chat_id == 0 || chat_id != mem.chat_id || !parse_body(get_str(*m, "body"), stamp))
      return k.bad_frames.add();
    auto slot = static_cast<uint32_t>(stamp.k >> 32);
    if (slot >= senders_per_group_ || slot == mem.slot) {
      if (logged_++ < 5)
        std::fprintf(stderr, "\nunexpected push (%s): %s\n",
                     slot == mem.slot ? "the member's own message" : "no sender's",
                     boost::json::serialize(f).c_str());
      return k.bad_frames.add();
    }
    auto verdict = mem.by_sender[slot].see(stamp.k & 0xffffffffu);
    using V = OrderCheck::Verdict;
    if (verdict == V::duplicate) return k.duplicated.add();
    if (verdict == V::reordered || seq <= mem.last_seq)
      k.reordered.add();
    else if (!sends && seq != mem.last_seq + 1)
      ++mem.seq_gaps;
    mem.last_seq = std::max(mem.last_seq, seq);
    k.delivered.add();
    groups_[mem.group].delivered.fetch_add(1, std::memory_order_relaxed);
    if (stamp.send_ns >= warm_ns_) k.e2e_ns.record(now - stamp.send_ns);
    last_delivery_[c.worker().id()].store(now, std::memory_order_relaxed);
    if (sends) pump(c);
  }

  Run& run_;
  const GroupOptions& o_;
  uint32_t senders_per_group_;
  double per_sender_rate_ = 0;
  std::deque<Connection> conns_;
  std::deque<Member> members_;  // by connection index
  std::deque<Sender> senders_;  // by connection index; used for slots < senders_per_group_
  std::deque<Group> groups_;
  std::vector<std::vector<uint32_t>> sender_conns_;  // per worker
  uint64_t start_ns_ = 0, stop_ns_ = 0, warm_ns_ = 0;
  std::array<bool, 256> running_on_{};
  std::array<std::atomic<uint64_t>, 256> last_delivery_{};
  std::atomic<uint64_t> setup_errors_{0};
  std::atomic<int> logged_{0};
};

}  // namespace

int run_group(const CommonOptions& common, const GroupOptions& opts) {
  GroupOptions o = opts;
  if (o.groups == 0 || o.members < 2 || o.duration_s <= 0 || o.senders == 0 || o.window == 0) {
    std::fprintf(stderr,
                 "group: --groups > 0, --members >= 2, --duration > 0, --senders > 0 and "
                 "--window > 0 required\n");
    return 2;
  }
  o.senders = std::min(o.senders, o.members);
  if (common.threads > 256) {
    std::fprintf(stderr, "group: at most 256 --threads\n");
    return 2;
  }
  if (common.user_prefix.size() + fmt::formatted_size("g{}m{}", o.groups - 1, o.members - 1) > 32) {
    std::fprintf(stderr, "group: user ids would exceed 32 characters; shorten --user-prefix\n");
    return 2;
  }
  Run run(common);
  uint64_t conns = uint64_t{o.groups} * o.members;
  if (conns + 16 > run.socket_budget()) {
    std::fprintf(stderr, "group: --groups x --members (%llu) does not fit the descriptor limit\n",
                 static_cast<unsigned long long>(conns));
    return 2;
  }
  double timeout = common.timeout_s > 0
                       ? common.timeout_s
                       : o.duration_s + o.drain_s + 60 + static_cast<double>(conns) / 200.0;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout * 1e9);
  Groups groups(run, o);
  run.start();
  groups.open_all();
  bool opened = run.wait(
      [&] {
        auto t = run.totals();
        return t.connected + t.failed >= conns;
      },
      deadline,
      [&] {
        auto t = run.totals();
        return fmt::format("[group] {:.1f}s connecting {}/{} failed {}", run.elapsed_s(),
                           t.connected, conns, t.failed);
      });
  bool all_open = opened && run.totals().failed == 0;
  bool set_up = false;
  if (all_open) {
    groups.create_all();
    set_up = run.wait([&] { return groups.groups_ready() == o.groups || groups.setup_errors(); },
                      deadline,
                      [&] {
                        return fmt::format("[group] {:.1f}s creating groups: {}/{} ready",
                                           run.elapsed_s(), groups.groups_ready(), o.groups);
                      }) &&
             groups.setup_errors() == 0;
    if (!set_up) std::fprintf(stderr, "group: the groups could not be set up\n");
  }
  auto after_open = run.totals();

  uint64_t start = now_ns() + 20'000'000;
  uint64_t stop = start + static_cast<uint64_t>(o.duration_s * 1e9);
  uint64_t last_delivered = after_open.delivered, last_ns = start;
  double rate_now = 0;
  uint64_t others = o.members - 1;
  auto line = [&] {
    auto t = run.totals();
    uint64_t now = now_ns();
    if (now > last_ns) {
      rate_now = static_cast<double>(t.delivered - last_delivered) * 1e9 /
                 static_cast<double>(now - last_ns);
      last_delivered = t.delivered;
      last_ns = now;
    }
    Histogram e2e;
    for (size_t i = 0; i < run.size(); ++i) e2e.merge(run.worker(i).counters().e2e_ns);
    uint64_t expected = t.acked * others;
    return fmt::format(
        "[group] {:.1f}s sent {} acked {} delivered {} {:.0f} deliveries/s in flight {} e2e p99 "
        "{:.2f}ms lost? {} dup {} reord {}",
        run.elapsed_s(), t.sent, t.acked, t.delivered, rate_now, groups.in_flight(),
        to_ms(e2e.percentile(99)), expected > t.delivered ? expected - t.delivered : 0,
        t.duplicated, t.reordered);
  };
  bool finished = false;
  if (set_up) {
    groups.go(start, stop);
    run.wait([] { return false; }, std::min(stop, deadline), line);
    uint64_t drain_end = std::min(deadline, now_ns() + static_cast<uint64_t>(o.drain_s * 1e9));
    finished = run.wait(
        [&] {
          auto t = run.totals();
          return t.acked + t.send_errors >= t.sent && t.delivered >= t.acked * others;
        },
        drain_end, line);
  }
  groups.close_all();
  run.finish();

  auto t = run.totals();
  Histogram ack, e2e;
  run.histograms(ack, e2e);
  uint64_t end = groups.last_delivery_ns();
  double active_s = end > start ? static_cast<double>(end - start) / 1e9 : o.duration_s;
  double deliveries_per_s = static_cast<double>(t.delivered) / active_s;
  uint64_t lost = groups.lost();
  uint64_t seq_gaps = groups.seq_gaps();
  boost::json::object r;
  r["scenario"] = "group";
  r["groups"] = o.groups;
  r["members"] = o.members;
  r["large_groups"] = groups.large_groups();
  r["senders_per_group"] = o.senders;
  r["offered_rate"] = o.rate;
  r["duration_s"] = o.duration_s;
  r["size"] = o.size;
  r["window"] = o.window;
  r["threads"] = common.threads;
  r["throughput"] = deliveries_per_s;
  r["deliveries_per_s"] = deliveries_per_s;
  r["messages_per_s"] = static_cast<double>(t.acked) / active_s;
  r["sent"] = t.sent;
  r["acked"] = t.acked;
  r["send_errors"] = t.send_errors;
  r["delivered"] = t.delivered;
  r["expected_deliveries"] = t.acked * others;
  r["lost"] = lost;
  r["duplicated"] = t.duplicated;
  r["reordered"] = t.reordered;
  r["seq_gaps"] = seq_gaps;
  r["pts_gaps"] = t.pts_gaps;
  r["bad_frames"] = t.bad_frames;
  r["behind_schedule"] = groups.behind();
  r["connections"] = after_open.connected;
  add_nodes(r, common, after_open);
  r["failed"] = t.failed + t.dropped;
  add_percentiles(r, "e2e", e2e);
  add_percentiles(r, "ack", ack);
  r["completed"] = set_up && finished && !run.interrupted();
  print_report(r, common.json);
  bool ok = set_up && finished && lost == 0 && t.duplicated == 0 && t.reordered == 0 &&
            seq_gaps == 0 && t.pts_gaps == 0 && t.dropped == 0 && t.send_errors == 0 &&
            t.bad_frames == 0;
  return ok ? 0 : 1;
}

}  // namespace parley::bench
