// presence: N users (one connection each), every one subscribed (presence_subscribe) to K
// contacts; then R users per second (aggregate) disconnect and reconnect after a short random
// pause (the churn), and with --mass all users disconnect and reconnect at once. Measures the
// `presence` pushes the watchers get (frames and entries per second, per watcher), the delay
// from a user's reconnect to its watchers seeing online:true, the server's CPU and RSS, and
// that every watcher ends up with the true state of its contacts (docs/PROTOCOL.md §3.13).
//
// Contacts: K distinct offsets d_1 .. d_K in [1, N) drawn from --seed; user u watches
// (u + d_j) mod N, so every user is watched by exactly K others.
//
// Phases: setup (every user connects, creating its user; then every user subscribes, once all
// exist: a user that does not exist yet would be answered hidden), churn (--duration seconds,
// then until every churned user is back and subscribed, and every watcher sees every contact
// online), mass (every user closes and reopens at once, until every watcher sees every
// contact online). A reconnecting user subscribes again as soon as it is authenticated.
//
// Per watcher and contact the bench keeps the last state it learnt: from the subscribe answer
// of its current connection, then from each push, in arrival order, as a client would. At the
// end of a phase (everyone back, every watcher correct or 2 batch windows + 3 s passed, then
// one more batch window for late pushes) a contact not seen online is `wrong_state`.
//
// Latency, on the bench's one steady clock: e2e = the contact's reconnect (the start of its
// TCP connect) -> a watcher parses a push with online:true for it; auth_to_online = its auth
// answer -> the same push; reconnect = TCP connect start -> auth answer; offline = the bench
// closed it -> a push with online:false. Each (watcher, contact) measures one connection or
// one close once. An online push is measured only while the bench holds the contact's
// connection as authenticated (one that arrives before the auth answer, or after the bench
// closed it, is not a sample), so collapsed flaps and those edge cases are simply absent.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json/object.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include "connection.h"
#include "report.h"
#include "run.h"
#include "scenarios.h"
#include "system.h"

namespace parley::bench {

namespace {

constexpr uint64_t kSubscribeId = 1;
constexpr uint64_t kQuarantineNs = 2'000'000'000;  // before a closed object is destroyed
constexpr uint64_t kRetryNs = 1'000'000'000;       // a failed or dropped connection retries
constexpr uint32_t kMaxContacts = 1000;            // the server's presence.max_subscriptions
constexpr auto kTick = std::chrono::milliseconds(5);

// What a watcher knows of a contact.
enum : uint8_t { kUnknown = 0, kOnline = 1, kOffline = 2, kHidden = 3 };

enum Phase : int { kSetup = 0, kChurn = 1, kChurnSettle = 2, kMass = 3, kPhases = 4 };

struct PhaseStats {
  Counter frames;           // presence pushes received
  Counter entries;          // statuses in them
  Counter online_entries;   // of which online:true
  Counter offline_entries;  // of which online:false
  Counter hidden;           // hidden:true, in a push or an answer (never expected here)
  Counter redundant;        // an entry equal to what the watcher already had
  Counter before_answer;    // pushes that arrived before the connection's subscribe answer
  Counter no_last_seen;     // online:false without last_seen
  Counter subscribes;       // subscribe answers (ok)
  Counter subscribe_errors;
  Counter reconnects;        // users the bench closed and reopened
  Counter churn_skipped;     // churn picks that found no subscribed user
  Counter batch_violations;  // connections with more pushes than their batch windows allow
  Counter short_gaps;        // two pushes on one connection less than half a window apart
  Histogram online_ns;       // contact's connect start -> online:true at a watcher
  Histogram auth_ns;         // contact's auth answer -> online:true at a watcher
  Histogram offline_ns;      // bench closed the contact -> online:false at a watcher
  Histogram subscribe_ns;    // presence_subscribe written -> its answer
  Histogram connect_ns;      // connect start -> auth answer, of reconnects
};

struct Sum {
  uint64_t frames = 0, entries = 0, online_entries = 0, offline_entries = 0, hidden = 0,
           redundant = 0, before_answer = 0, no_last_seen = 0, subscribes = 0, subscribe_errors = 0,
           reconnects = 0, churn_skipped = 0, batch_violations = 0, short_gaps = 0;
  Histogram online_ns, auth_ns, offline_ns, subscribe_ns, connect_ns;
  void add(const PhaseStats& p) {
    frames += p.frames.get();
    entries += p.entries.get();
    online_entries += p.online_entries.get();
    offline_entries += p.offline_entries.get();
    hidden += p.hidden.get();
    redundant += p.redundant.get();
    before_answer += p.before_answer.get();
    no_last_seen += p.no_last_seen.get();
    subscribes += p.subscribes.get();
    subscribe_errors += p.subscribe_errors.get();
    reconnects += p.reconnects.get();
    churn_skipped += p.churn_skipped.get();
    batch_violations += p.batch_violations.get();
    short_gaps += p.short_gaps.get();
    online_ns.merge(p.online_ns);
    auth_ns.merge(p.auth_ns);
    offline_ns.merge(p.offline_ns);
    subscribe_ns.merge(p.subscribe_ns);
    connect_ns.merge(p.connect_ns);
  }
};

enum class UserState : uint8_t { paused, opening, ready };

struct User {
  // Worker-only.
  std::unique_ptr<Connection> conn;  // the current connection, if any
  // Closed connections and when: kept until their aborted handlers have surely run (a Beast
  // stream cannot be handshaken again once it has failed twice, so objects are not reused).
  std::vector<std::pair<std::unique_ptr<Connection>, uint64_t>> retired;
  UserState state = UserState::paused;
  uint64_t sub_sent_ns = 0;
  uint64_t ready_ns = 0;
  uint64_t pushes = 0;  // on the current connection
  uint64_t last_push_ns = 0;
  uint64_t mass_frames = 0;  // pushes received in the mass phase
  // Read by other threads.
  std::atomic<uint64_t> since_ns{0};    // connect start of the current connection, once ready
  std::atomic<uint64_t> auth_ns{0};     // its auth answer
  std::atomic<uint64_t> down_ns{0};     // when the bench last closed it (0: not by the bench)
  std::atomic<bool> subscribed{false};  // the current connection's subscribe was answered
};

struct WorkerState {
  std::array<PhaseStats, kPhases> phase;
  std::vector<uint32_t> users;
  using Due = std::pair<uint64_t, uint32_t>;  // reopen time, user
  std::priority_queue<Due, std::vector<Due>, std::greater<>> reopen;
  uint64_t rng = 0;
  uint64_t churned = 0;  // churn picks made
  std::atomic<uint64_t> min_gap_ns{UINT64_MAX};
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class PresenceFleet final : public ConnectionListener {
 public:
  PresenceFleet(Run& run, const PresenceOptions& o)
      : run_(run),
        o_(o),
        n_(o.users),
        k_(o.contacts),
        batch_ns_(uint64_t{o.batch_ms} * 1'000'000),
        users_(o.users),
        known_(size_t{o.users} * o.contacts),
        seen_online_(size_t{o.users} * o.contacts, 0),
        seen_offline_(size_t{o.users} * o.contacts, 0),
        last_seen_(size_t{o.users} * o.contacts, 0),
        slot_of_offset_(o.users, -1) {
    uint64_t s = o.seed;
    while (offsets_.size() < k_) {
      auto d = static_cast<uint32_t>(1 + splitmix(s) % (n_ - 1));
      if (slot_of_offset_[d] >= 0) continue;
      slot_of_offset_[d] = static_cast<int32_t>(offsets_.size());
      offsets_.push_back(d);
    }
    for (size_t w = 0; w < run.size(); ++w) {
      auto& ws = workers_.emplace_back(std::make_unique<WorkerState>());
      ws->rng = o.seed * 7919 + w;
    }
    for (uint32_t u = 0; u < n_; ++u) workers_[u % run.size()]->users.push_back(u);
  }

  std::string user(uint32_t u) const { return fmt::format("{}p{}", run_.options().user_prefix, u); }
  uint32_t contact(uint32_t u, uint32_t j) const { return (u + offsets_[j]) % n_; }

  void set_phase(Phase p) { phase_.store(p); }

  // Setup: every user connects once.
  void open_all() {
    for (size_t w = 0; w < run_.size(); ++w) {
      run_.worker(w).post([this, w] {
        for (uint32_t u : workers_[w]->users) open_user(u);
        run_.worker(w).every(kTick, [this, w] { tick(w); });
      });
    }
  }
  // Setup: every user subscribes to its contacts, now that they all exist. From here on a
  // user subscribes again whenever it is authenticated.
  void subscribe_all() {
    for (size_t w = 0; w < run_.size(); ++w) {
      run_.worker(w).post([this, w] {
        subscribing_[w] = true;
        for (uint32_t u : workers_[w]->users) {
          auto& usr = users_[u];
          if (usr.state == UserState::ready && !usr.subscribed) subscribe(u);
        }
      });
    }
  }
  void start_churn(uint64_t start_ns, uint64_t stop_ns) {
    churn_start_ = start_ns;
    churn_stop_ = stop_ns;
  }
  // Every subscribed user closes now and reopens at `reopen_ns`, all at once;
  // mass_workers_done() counts the workers that have closed theirs.
  void mass_reconnect(uint64_t reopen_ns) {
    mass_done_ = 0;
    for (size_t w = 0; w < run_.size(); ++w) {
      run_.worker(w).post([this, w, reopen_ns] {
        auto& ws = *workers_[w];
        auto& ps = ws.phase[phase_.load()];
        for (uint32_t u : ws.users) {
          if (users_[u].state != UserState::ready) continue;
          close_user(u);
          ws.reopen.emplace(reopen_ns, u);
          ps.reconnects.add();
        }
        mass_done_.fetch_add(1);
      });
    }
  }
  size_t mass_workers_done() const { return mass_done_.load(); }
  void close_all() {
    for (size_t w = 0; w < run_.size(); ++w) {
      run_.worker(w).post([this, w] {
        closing_all_[w] = true;
        for (uint32_t u : workers_[w]->users) close_user(u);
      });
    }
  }

  uint64_t ready_count() const {
    uint64_t n = 0;
    for (const auto& u : users_) n += u.since_ns.load(std::memory_order_relaxed) != 0;
    return n;
  }
  uint64_t subscribed_count() const {
    uint64_t n = 0;
    for (const auto& u : users_) n += u.subscribed.load(std::memory_order_relaxed);
    return n;
  }
  // (watcher, contact) pairs whose last known state is not online: the truth once every user
  // is back.
  uint64_t wrong_count() const {
    uint64_t n = 0;
    for (const auto& k : known_) n += k.load(std::memory_order_relaxed) != kOnline;
    return n;
  }
  bool unsupported() const { return unsupported_.load(); }

  void sum(Sum& out, std::initializer_list<Phase> phases) const {
    for (const auto& w : workers_)
      for (Phase p : phases) out.add(w->phase[p]);
  }
  uint64_t min_gap_ns() const {
    uint64_t m = UINT64_MAX;
    for (const auto& w : workers_) m = std::min(m, w->min_gap_ns.load());
    return m;
  }
  // After the workers have finished.
  uint64_t max_mass_frames() const {
    uint64_t m = 0;
    for (const auto& u : users_) m = std::max(m, u.mass_frames);
    return m;
  }

  std::string token(Connection& c) override {
    return run_.shared().minter.mint(user(c.index()), "");
  }

  void on_ready(Connection& c, uint64_t) override {
    auto& usr = users_[c.index()];
    if (usr.conn.get() != &c) return;
    uint64_t now = now_ns();
    usr.state = UserState::ready;
    usr.ready_ns = now;
    usr.pushes = 0;
    usr.last_push_ns = 0;
    usr.since_ns = c.started_ns();
    usr.auth_ns = now;
    workers_[c.worker().id()]->phase[phase()].connect_ns.record(now - c.started_ns());
    if (subscribing_[c.worker().id()]) subscribe(c.index());
  }

  void on_frame(Connection& c, const boost::json::object& f) override {
    uint32_t u = c.index();
    auto& usr = users_[u];
    if (usr.conn.get() != &c) return;
    auto& ws = *workers_[c.worker().id()];
    Phase phase = phase_.load(std::memory_order_relaxed);
    auto& ps = ws.phase[phase];
    auto& k = c.worker().counters();
    auto type = get_str(f, "type");
    uint64_t now = now_ns();
    if (type == "presence") {
      ps.frames.add();
      ++usr.pushes;
      if (phase == kMass) ++usr.mass_frames;
      if (usr.last_push_ns != 0) {
        uint64_t gap = now - usr.last_push_ns;
        if (gap < batch_ns_ / 2) ps.short_gaps.add();
        if (gap < ws.min_gap_ns.load(std::memory_order_relaxed))
          ws.min_gap_ns.store(gap, std::memory_order_relaxed);
      }
      usr.last_push_ns = now;
      if (!usr.subscribed.load(std::memory_order_relaxed)) ps.before_answer.add();
      const auto* list = f.if_contains("presence");
      if (!list || !list->is_array()) return k.bad_frames.add();
      for (const auto& e : list->get_array()) apply(u, e, now, true, ps, k);
      return;
    }
    if (type == "ok" && get_u64(f, "id") == kSubscribeId) {
      const auto* r = get_obj(f, "result");
      const auto* list = r ? r->if_contains("presence") : nullptr;
      if (!list || !list->is_array()) return k.bad_frames.add();
      if (list->get_array().size() != k_) k.bad_frames.add();
      for (const auto& e : list->get_array()) apply(u, e, now, false, ps, k);
      ps.subscribes.add();
      ps.subscribe_ns.record(now - usr.sub_sent_ns);
      usr.subscribed = true;
      return;
    }
    if (type == "error") {
      ps.subscribe_errors.add();
      if (get_str(f, "code") == "unknown_type") unsupported_ = true;
      if (logged_++ < 5)
        std::fprintf(stderr, "\npresence_subscribe error: %s %s\n",
                     std::string(get_str(f, "code")).c_str(),
                     std::string(get_str(f, "message")).c_str());
      return;
    }
    k.bad_frames.add();
  }

  void on_writable(Connection&) override {}

  void on_down(Connection& c, Down how, std::string_view why) override {
    uint32_t u = c.index();
    auto& usr = users_[u];
    if (usr.conn.get() != &c) return;  // closed by the bench: already handled in close_user()
    if (logged_++ < 5)
      std::fprintf(stderr, "\nconnection of %s %s: %.*s\n", user(u).c_str(),
                   how == Down::failed ? "failed" : "dropped", int(why.size()), why.data());
    retire(u, now_ns());
    users_[u].down_ns = 0;
    auto& ws = *workers_[c.worker().id()];
    if (!closing_all_[c.worker().id()]) ws.reopen.emplace(now_ns() + kRetryNs, u);
  }

 private:
  Phase phase() const { return phase_.load(std::memory_order_relaxed); }

  void tick(size_t w) {
    auto& ws = *workers_[w];
    if (ws.users.empty()) return;
    uint64_t now = now_ns();
    uint64_t start = churn_start_.load(std::memory_order_relaxed);
    uint64_t stop = churn_stop_.load(std::memory_order_relaxed);
    if (start != 0 && now >= start && now < stop) {
      double per_worker = o_.churn / static_cast<double>(run_.size());
      auto due = static_cast<uint64_t>(static_cast<double>(now - start) / 1e9 * per_worker);
      while (ws.churned < due) {
        ++ws.churned;
        churn_one(ws, now);
      }
    }
    while (!ws.reopen.empty() && ws.reopen.top().first <= now) {
      uint32_t u = ws.reopen.top().second;
      ws.reopen.pop();
      if (!users_[u].conn && !closing_all_[w]) open_user(u);
    }
  }

  // Closes a random subscribed user of this worker; it reopens after a random pause.
  void churn_one(WorkerState& ws, uint64_t now) {
    auto& ps = ws.phase[phase()];
    for (int tries = 0; tries < 16; ++tries) {
      uint32_t u = ws.users[splitmix(ws.rng) % ws.users.size()];
      auto& usr = users_[u];
      if (usr.state != UserState::ready || !usr.subscribed) continue;
      close_user(u);
      uint64_t span = o_.pause_max_ms - o_.pause_min_ms;
      uint64_t pause_ms = o_.pause_min_ms + (span ? splitmix(ws.rng) % (span + 1) : 0);
      ws.reopen.emplace(now + pause_ms * 1'000'000, u);
      ps.reconnects.add();
      return;
    }
    ps.churn_skipped.add();
  }

  void open_user(uint32_t u) {
    auto& usr = users_[u];
    uint64_t now = now_ns();
    std::erase_if(usr.retired, [now](const auto& r) { return now - r.second >= kQuarantineNs; });
    usr.conn = std::make_unique<Connection>(run_.worker(u), *this, u);
    usr.state = UserState::opening;
    usr.conn->queue_open();
  }

  // The current connection is gone (closed by the bench, failed or dropped).
  void retire(uint32_t u, uint64_t now) {
    auto& usr = users_[u];
    auto& ws = *workers_[u % run_.size()];
    if (usr.state == UserState::ready) {
      // At most one push per batch window: the server's timer ticks floor(life / batch) + 1
      // times in the connection's life, +1 for delivery jitter at either end.
      uint64_t allowed = (now - usr.ready_ns) / batch_ns_ + 2;
      if (usr.pushes > allowed) ws.phase[phase()].batch_violations.add();
    }
    usr.retired.emplace_back(std::move(usr.conn), now);
    usr.state = UserState::paused;
    usr.since_ns = 0;
    usr.auth_ns = 0;
    usr.subscribed = false;
    for (uint32_t j = 0; j < k_; ++j)
      known_[size_t{u} * k_ + j].store(kUnknown, std::memory_order_relaxed);
  }

  void close_user(uint32_t u) {
    auto& usr = users_[u];
    Connection* c = usr.conn.get();
    if (!c) return;
    uint64_t now = now_ns();
    bool was_ready = usr.state == UserState::ready;
    retire(u, now);  // moves the object to `retired`: c stays valid
    usr.down_ns = was_ready ? now : 0;
    c->close();
  }

  void subscribe(uint32_t u) {
    auto& usr = users_[u];
    Connection& c = *usr.conn;
    if (!c.writable()) return;
    auto& out = c.out();
    out.clear();
    fmt::format_to(std::back_inserter(out), R"({{"type":"presence_subscribe","id":{},"users":[)",
                   kSubscribeId);
    const auto& prefix = run_.options().user_prefix;
    for (uint32_t j = 0; j < k_; ++j)
      fmt::format_to(std::back_inserter(out), R"({}"{}p{}")", j ? "," : "", prefix, contact(u, j));
    out += "]}";
    usr.sub_sent_ns = now_ns();
    c.write();
  }

  // The contact slot of `name` in watcher u's list; -1 if it is not one of its contacts.
  int32_t slot_of(uint32_t u, std::string_view name) const {
    const auto& prefix = run_.options().user_prefix;
    if (name.size() < prefix.size() + 2 || name.substr(0, prefix.size()) != prefix ||
        name[prefix.size()] != 'p')
      return -1;
    uint32_t v = 0;
    const char* b = name.data() + prefix.size() + 1;
    const char* e = name.data() + name.size();
    auto r = std::from_chars(b, e, v);
    if (r.ec != std::errc{} || r.ptr != e || v >= n_) return -1;
    return slot_of_offset_[(v + n_ - u) % n_];
  }

  // One status, from a push or from the subscribe answer.
  void apply(uint32_t u, const boost::json::value& e, uint64_t now, bool push, PhaseStats& ps,
             Counters& k) {
    if (!e.is_object()) return k.bad_frames.add();
    const auto& o = e.get_object();
    int32_t slot = slot_of(u, get_str(o, "user"));
    if (slot < 0) return k.bad_frames.add();
    uint8_t st;
    const auto* hidden = o.if_contains("hidden");
    const auto* online = o.if_contains("online");
    if (hidden && hidden->is_bool() && hidden->get_bool()) {
      st = kHidden;
    } else if (online && online->is_bool()) {
      st = online->get_bool() ? kOnline : kOffline;
    } else {
      return k.bad_frames.add();
    }
    size_t i = size_t{u} * k_ + static_cast<uint32_t>(slot);
    const auto& v = users_[contact(u, static_cast<uint32_t>(slot))];
    if (st == kHidden) ps.hidden.add();
    auto last_seen = static_cast<int64_t>(get_u64(o, "last_seen"));
    if (st == kOffline && last_seen == 0) ps.no_last_seen.add();
    if (!push) {  // the answer: what the watcher starts from; nothing to measure
      if (st == kOnline) seen_online_[i] = v.since_ns.load(std::memory_order_relaxed);
      if (st == kOffline) seen_offline_[i] = v.down_ns.load(std::memory_order_relaxed);
      known_[i].store(st, std::memory_order_relaxed);
      last_seen_[i] = last_seen;
      return;
    }
    ps.entries.add();
    // The server sends a user only if what this connection has differs; offline -> offline
    // with a newer last_seen is a change (the user came and went within a window).
    if (known_[i].load(std::memory_order_relaxed) == st &&
        (st != kOffline || last_seen_[i] == last_seen))
      ps.redundant.add();
    known_[i].store(st, std::memory_order_relaxed);
    last_seen_[i] = last_seen;
    if (st == kOnline) {
      ps.online_entries.add();
      uint64_t since = v.since_ns.load(std::memory_order_relaxed);
      uint64_t auth = v.auth_ns.load(std::memory_order_relaxed);
      if (since != 0 && since != seen_online_[i]) {
        seen_online_[i] = since;
        ps.online_ns.record(now > since ? now - since : 0);
        if (auth != 0) ps.auth_ns.record(now > auth ? now - auth : 0);
      }
    } else if (st == kOffline) {
      ps.offline_entries.add();
      uint64_t down = v.down_ns.load(std::memory_order_relaxed);
      if (down != 0 && down != seen_offline_[i]) {
        seen_offline_[i] = down;
        ps.offline_ns.record(now > down ? now - down : 0);
      }
    }
  }

  Run& run_;
  const PresenceOptions& o_;
  uint32_t n_, k_;
  uint64_t batch_ns_;
  std::vector<User> users_;
  std::vector<std::atomic<uint8_t>> known_;  // [watcher * K + slot]
  std::vector<uint64_t> seen_online_;        // [watcher * K + slot]: since_ns already measured
  std::vector<uint64_t> seen_offline_;       // [watcher * K + slot]: down_ns already measured
  std::vector<int64_t> last_seen_;       // [watcher * K + slot]: of the last offline state known
  std::vector<uint32_t> offsets_;        // by contact slot
  std::vector<int32_t> slot_of_offset_;  // by offset; -1: not a contact offset
  std::vector<std::unique_ptr<WorkerState>> workers_;
  std::array<bool, 256> subscribing_{};  // per worker, written on it
  std::array<bool, 256> closing_all_{};  // per worker, written on it
  std::atomic<Phase> phase_{kSetup};
  std::atomic<uint64_t> churn_start_{0}, churn_stop_{0};
  std::atomic<size_t> mass_done_{0};
  std::atomic<bool> unsupported_{false};
  std::atomic<int> logged_{0};
};

double r3(double v) { return std::round(v * 1000) / 1000; }

}  // namespace

int run_presence(const CommonOptions& common, const PresenceOptions& o) {
  if (o.users < 2 || o.contacts == 0 || o.contacts >= o.users || o.contacts > kMaxContacts ||
      o.churn < 0 || o.duration_s < 0 || o.pause_min_ms > o.pause_max_ms || o.batch_ms == 0) {
    std::fprintf(stderr,
                 "presence: --users >= 2, 0 < --contacts < --users and <= %u, --churn >= 0, "
                 "--duration >= 0, --pause-min-ms <= --pause-max-ms and --batch-ms > 0 "
                 "required\n",
                 kMaxContacts);
    return 2;
  }
  bool churn = o.churn > 0 && o.duration_s > 0;
  if (!churn && !o.mass) {
    std::fprintf(stderr, "presence: nothing to do: give --churn and --duration, or --mass\n");
    return 2;
  }
  if (common.threads > 256) {
    std::fprintf(stderr, "presence: at most 256 --threads\n");
    return 2;
  }
  if (common.user_prefix.size() + fmt::formatted_size("p{}", o.users - 1) > 32) {
    std::fprintf(stderr, "presence: user ids would exceed 32 characters; shorten --user-prefix\n");
    return 2;
  }
  Run run(common);
  if (uint64_t{o.users} + 16 > run.socket_budget()) {
    std::fprintf(stderr,
                 "presence: --users %u does not fit this process's descriptor limit (%llu "
                 "sockets)\n",
                 o.users, static_cast<unsigned long long>(run.socket_budget()));
    return 2;
  }
  double batch_s = o.batch_ms / 1000.0;
  double setup_s = 60 + o.users / 100.0;
  double timeout = common.timeout_s > 0
                       ? common.timeout_s
                       : setup_s + (churn ? o.duration_s + o.pause_max_ms / 1000.0 + 30 : 0) +
                             (o.mass ? setup_s + o.mass_pause_ms / 1000.0 : 0) + 6 * batch_s;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout * 1e9);
  const uint64_t batch_ns = uint64_t{o.batch_ms} * 1'000'000;

  // Server CPU and RSS (0 / nullopt: unknown).
  auto cpu = [](int pid) -> std::optional<double> { return pid ? cpu_seconds(pid) : std::nullopt; };
  uint64_t rss_max = 0, last_rss_ns = 0;
  auto sample_rss = [&] {
    if (!o.server_pid || now_ns() - last_rss_ns < 250'000'000) return;
    last_rss_ns = now_ns();
    rss_max = std::max(rss_max, rss_kib(o.server_pid).value_or(0));
  };

  PresenceFleet fleet(run, o);
  run.start();
  fleet.open_all();
  auto setup_line = [&] {
    auto t = run.totals();
    return fmt::format("[presence] {:.1f}s setup: connected {}/{} failed {} subscribed {}",
                       run.elapsed_s(), fleet.ready_count(), o.users, t.failed,
                       fleet.subscribed_count());
  };
  bool ok = run.wait(
      [&] {
        auto t = run.totals();
        return t.connected >= o.users || t.failed > 0;
      },
      deadline, setup_line);
  ok = ok && run.totals().failed == 0;
  uint64_t connected = run.totals().connected;
  if (ok) {
    fleet.subscribe_all();
    ok = run.wait(
        [&] {
          Sum s;
          fleet.sum(s, {kSetup});
          return fleet.subscribed_count() >= o.users || s.subscribe_errors > 0;
        },
        deadline, setup_line);
    Sum s;
    fleet.sum(s, {kSetup});
    ok = ok && s.subscribe_errors == 0;
    if (fleet.unsupported()) {
      fleet.close_all();
      run.finish();
      std::fprintf(stderr, "presence: not supported by this server (presence_subscribe)\n");
      return 3;
    }
    if (!ok) std::fprintf(stderr, "presence: the subscriptions could not be set up\n");
  }

  // Waits until every user is back and subscribed, then until every watcher sees every
  // contact online (at most 2 windows + 3 s), then one more window for late pushes. Returns
  // {time everyone was back, time every watcher was right (0: never), wrong states at the end}.
  struct Settled {
    uint64_t back_ns = 0, right_ns = 0, wrong = 0;
    bool ok = false;
  };
  auto settle = [&](const std::function<bool()>& started, const char* name) {
    Settled r;
    auto line = [&] {
      return fmt::format("[presence] {:.1f}s {}: back {}/{} subscribed {} wrong {}",
                         run.elapsed_s(), name, fleet.ready_count(), o.users,
                         fleet.subscribed_count(), fleet.wrong_count());
    };
    r.ok = run.wait(
        [&] {
          sample_rss();
          return started() && fleet.subscribed_count() >= o.users;
        },
        deadline, line);
    r.back_ns = now_ns();
    if (!r.ok) {
      r.wrong = fleet.wrong_count();
      return r;
    }
    uint64_t limit = std::min(deadline, r.back_ns + 2 * batch_ns + uint64_t{3'000'000'000});
    if (run.wait(
            [&] {
              sample_rss();
              return fleet.wrong_count() == 0;
            },
            limit, line))
      r.right_ns = now_ns();
    run.wait([] { return false; }, std::min(deadline, now_ns() + batch_ns + 250'000'000), line);
    r.wrong = fleet.wrong_count();
    r.ok = !run.interrupted();
    return r;
  };

  // Churn.
  uint64_t churn_start = 0, churn_stop = 0;
  std::optional<double> cpu_c0, cpu_c1, self_c0, self_c1;
  Settled churned;
  if (ok && churn) {
    fleet.set_phase(kChurn);
    churn_start = now_ns() + 20'000'000;
    churn_stop = churn_start + static_cast<uint64_t>(o.duration_s * 1e9);
    cpu_c0 = cpu(o.server_pid);
    self_c0 = cpu_seconds(getpid());
    fleet.start_churn(churn_start, churn_stop);
    uint64_t last_frames = 0, last_ns = churn_start;
    double frames_now = 0;
    run.wait(
        [&] {
          sample_rss();
          return false;
        },
        std::min(deadline, churn_stop + 20'000'000),
        [&] {
          Sum s;
          fleet.sum(s, {kChurn});
          uint64_t now = now_ns();
          if (now > last_ns) {
            frames_now = static_cast<double>(s.frames - last_frames) * 1e9 /
                         static_cast<double>(now - last_ns);
            last_frames = s.frames;
            last_ns = now;
          }
          return fmt::format(
              "[presence] {:.1f}s churn: reconnects {} pushes {} ({:.0f}/s) entries {} online "
              "e2e p99 {:.0f}ms back {}/{}",
              run.elapsed_s(), s.reconnects, s.frames, frames_now, s.entries,
              to_ms(s.online_ns.percentile(99)), fleet.ready_count(), o.users);
        });
    cpu_c1 = cpu(o.server_pid);
    self_c1 = cpu_seconds(getpid());
    fleet.set_phase(kChurnSettle);
    churned = settle([] { return true; }, "churn settle");
    ok = churned.ok;
  }

  // Mass reconnect.
  uint64_t mass_start = 0;
  std::optional<double> cpu_m0, cpu_m1, self_m0, self_m1;
  Settled massed;
  if (ok && o.mass) {
    fleet.set_phase(kMass);
    // Everyone closes; once the server has taken them all offline, everyone reopens at once.
    mass_start = now_ns() + uint64_t{o.mass_pause_ms} * 1'000'000;
    fleet.mass_reconnect(mass_start);
    run.wait(
        [&] {
          sample_rss();
          return false;
        },
        std::min(deadline, mass_start),
        [&] {
          return fmt::format("[presence] {:.1f}s mass: all closed, reopening at once soon",
                             run.elapsed_s());
        });
    cpu_m0 = cpu(o.server_pid);
    self_m0 = cpu_seconds(getpid());
    massed = settle([&] { return fleet.mass_workers_done() >= run.size(); }, "mass reconnect");
    cpu_m1 = cpu(o.server_pid);
    self_m1 = cpu_seconds(getpid());
    ok = massed.ok;
  }
  sample_rss();
  uint64_t rss_end = o.server_pid ? rss_kib(o.server_pid).value_or(0) : 0;
  fleet.close_all();
  run.finish();

  auto t = run.totals();
  Sum churn_sum, churn_all, mass_sum, setup_sum;
  fleet.sum(churn_sum, {kChurn});
  fleet.sum(churn_all, {kChurn, kChurnSettle});
  fleet.sum(mass_sum, {kMass});
  fleet.sum(setup_sum, {kSetup});
  double churn_s = static_cast<double>(churn_stop - churn_start) / 1e9;
  // The mass phase lasts until every watcher saw every contact online (or gave up).
  uint64_t mass_end = massed.right_ns ? massed.right_ns : massed.back_ns;
  double mass_s = mass_start ? static_cast<double>(mass_end - mass_start) / 1e9 : 0;
  auto pct = [](std::optional<double> a, std::optional<double> b,
                double wall) -> boost::json::value {
    if (!a || !b || wall <= 0) return nullptr;
    return r3((*b - *a) / wall * 100);
  };

  // The headline figures: the churn phase if there was one, else the mass reconnect.
  const Sum& head = churn ? churn_sum : mass_sum;
  const Sum& head_all = churn ? churn_all : mass_sum;
  double head_s = churn ? churn_s : mass_s;
  auto per_s = [&](uint64_t n) { return head_s > 0 ? r3(static_cast<double>(n) / head_s) : 0.0; };
  uint64_t wrong = churned.wrong + massed.wrong;
  uint64_t bad_counts = setup_sum.hidden + churn_all.hidden + mass_sum.hidden +
                        setup_sum.subscribe_errors + churn_all.subscribe_errors +
                        mass_sum.subscribe_errors;
  uint64_t violations =
      setup_sum.batch_violations + churn_all.batch_violations + mass_sum.batch_violations;
  uint64_t min_gap = fleet.min_gap_ns();

  boost::json::object r;
  r["scenario"] = "presence";
  r["users"] = o.users;
  r["contacts"] = o.contacts;
  r["churn_rate"] = churn ? o.churn : 0.0;
  r["duration_s"] = churn ? o.duration_s : 0.0;
  r["pause_min_ms"] = o.pause_min_ms;
  r["pause_max_ms"] = o.pause_max_ms;
  r["mass"] = o.mass;
  r["batch_ms"] = o.batch_ms;
  r["threads"] = common.threads;
  r["connections"] = connected;
  r["reconnects"] = head.reconnects;
  r["throughput"] = per_s(head.entries);
  r["presence_frames_per_s"] = per_s(head.frames);
  r["presence_entries_per_s"] = per_s(head.entries);
  r["online_entries_per_s"] = per_s(head.online_entries);
  r["offline_entries_per_s"] = per_s(head.offline_entries);
  r["frames_per_watcher_per_s"] =
      head_s > 0 ? r3(static_cast<double>(head.frames) / o.users / head_s) : 0.0;
  r["entries_per_frame"] =
      head.frames ? r3(static_cast<double>(head.entries) / static_cast<double>(head.frames)) : 0.0;
  r["frames"] = head.frames;
  r["entries"] = head.entries;
  r["server_cpu_pct"] = churn ? pct(cpu_c0, cpu_c1, churn_s) : pct(cpu_m0, cpu_m1, mass_s);
  r["server_rss_kib"] = o.server_pid ? boost::json::value(rss_max) : boost::json::value(nullptr);
  r["server_rss_end_kib"] =
      o.server_pid ? boost::json::value(rss_end) : boost::json::value(nullptr);
  r["bench_cpu_pct"] = churn ? pct(self_c0, self_c1, churn_s) : pct(self_m0, self_m1, mass_s);
  add_percentiles(r, "e2e", head_all.online_ns);
  r["e2e_samples"] = head_all.online_ns.count();
  r["auth_to_online_p50_ms"] = r3(to_ms(head_all.auth_ns.percentile(50)));
  r["auth_to_online_p99_ms"] = r3(to_ms(head_all.auth_ns.percentile(99)));
  r["reconnect_p50_ms"] = r3(to_ms(head_all.connect_ns.percentile(50)));
  r["reconnect_p99_ms"] = r3(to_ms(head_all.connect_ns.percentile(99)));
  r["offline_p50_ms"] = r3(to_ms(head_all.offline_ns.percentile(50)));
  r["offline_p99_ms"] = r3(to_ms(head_all.offline_ns.percentile(99)));
  r["offline_samples"] = head_all.offline_ns.count();
  add_percentiles(r, "ack", head_all.subscribe_ns);
  r["setup_ack_p99_ms"] = r3(to_ms(setup_sum.subscribe_ns.percentile(99)));
  r["settle_ms"] = churn && churned.right_ns
                       ? boost::json::value(r3(to_ms(churned.right_ns - churned.back_ns)))
                       : boost::json::value(nullptr);
  r["wrong_state"] = wrong;
  r["lost"] = wrong;
  r["duplicated"] = 0;
  r["reordered"] = 0;
  r["hidden_entries"] = setup_sum.hidden + churn_all.hidden + mass_sum.hidden;
  r["redundant_entries"] = head_all.redundant;
  r["pushes_before_answer"] =
      setup_sum.before_answer + churn_all.before_answer + mass_sum.before_answer;
  r["offline_without_last_seen"] = head_all.no_last_seen;
  r["subscribe_errors"] =
      setup_sum.subscribe_errors + churn_all.subscribe_errors + mass_sum.subscribe_errors;
  r["churn_skipped"] = churn_sum.churn_skipped;
  r["batch_violations"] = violations;
  r["short_push_gaps"] = setup_sum.short_gaps + churn_all.short_gaps + mass_sum.short_gaps;
  r["push_gap_min_ms"] =
      min_gap == UINT64_MAX ? boost::json::value(nullptr) : boost::json::value(r3(to_ms(min_gap)));
  r["bad_frames"] = t.bad_frames;
  r["failed"] = t.failed + t.dropped;
  if (o.mass) {
    r["mass_reconnect_s"] =
        mass_start ? r3(static_cast<double>(massed.back_ns - mass_start) / 1e9) : 0.0;
    r["mass_settle_s"] =
        massed.right_ns ? boost::json::value(r3(mass_s)) : boost::json::value(nullptr);
    r["mass_frames"] = mass_sum.frames;
    r["mass_entries"] = mass_sum.entries;
    r["mass_frames_per_watcher"] = r3(static_cast<double>(mass_sum.frames) / o.users);
    r["mass_frames_per_watcher_max"] = fleet.max_mass_frames();
    r["mass_entries_per_watcher"] = r3(static_cast<double>(mass_sum.entries) / o.users);
    // One push per window while the phase lasts, +1 at either end.
    r["mass_frame_bound"] = static_cast<uint64_t>(std::ceil(mass_s / batch_s)) + 2;
    r["mass_server_cpu_pct"] = pct(cpu_m0, cpu_m1, mass_s);
    r["mass_e2e_p50_ms"] = r3(to_ms(mass_sum.online_ns.percentile(50)));
    r["mass_e2e_p99_ms"] = r3(to_ms(mass_sum.online_ns.percentile(99)));
    r["mass_e2e_max_ms"] = r3(to_ms(mass_sum.online_ns.max()));
    r["mass_ack_p99_ms"] = r3(to_ms(mass_sum.subscribe_ns.percentile(99)));
    r["mass_wrong_state"] = massed.wrong;
  }
  bool completed = ok && !run.interrupted();
  r["completed"] = completed;
  print_report(r, common.json);
  bool good = completed && wrong == 0 && bad_counts == 0 && t.failed == 0 && t.dropped == 0 &&
              t.bad_frames == 0 && (!o.batch_check || violations == 0);
  return good ? 0 : 1;
}

}  // namespace parley::bench
