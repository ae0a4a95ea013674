#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "common/config.h"
#include "presence/local_presence.h"
#include "presence/presence_hub.h"
#include "presence/presence_reporter.h"

namespace parley::presence {
namespace {

using namespace std::chrono_literals;

class FakeTransport final : public net::Transport {
 public:
  FakeTransport(uint64_t id, boost::asio::any_io_executor ex) : id_(id), ex_(std::move(ex)) {}
  using net::Transport::send;
  void send(std::shared_ptr<const std::string> frame, net::FrameKind) override {
    std::lock_guard lock(mu_);
    frames_.push_back(*frame);
  }
  void close(uint16_t, std::string) override {}
  void set_batching(bool) override {}
  uint64_t id() const override { return id_; }
  boost::asio::any_io_executor executor() const override { return ex_; }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(frames_, {});
  }

 private:
  uint64_t id_;
  boost::asio::any_io_executor ex_;
  std::mutex mu_;
  std::vector<std::string> frames_;
};

// The hooks, backed by tables. Answers are taken when asked; with `hold` they are kept
// back until release(), to play out slow store lookups.
struct FakeStore {
  std::mutex mu;
  std::set<std::string> hidden;                             // users nobody else may see
  std::set<std::pair<std::string, std::string>> strangers;  // (watcher, target) pairs hidden
  std::map<std::string, int64_t> last_seen;
  bool hold = false;
  std::vector<std::function<void()>> held;

  HubHooks hooks() {
    HubHooks h;
    h.visible = [this](const std::string& watcher, const std::string& target,
                       std::function<void(bool)> cb) {
      std::unique_lock lock(mu);
      bool v = !hidden.contains(target) && !strangers.contains({watcher, target});
      if (hold) return held.push_back([cb, v] { cb(v); });
      lock.unlock();
      cb(v);
    };
    h.last_seen = [this](const std::string& user, std::function<void(int64_t)> cb) {
      std::unique_lock lock(mu);
      auto it = last_seen.find(user);
      int64_t v = it == last_seen.end() ? 0 : it->second;
      if (hold) return held.push_back([cb, v] { cb(v); });
      lock.unlock();
      cb(v);
    };
    return h;
  }
  void hide(const std::string& user, bool on) {
    std::lock_guard lock(mu);
    if (on)
      hidden.insert(user);
    else
      hidden.erase(user);
  }
  // Runs the held answers, newest first when `reverse`.
  void release(bool reverse = false) {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard lock(mu);
      hold = false;
      run = std::exchange(held, {});
    }
    if (reverse) std::reverse(run.begin(), run.end());
    for (auto& f : run) f();
  }
};

// ---- PresenceReporter ------------------------------------------------------------------

// What a node's sink got.
struct Recorder {
  std::mutex mu;
  std::vector<std::string> got;  // "bob:on@1000"
  PresenceReporter::Sink sink() {
    return [this](const std::vector<Transition>& ts) {
      std::lock_guard lock(mu);
      for (const auto& t : ts)
        got.push_back(fmt::format("{}:{}@{}", t.user, t.online ? "on" : "off", t.last_seen));
    };
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu);
    return std::exchange(got, {});
  }
};

Status status_of(const Presence& p, const std::string& user) {
  Status out;
  p.status({user}, [&](Result<std::vector<Status>> r) { out = r.value().at(0); });  // inline
  return out;
}

TEST(PresenceReporter, ReportsWhatItsOwnCallsChanged) {
  LocalPresence backend(90s);
  Recorder n1, n2;  // two nodes sharing one backend
  PresenceReporter r1(backend, n1.sink()), r2(backend, n2.sink());
  r1.touch("bob", "1:1", 1000);
  r2.touch("bob", "2:1", 1100);  // bob was online already: nothing to report
  r2.touch({{"carol", "2:2"}, {"bob", "2:1"}, {"dave", "2:3"}}, 1200);  // node 2's refresh
  EXPECT_EQ(n1.take(), std::vector<std::string>{"bob:on@1000"});
  EXPECT_EQ(n2.take(), (std::vector<std::string>{"carol:on@1200", "dave:on@1200"}));

  r2.drop("bob", "2:1", 1300);
  r1.drop("bob", "1:1", 1400);  // the last session: node 1 caused it
  EXPECT_TRUE(n2.take().empty());
  EXPECT_EQ(n1.take(), std::vector<std::string>{"bob:off@1400"});

  // Node 2 dies; node 1's expire notices, and it alone reports.
  r1.touch({}, 100'000);
  r2.expire(1200 + 90'000);  // nothing is over the TTL yet
  r1.expire(1200 + 90'001);
  EXPECT_EQ(n1.take(), (std::vector<std::string>{"carol:off@1200", "dave:off@1200"}));
  EXPECT_TRUE(n2.take().empty());
  r2.expire(1200 + 90'002);
  EXPECT_TRUE(n2.take().empty());
  EXPECT_FALSE(status_of(backend, "carol").online);
}

TEST(PresenceReporter, ReportsNothingAfterStop) {
  LocalPresence backend(90s);
  Recorder rec;
  PresenceReporter r(backend, rec.sink());
  r.touch("bob", "1:1", 1000);
  r.stop();
  r.drop("bob", "1:1", 2000);  // applied, not reported
  EXPECT_EQ(rec.take(), std::vector<std::string>{"bob:on@1000"});
  EXPECT_FALSE(status_of(backend, "bob").online);
  r.touch("", "1:2", 3000);  // refused by the backend: logged, nothing reported
  EXPECT_TRUE(rec.take().empty());
}

TEST(Visibility, NamesRoundTrip) {
  for (auto v : {Visibility::everyone, Visibility::contacts, Visibility::nobody})
    EXPECT_EQ(parse_visibility(to_string(v)), v);
  EXPECT_FALSE(parse_visibility("friends"));
  EXPECT_FALSE(parse_visibility(""));
}

// ---- PresenceHub -----------------------------------------------------------------------

class HubTest : public ::testing::Test {
 protected:
  HubTest()
      : presence_(90s),
        hub_(presence_, HubOptions{1000ms, 5}, store_.hooks(), ioc_.get_executor()),
        reporter_(presence_, [this](const std::vector<Transition>& ts) {
          for (const auto& t : ts) hub_.on_change(t.status(), t.version);
        }) {}

  std::shared_ptr<FakeTransport> conn(uint64_t id) {
    return std::make_shared<FakeTransport>(id, ioc_.get_executor());
  }
  // Subscribes and returns the answer as JSON (or "error:<code>"); the hooks answer at once.
  std::string sub(const std::shared_ptr<FakeTransport>& c, const std::string& watcher,
                  std::vector<std::string> users) {
    std::optional<Result<std::vector<Status>>> got;
    hub_.subscribe(c, watcher, std::move(users),
                   [&](Result<std::vector<Status>> r) { got.emplace(std::move(r)); });
    if (!got) return "pending";
    if (!got->ok()) return "error:" + std::string(errc_name(got->error().code));
    return statuses_json(got->value());
  }
  static std::string push(const std::string& entries) {
    return R"({"type":"presence","presence":[)" + entries + "]}";
  }

  boost::asio::io_context ioc_;
  FakeStore store_;
  LocalPresence presence_;
  PresenceHub hub_;
  PresenceReporter reporter_;  // this node's calls, their transitions fed to hub_
};

TEST_F(HubTest, SubscribeAnswersTheVisibleStatusOfEachUserInOrder) {
  reporter_.touch("bob", "n1:1", 1000);
  store_.last_seen["carol"] = 1732771100000;  // known only to the store
  store_.hide("dave", true);
  store_.hide("alice", true);  // hidden from others, never from herself
  EXPECT_EQ(sub(conn(1), "alice", {"bob", "carol", "dave", "alice", "bob"}),
            R"([{"user":"bob","online":true},)"
            R"({"user":"carol","online":false,"last_seen":1732771100000},)"
            R"({"user":"dave","hidden":true},{"user":"alice","online":false},)"
            R"({"user":"bob","online":true}])");
  EXPECT_EQ(hub_.subscription_count(), 4u);
}

TEST_F(HubTest, BatchingSendsOneFrameWithTheLatestStateOfEachUser) {
  auto c = conn(1);
  ASSERT_EQ(sub(c, "alice", {"bob", "carol"}),
            R"([{"user":"bob","online":false},{"user":"carol","online":false}])");
  reporter_.touch("bob", "n1:1", 1000);
  reporter_.touch("carol", "n1:2", 1500);
  reporter_.drop("bob", "n1:1", 2000);
  EXPECT_TRUE(c->take().empty());  // nothing before the batch
  hub_.flush();
  EXPECT_EQ(
      c->take(),
      std::vector<std::string>{push(
          R"({"user":"bob","online":false,"last_seen":2000},{"user":"carol","online":true})")});
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
}

// Transitions published by several nodes may overtake each other: the version orders them.
TEST_F(HubTest, AnOlderTransitionArrivingLateIsIgnored) {
  auto c = conn(1);
  ASSERT_EQ(sub(c, "alice", {"bob"}), R"([{"user":"bob","online":false}])");
  hub_.on_change(Status{"bob", true, 1000, false}, 7);
  hub_.on_change(Status{"bob", false, 900, false}, 6);  // came the slow way
  hub_.flush();
  EXPECT_EQ(c->take(), std::vector<std::string>{push(R"({"user":"bob","online":true})")});
  hub_.on_change(Status{"bob", false, 2000, false}, 8);
  hub_.on_change(Status{"bob", true, 1000, false}, 7);
  hub_.flush();
  EXPECT_EQ(c->take(),
            std::vector<std::string>{push(R"({"user":"bob","online":false,"last_seen":2000})")});
  hub_.on_change(Status{"bob", true, 3000, false});  // no version: applied as it comes
  hub_.flush();
  EXPECT_EQ(c->take(), std::vector<std::string>{push(R"({"user":"bob","online":true})")});
}

TEST_F(HubTest, AFlapWithinAWindowSendsNothing) {
  auto c = conn(1);
  reporter_.touch("bob", "n1:1", 1000);
  ASSERT_EQ(sub(c, "alice", {"bob"}), R"([{"user":"bob","online":true}])");
  reporter_.drop("bob", "n1:1", 2000);
  reporter_.touch("bob", "n1:2", 2100);  // reconnected within the window
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
  reporter_.drop("bob", "n1:2", 3000);
  hub_.flush();
  EXPECT_EQ(c->take(),
            std::vector<std::string>{push(R"({"user":"bob","online":false,"last_seen":3000})")});
}

TEST_F(HubTest, OverMaxSubscriptionsIsTooLargeAndChangesNothing) {
  auto c = conn(1);
  ASSERT_NE(sub(c, "alice", {"a", "b", "c"}).substr(0, 6), "error:");
  EXPECT_EQ(sub(c, "alice", {"c", "d", "e", "f"}), "error:too_large");  // 3 + 3 new > 5
  EXPECT_EQ(hub_.subscription_count(), 3u);
  reporter_.touch("d", "n1:1", 1000);
  hub_.flush();
  EXPECT_TRUE(c->take().empty());  // d was not subscribed

  EXPECT_EQ(sub(c, "alice", {"c", "d", "e", "e"}),  // 2 new: exactly 5
            R"([{"user":"c","online":false},{"user":"d","online":true},)"
            R"({"user":"e","online":false},{"user":"e","online":false}])");
  EXPECT_EQ(hub_.subscription_count(), 5u);
  EXPECT_EQ(sub(c, "alice", {"f"}), "error:too_large");
  EXPECT_EQ(sub(c, "alice", {"a", "a"}),
            R"([{"user":"a","online":false},{"user":"a","online":false}])");

  auto c2 = conn(2);
  EXPECT_EQ(sub(c2, "bob", {"1", "2", "3", "4", "5", "6"}), "error:too_large");
  EXPECT_EQ(hub_.subscription_count(), 5u);
  EXPECT_EQ(sub(c2, "bob", {"x", "x", "x", "x", "x", "x"}).substr(0, 2), "[{");  // one user
  EXPECT_EQ(hub_.subscription_count(), 6u);
}

TEST_F(HubTest, UnsubscribeStopsPushes) {
  auto c = conn(1);
  sub(c, "alice", {"bob", "carol"});
  hub_.unsubscribe(1, {"bob", "nobody"});
  EXPECT_EQ(hub_.subscription_count(), 1u);
  reporter_.touch("bob", "n1:1", 1000);
  reporter_.touch("carol", "n1:2", 1000);
  hub_.flush();
  EXPECT_EQ(c->take(), std::vector<std::string>{push(R"({"user":"carol","online":true})")});

  reporter_.drop("carol", "n1:2", 2000);
  hub_.unsubscribe(1, {});  // all, with a change pending
  EXPECT_EQ(hub_.subscription_count(), 0u);
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
}

TEST_F(HubTest, RemoveConnectionStopsPushes) {
  auto c1 = conn(1);
  auto c2 = conn(2);
  sub(c1, "alice", {"bob"});
  sub(c2, "carol", {"bob", "dave"});
  EXPECT_EQ(hub_.subscription_count(), 3u);
  hub_.remove_connection(1);
  EXPECT_EQ(hub_.subscription_count(), 2u);
  reporter_.touch("bob", "n1:1", 1000);
  hub_.flush();
  EXPECT_TRUE(c1->take().empty());
  EXPECT_EQ(c2->take(), std::vector<std::string>{push(R"({"user":"bob","online":true})")});
  hub_.remove_connection(2);
  hub_.remove_connection(2);
  EXPECT_EQ(hub_.subscription_count(), 0u);
}

TEST_F(HubTest, AHiddenUserIsAnsweredHiddenAndNeverPushed) {
  auto c = conn(1);
  store_.hide("dave", true);
  reporter_.touch("dave", "n1:1", 1000);
  EXPECT_EQ(sub(c, "alice", {"dave"}), R"([{"user":"dave","hidden":true}])");
  reporter_.drop("dave", "n1:1", 2000);
  hub_.flush();
  reporter_.touch("dave", "n1:2", 3000);
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
}

TEST_F(HubTest, VisibilityChangedHidesAndReveals) {
  auto c1 = conn(1);
  auto c2 = conn(2);
  reporter_.touch("bob", "n1:1", 1000);
  sub(c1, "alice", {"bob"});
  sub(c2, "bob", {"bob"});  // bob watching himself
  store_.hide("bob", true);
  hub_.visibility_changed("bob");
  hub_.flush();
  EXPECT_EQ(c1->take(), std::vector<std::string>{push(R"({"user":"bob","hidden":true})")});
  EXPECT_TRUE(c2->take().empty());

  reporter_.drop("bob", "n1:1", 2000);
  hub_.flush();
  EXPECT_TRUE(c1->take().empty());  // hidden: not pushed
  EXPECT_EQ(c2->take(),
            std::vector<std::string>{push(R"({"user":"bob","online":false,"last_seen":2000})")});

  store_.hide("bob", false);
  hub_.visibility_changed("bob");
  hub_.flush();
  EXPECT_EQ(c1->take(),
            std::vector<std::string>{push(R"({"user":"bob","online":false,"last_seen":2000})")});
  hub_.visibility_changed("bob");  // nothing changed: nothing sent
  hub_.flush();
  EXPECT_TRUE(c1->take().empty());
}

TEST_F(HubTest, RelationsChangedRechecksBothDirections) {
  auto alice = conn(1);
  auto bob = conn(2);
  reporter_.touch("alice", "n1:1", 1000);
  reporter_.touch("bob", "n1:2", 1000);
  sub(alice, "alice", {"bob"});
  sub(bob, "bob", {"alice"});
  // They stop sharing a chat (e.g. alice left their group): neither sees the other.
  {
    std::lock_guard lock(store_.mu);
    store_.strangers = {{"alice", "bob"}, {"bob", "alice"}};
  }
  hub_.relations_changed({"alice"});
  hub_.flush();
  EXPECT_EQ(alice->take(), std::vector<std::string>{push(R"({"user":"bob","hidden":true})")});
  EXPECT_EQ(bob->take(), std::vector<std::string>{push(R"({"user":"alice","hidden":true})")});
  reporter_.drop("bob", "n1:2", 2000);
  hub_.flush();
  EXPECT_TRUE(alice->take().empty());
  {
    std::lock_guard lock(store_.mu);
    store_.strangers.clear();
  }
  hub_.relations_changed({"bob"});
  hub_.flush();
  EXPECT_EQ(alice->take(),
            std::vector<std::string>{push(R"({"user":"bob","online":false,"last_seen":2000})")});
  EXPECT_EQ(bob->take(), std::vector<std::string>{push(R"({"user":"alice","online":true})")});
}

TEST_F(HubTest, RevealLooksUpAStatusNobodyHereHadSeen) {
  auto c = conn(1);
  store_.hide("dave", true);
  store_.last_seen["dave"] = 777;
  EXPECT_EQ(sub(c, "alice", {"dave"}), R"([{"user":"dave","hidden":true}])");
  store_.hide("dave", false);
  hub_.visibility_changed("dave");
  hub_.flush();
  EXPECT_EQ(c->take(),
            std::vector<std::string>{push(R"({"user":"dave","online":false,"last_seen":777})")});
}

TEST_F(HubTest, AWatcherAlwaysSeesItself) {
  auto c = conn(1);
  store_.hide("alice", true);
  reporter_.touch("alice", "n1:1", 1000);
  EXPECT_EQ(sub(c, "alice", {"alice"}), R"([{"user":"alice","online":true}])");
  hub_.visibility_changed("alice");
  reporter_.drop("alice", "n1:1", 2000);
  hub_.flush();
  EXPECT_EQ(c->take(),
            std::vector<std::string>{push(R"({"user":"alice","online":false,"last_seen":2000})")});
}

TEST_F(HubTest, OddUserNamesAreEscaped) {
  const std::string odd = "we\"ird\\na\nme\x01\t/\xc3\xa9\xe2\x80\xa8</script>";
  auto c = conn(1);
  auto answer = sub(c, "alice", {odd});
  auto arr = boost::json::parse(answer).as_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0].at("user").as_string(), odd);

  reporter_.touch(odd, "n1:1", 1000);
  hub_.flush();
  auto frames = c->take();
  ASSERT_EQ(frames.size(), 1u);
  auto frame = boost::json::parse(frames[0]).as_object();
  EXPECT_EQ(frame.at("type").as_string(), "presence");
  const auto& entry = frame.at("presence").as_array().at(0).as_object();
  EXPECT_EQ(entry.at("user").as_string(), odd);
  EXPECT_EQ(entry.at("online").as_bool(), true);
}

TEST_F(HubTest, AChangeDuringASlowSubscribeIsAnsweredNotPushedAgain) {
  auto c = conn(1);
  reporter_.touch("bob", "n1:1", 1000);
  store_.hold = true;
  std::optional<Result<std::vector<Status>>> got;
  hub_.subscribe(c, "alice", {"bob"},
                 [&](Result<std::vector<Status>> r) { got.emplace(std::move(r)); });
  EXPECT_FALSE(got);  // waiting for the visibility lookup
  reporter_.drop("bob", "n1:1", 5000);
  hub_.flush();
  EXPECT_TRUE(c->take().empty());  // not answered yet: nothing to push against
  store_.release();
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(statuses_json(got->value()), R"([{"user":"bob","online":false,"last_seen":5000}])");
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
}

TEST_F(HubTest, ANewerVisibilityCheckWinsOverAnOlderOneAnsweringLate) {
  auto c = conn(1);
  reporter_.touch("bob", "n1:1", 1000);
  store_.hold = true;
  std::optional<Result<std::vector<Status>>> got;
  hub_.subscribe(c, "alice", {"bob"},
                 [&](Result<std::vector<Status>> r) { got.emplace(std::move(r)); });
  store_.hide("bob", true);  // bob switches to `nobody` while the subscribe is in flight
  hub_.visibility_changed("bob");
  store_.release(/*reverse=*/true);  // the newer answer (hidden) first, the older one last
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(statuses_json(got->value()), R"([{"user":"bob","hidden":true}])");
  reporter_.drop("bob", "n1:1", 2000);
  hub_.flush();
  EXPECT_TRUE(c->take().empty());
}

TEST_F(HubTest, EachWatchingConnectionGetsItsOwnFrame) {
  auto c1 = conn(1);
  auto c2 = conn(2);
  sub(c1, "alice", {"bob"});
  sub(c2, "carol", {"bob", "dave"});
  reporter_.touch("bob", "n1:1", 1000);
  reporter_.touch("dave", "n1:2", 1000);
  hub_.flush();
  EXPECT_EQ(c1->take(), std::vector<std::string>{push(R"({"user":"bob","online":true})")});
  EXPECT_EQ(c2->take(), std::vector<std::string>{
                            push(R"({"user":"bob","online":true},{"user":"dave","online":true})")});
}

// Everything at once from several threads, hooks answering on other threads. Afterwards a
// connection that watched all along must end with every user's real state.
TEST(PresenceHubConcurrency, ConvergesOnTheFinalState) {
  boost::asio::io_context ioc;
  boost::asio::thread_pool pool(2);
  std::atomic<bool> async{false};
  std::mutex hidden_mu;
  std::set<std::string> hidden;
  HubHooks hooks;
  hooks.visible = [&](const std::string&, const std::string& target, std::function<void(bool)> cb) {
    bool v;
    {
      std::lock_guard lock(hidden_mu);
      v = !hidden.contains(target);
    }
    if (async) return boost::asio::post(pool, [cb, v] { cb(v); });
    cb(v);
  };
  hooks.last_seen = [&](const std::string&, std::function<void(int64_t)> cb) {
    if (async) return boost::asio::post(pool, [cb] { cb(0); });
    cb(0);
  };
  LocalPresence presence(90s);
  PresenceHub hub(presence, HubOptions{1000ms, 100}, hooks, ioc.get_executor());
  PresenceReporter reporter(presence, [&](const std::vector<Transition>& ts) {
    for (const auto& t : ts) hub.on_change(t.status(), t.version);
  });

  std::vector<std::string> users;
  for (int i = 0; i < 8; ++i) users.push_back(fmt::format("u{}", i));
  auto steady = std::make_shared<FakeTransport>(1, ioc.get_executor());
  auto churn = std::make_shared<FakeTransport>(2, ioc.get_executor());
  bool answered = false;
  hub.subscribe(steady, "w0", users, [&](Result<std::vector<Status>> r) { answered = r.ok(); });
  ASSERT_TRUE(answered);
  async = true;

  std::atomic<int64_t> clock{1};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::string key = "n1:" + std::to_string(t);
      for (int i = 0; i < 3000; ++i) {
        const auto& u = users[rng() % users.size()];
        if (rng() % 2)
          reporter.touch(u, key, clock++);
        else
          reporter.drop(u, key, clock++);
      }
    });
  threads.emplace_back([&] {
    std::mt19937 rng(7);
    for (int i = 0; i < 1000; ++i) {
      std::vector<std::string> some{users[rng() % users.size()], users[rng() % users.size()]};
      if (rng() % 2)
        hub.subscribe(churn, "w1", some, [](Result<std::vector<Status>>) {});
      else
        hub.unsubscribe(2, rng() % 4 ? some : std::vector<std::string>{});
    }
  });
  threads.emplace_back([&] {
    std::mt19937 rng(8);
    for (int i = 0; i < 500; ++i) {
      const auto& u = users[rng() % users.size()];
      {
        std::lock_guard lock(hidden_mu);
        if (rng() % 2)
          hidden.insert(u);
        else
          hidden.erase(u);
      }
      hub.visibility_changed(u);
    }
  });
  std::thread flusher([&] {
    while (!done) hub.flush();
  });
  for (auto& th : threads) th.join();
  done = true;
  flusher.join();
  pool.join();  // every hook answered

  async = false;
  {
    std::lock_guard lock(hidden_mu);
    hidden.clear();
  }
  for (const auto& u : users) hub.visibility_changed(u);
  hub.flush();

  std::map<std::string, std::string> last;  // user -> last entry the steady connection got
  for (const auto& u : users) last[u] = R"({"user":")" + u + R"(","online":false})";  // answer
  for (const auto& f : steady->take()) {
    auto frame = boost::json::parse(f);
    for (const auto& e : frame.at("presence").as_array())
      last[std::string(e.at("user").as_string())] = boost::json::serialize(e);
  }
  for (const auto& u : users) {
    Status st = status_of(presence, u);
    std::string want = statuses_json({Status{u, st.online, st.online ? 0 : st.last_seen, false}});
    EXPECT_EQ("[" + last[u] + "]", want) << u;
  }
  hub.remove_connection(1);
  hub.remove_connection(2);
  EXPECT_EQ(hub.subscription_count(), 0u);
}

TEST(PresenceHubTimer, FlushesEveryBatchWindowUntilStopped) {
  boost::asio::io_context ioc;
  LocalPresence presence(90s);
  PresenceHub hub(presence, HubOptions{5ms, 10}, HubHooks{}, ioc.get_executor());
  PresenceReporter reporter(presence, [&](const std::vector<Transition>& ts) {
    for (const auto& t : ts) hub.on_change(t.status(), t.version);
  });
  auto c = std::make_shared<FakeTransport>(1, ioc.get_executor());
  std::optional<Result<std::vector<Status>>> got;
  hub.subscribe(c, "alice", {"bob"},
                [&](Result<std::vector<Status>> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(got && got->ok());
  hub.start();
  reporter.touch("bob", "n1:1", 1000);
  std::vector<std::string> frames;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (frames.empty() && std::chrono::steady_clock::now() < deadline) {
    ioc.run_one_for(100ms);
    frames = c->take();
  }
  EXPECT_EQ(frames, std::vector<std::string>{
                        R"({"type":"presence","presence":[{"user":"bob","online":true}]})"});
  hub.stop();
  ioc.restart();
  ioc.run();  // returns: the cancelled wait was the only work
}

TEST(PresenceConfig, ParsesPresenceAndTypingSections) {
  Config defaults;
  EXPECT_EQ(defaults.presence.batch_ms, 1000u);
  EXPECT_EQ(defaults.presence.max_subscriptions, 500u);
  EXPECT_EQ(defaults.presence.ttl_s, 90u);
  EXPECT_EQ(defaults.typing.ttl_ms, 6000u);
  EXPECT_EQ(defaults.typing.min_interval_ms, 1000u);

  auto c = parse_config(
      "[presence]\nbatch_ms = 250\nmax_subscriptions = 50\nttl_s = 30\n"
      "[typing]\nttl_ms = 3000\nmin_interval_ms = 500\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->presence.batch_ms, 250u);
  EXPECT_EQ(c->presence.max_subscriptions, 50u);
  EXPECT_EQ(c->presence.ttl_s, 30u);
  EXPECT_EQ(c->typing.ttl_ms, 3000u);
  EXPECT_EQ(c->typing.min_interval_ms, 500u);

  for (const char* bad :
       {"[presence]\nbatch_ms = 0\n", "[presence]\nmax_subscriptions = 0\n",
        "[presence]\nttl_s = 0\n", "[presence]\nbatch_ms = 3600001\n",
        "[presence]\nmax_subscriptions = -1\n", "[presence]\nttl = 5\n", "[typing]\nttl_ms = 0\n",
        "[typing]\nmin_interval_ms = 0\n", "[typing]\nttl_ms = \"6s\"\n"}) {
    auto r = parse_config(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::bad_request);
  }
  EXPECT_NE(parse_config("[presence]\nbatch_ms = 0\n").error().message.find("presence.batch_ms"),
            std::string::npos);
}

}  // namespace
}  // namespace parley::presence
