// The Presence conformance suite: the contract of presence/presence.h as tests. Every backend
// instantiates it once (INSTANTIATE_TEST_SUITE_P) with a factory that makes a fresh, empty
// backend whose sessions live `ttl`. Time is what the calls pass (now_ms), so TTLs are tested
// without waiting; several threads calling one backend play several nodes sharing it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "presence/presence.h"

namespace parley::presence_test {

using presence::Presence;
using presence::SessionTouch;
using presence::Status;
using presence::Transition;

// A fresh presence backend whose sessions live `ttl`.
using PresenceMaker = std::function<std::unique_ptr<Presence>(std::chrono::milliseconds ttl)>;

class PresenceConformance : public ::testing::TestWithParam<PresenceMaker> {
 protected:
  static constexpr int64_t T = 1'700'000'000'000;  // a realistic "now", in ms
  static constexpr std::chrono::milliseconds kTtl{90'000};

  void SetUp() override { p_ = GetParam()(kTtl); }

  static Presence::Done keep(std::promise<Result<std::vector<Transition>>>& p) {
    return [&p](Result<std::vector<Transition>> r) { p.set_value(std::move(r)); };
  }
  Result<std::vector<Transition>> try_touch(std::vector<SessionTouch> sessions, int64_t now) {
    std::promise<Result<std::vector<Transition>>> p;
    p_->touch(std::move(sessions), now, keep(p));
    return p.get_future().get();
  }
  Result<std::vector<Transition>> try_drop(const std::string& user, const std::string& key,
                                           int64_t now) {
    std::promise<Result<std::vector<Transition>>> p;
    p_->drop(user, key, now, keep(p));
    return p.get_future().get();
  }
  Result<std::vector<Status>> try_status(std::vector<std::string> users) {
    std::promise<Result<std::vector<Status>>> p;
    p_->status(std::move(users),
               [&p](Result<std::vector<Status>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  static std::vector<Transition> value(Result<std::vector<Transition>> r) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r ? std::move(r.value()) : std::vector<Transition>{};
  }
  std::vector<Transition> touch(std::vector<SessionTouch> sessions, int64_t now) {
    return value(try_touch(std::move(sessions), now));
  }
  std::vector<Transition> touch(const std::string& user, const std::string& key, int64_t now) {
    return touch({SessionTouch{user, key}}, now);
  }
  std::vector<Transition> drop(const std::string& user, const std::string& key, int64_t now) {
    return value(try_drop(user, key, now));
  }
  // Sorted by user: expire() returns its users in no particular order.
  std::vector<Transition> expire(int64_t now) {
    std::promise<Result<std::vector<Transition>>> p;
    p_->expire(now, keep(p));
    auto out = value(p.get_future().get());
    std::sort(out.begin(), out.end(),
              [](const Transition& a, const Transition& b) { return a.user < b.user; });
    return out;
  }
  std::vector<Status> statuses(std::vector<std::string> users) {
    auto r = try_status(std::move(users));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r ? r.value() : std::vector<Status>{};
  }
  Status status(const std::string& user) {
    auto s = statuses({user});
    return s.size() == 1 ? s[0] : Status{};
  }
  // The transitions without their versions, to compare with expectations.
  struct Seen {
    std::string user;
    bool online;
    int64_t last_seen;
    bool operator==(const Seen&) const = default;
    friend std::ostream& operator<<(std::ostream& os, const Seen& s) {
      return os << s.user << (s.online ? " online " : " offline ") << s.last_seen;
    }
  };
  static std::vector<Seen> seen(const std::vector<Transition>& ts) {
    std::vector<Seen> out;
    for (const auto& t : ts) out.push_back(Seen{t.user, t.online, t.last_seen});
    return out;
  }

  std::unique_ptr<Presence> p_;
};

TEST_P(PresenceConformance, TheFirstSessionBringsAUserOnlineFurtherOnesDoNot) {
  auto on = touch("bob", "n1:1", T + 1000);
  EXPECT_EQ(seen(on), (std::vector<Seen>{{"bob", true, T + 1000}}));
  ASSERT_EQ(on.size(), 1u);
  EXPECT_GT(on[0].version, 0u);
  EXPECT_TRUE(touch("bob", "n2:5", T + 1500).empty());  // a second session, on another node
  EXPECT_TRUE(touch("bob", "n1:1", T + 2000).empty());  // a refresh
  EXPECT_EQ(status("bob"), (Status{"bob", true, T + 2000, false}));  // online: latest touch
}

TEST_P(PresenceConformance, DroppingTheLastSessionTakesTheUserOfflineAtTheDropTime) {
  auto on = touch("bob", "n1:1", T + 1000);
  touch("bob", "n1:2", T + 1500);
  EXPECT_TRUE(drop("bob", "n1:1", T + 2000).empty());  // one session left: still online
  EXPECT_TRUE(status("bob").online);
  auto off = drop("bob", "n1:2", T + 3000);
  EXPECT_EQ(seen(off), (std::vector<Seen>{{"bob", false, T + 3000}}));
  ASSERT_EQ(off.size(), 1u);
  ASSERT_EQ(on.size(), 1u);
  EXPECT_GT(off[0].version, on[0].version);
  EXPECT_EQ(status("bob"), (Status{"bob", false, T + 3000, false}));

  EXPECT_TRUE(drop("bob", "n1:2", T + 4000).empty());     // dropped twice: nothing
  EXPECT_TRUE(drop("nobody", "n1:9", T + 4000).empty());  // never seen: nothing
  EXPECT_EQ(status("nobody"), (Status{"nobody", false, 0, false}));
  auto again = touch("bob", "n1:3", T + 5000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].online);
  EXPECT_GT(again[0].version, off[0].version);
}

TEST_P(PresenceConformance, ExpireRemovesOnlySessionsNotTouchedWithinTheTtl) {
  const int64_t ttl = kTtl.count();
  touch({{"bob", "n1:1"}, {"bob", "n2:7"}, {"carol", "n1:2"}, {"dave", "n2:8"}}, T);
  touch({{"bob", "n2:7"}, {"dave", "n2:8"}}, T + 60'000);  // node 2 refreshes; node 1 died
  EXPECT_TRUE(expire(T + ttl).empty());                    // exactly the TTL: still live
  // n1:1 is gone but n2:7 keeps bob online; carol had n1:2 only.
  EXPECT_EQ(seen(expire(T + ttl + 1)), (std::vector<Seen>{{"carol", false, T}}));
  EXPECT_TRUE(expire(T + ttl + 1).empty());  // already returned once
  EXPECT_EQ(status("bob"), (Status{"bob", true, T + 60'000, false}));
  EXPECT_FALSE(status("carol").online);

  // Node 2 stops refreshing too: last seen when it last refreshed, not when noticed.
  EXPECT_EQ(seen(expire(T + 60'000 + ttl + 5000)),
            (std::vector<Seen>{{"bob", false, T + 60'000}, {"dave", false, T + 60'000}}));
  EXPECT_FALSE(status("bob").online);
  EXPECT_TRUE(drop("bob", "n2:7", T + 200'000).empty());  // the node's late drop: nothing
}

TEST_P(PresenceConformance, ABatchedTouchReturnsTheUsersItBroughtOnlineInOrder) {
  touch("dave", "n1:0", T);
  EXPECT_EQ(
      seen(touch({{"alice", "n1:1"},
                  {"bob", "n1:2"},
                  {"alice", "n1:3"},
                  {"dave", "n1:4"},
                  {"carol", "n1:5"}},
                 T + 10)),
      (std::vector<Seen>{{"alice", true, T + 10}, {"bob", true, T + 10}, {"carol", true, T + 10}}));
  EXPECT_EQ(seen(touch({{"bob", "n1:2"}, {"erin", "n2:1"}}, T + 20)),
            (std::vector<Seen>{{"erin", true, T + 20}}));
  EXPECT_TRUE(touch(std::vector<SessionTouch>{}, T + 30).empty());
  EXPECT_TRUE(drop("alice", "n1:1", T + 40).empty());  // n1:3 left
  EXPECT_EQ(seen(drop("alice", "n1:3", T + 50)), (std::vector<Seen>{{"alice", false, T + 50}}));
}

TEST_P(PresenceConformance, StatusAnswersEveryUserInTheOrderAsked) {
  touch("bob", "n1:1", T + 100);
  touch("carol", "n1:2", T + 100);
  drop("carol", "n1:2", T + 200);
  EXPECT_EQ(statuses({"carol", "nobody", "bob", "carol"}),
            (std::vector<Status>{{"carol", false, T + 200, false},
                                 {"nobody", false, 0, false},
                                 {"bob", true, T + 100, false},
                                 {"carol", false, T + 200, false}}));
  EXPECT_TRUE(statuses({}).empty());
}

TEST_P(PresenceConformance, BadInputIsRefusedAndChangesNothing) {
  auto r = try_touch({{"alice", "n1:1"}, {"", "n1:2"}}, T);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::bad_request);
  r = try_touch({{"bob", ""}}, T);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::bad_request);
  EXPECT_EQ(statuses({"alice", "bob"}),
            (std::vector<Status>{{"alice", false, 0, false}, {"bob", false, 0, false}}));

  touch("alice", "n1:1", T);
  for (auto [user, key] : {std::pair{"", "n1:1"}, std::pair{"alice", ""}}) {
    r = try_drop(user, key, T + 10);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::bad_request);
  }
  EXPECT_TRUE(status("alice").online);
  auto s = try_status({"alice", ""});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::bad_request);
}

TEST_P(PresenceConformance, VersionsKeepGrowingAfterTheBackendForgetsAUser) {
  uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    const int64_t t = T + round * 1'000'000;
    auto on = touch("bob", "n1:1", t);
    auto off = drop("bob", "n1:1", t + 10);
    ASSERT_EQ(on.size(), 1u);
    ASSERT_EQ(off.size(), 1u);
    EXPECT_GT(on[0].version, last);
    EXPECT_GT(off[0].version, on[0].version);
    last = off[0].version;
    expire(t + 500'000);  // offline for a long time: the backend may forget bob
    expire(t + 600'000);
  }
}

// Two nodes' refresh timers expire at the same moment: each user is returned to one.
TEST_P(PresenceConformance, ConcurrentExpiresReturnEachUserOnce) {
  constexpr int kUsers = 200;
  std::vector<SessionTouch> all;
  for (int i = 0; i < kUsers; ++i)
    all.push_back(SessionTouch{"u" + std::to_string(i), "n9:" + std::to_string(i)});
  ASSERT_EQ(touch(all, T).size(), static_cast<size_t>(kUsers));
  std::mutex mu;
  std::map<std::string, int> returned;
  std::vector<std::thread> nodes;
  for (int n = 0; n < 4; ++n)
    nodes.emplace_back([&] {
      std::promise<void> done;
      p_->expire(T + kTtl.count() + 1, [&](Result<std::vector<Transition>> r) {
        EXPECT_TRUE(r.ok());
        if (r) {
          std::lock_guard lock(mu);
          for (const auto& t : r.value()) {
            EXPECT_FALSE(t.online);
            EXPECT_EQ(t.last_seen, T);
            ++returned[t.user];
          }
        }
        done.set_value();
      });
      done.get_future().wait();
    });
  for (auto& t : nodes) t.join();
  EXPECT_EQ(returned.size(), static_cast<size_t>(kUsers));
  for (const auto& [user, times] : returned) EXPECT_EQ(times, 1) << user;
}

// Several nodes (threads) touch, drop and expire the same users at once. Every transition
// is returned once: by version, each user's transitions alternate online/offline, and once
// everything is dropped or expired, every user is offline with as many of each.
TEST_P(PresenceConformance, RacingCallersGetEachTransitionExactlyOnce) {
  constexpr int64_t kShortTtl = 40;  // in the logical clock's ticks: expiries do happen
  p_ = GetParam()(std::chrono::milliseconds(kShortTtl));
  const std::vector<std::string> users{"u0", "u1", "u2", "u3", "u4"};
  std::atomic<int64_t> clock{T};
  std::atomic<int> calls{0}, completions{0};
  std::mutex mu;
  std::vector<Transition> got;
  auto collect = [&](Result<std::vector<Transition>> r) {
    EXPECT_TRUE(r.ok());
    if (r) {
      std::lock_guard lock(mu);
      got.insert(got.end(), r->begin(), r->end());
    }
    ++completions;
  };
  std::vector<std::thread> threads;
  for (int node = 1; node <= 3; ++node)
    threads.emplace_back([&, node] {
      std::mt19937 rng(node);
      for (int i = 0; i < 1500; ++i) {
        const auto& u = users[rng() % users.size()];
        std::string key = "n" + std::to_string(node) + ":" + std::to_string(rng() % 3);
        ++calls;
        switch (rng() % 4) {
          case 0:  // a refresh of several sessions
            p_->touch({{u, key}, {users[rng() % users.size()], key + "r"}}, clock++, collect);
            break;
          case 1:
            p_->touch({{u, key}}, clock++, collect);
            break;
          default:
            p_->drop(u, key, clock++, collect);
            break;
        }
      }
    });
  threads.emplace_back([&] {  // a fourth node only expires
    for (int i = 0; i < 500; ++i) {
      ++calls;
      p_->expire(clock.load(), collect);
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  // Completions may come later than the calls (a remote backend): wait for the last ones.
  for (int i = 0; i < 500 && completions.load() < calls.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(completions.load(), calls.load());
  // Whatever is left expires.
  auto rest = expire(clock.load() + 10 * kShortTtl);
  got.insert(got.end(), rest.begin(), rest.end());

  std::map<std::string, std::vector<Transition>> by_user;
  for (auto& t : got) by_user[t.user].push_back(t);
  for (const auto& u : users) {
    auto& ts = by_user[u];
    ASSERT_FALSE(ts.empty()) << u;
    std::sort(ts.begin(), ts.end(),
              [](const Transition& a, const Transition& b) { return a.version < b.version; });
    for (size_t i = 0; i < ts.size(); ++i) {
      if (i > 0) {
        ASSERT_LT(ts[i - 1].version, ts[i].version) << u << ": a version returned twice";
      }
      ASSERT_EQ(ts[i].online, i % 2 == 0)
          << u << " transition " << i << " (version " << ts[i].version << ")";
    }
    EXPECT_FALSE(ts.back().online) << u;
    EXPECT_FALSE(status(u).online) << u;
  }
}

TEST_P(PresenceConformance, ReportsItsHealth) { EXPECT_TRUE(p_->health().ok); }

}  // namespace parley::presence_test
