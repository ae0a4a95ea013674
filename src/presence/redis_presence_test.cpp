// Runs the Presence conformance suite against RedisPresence on two real Redis servers (the
// users spread over both), and what happens when one of them fails.
#include "presence/redis_presence.h"

#include <atomic>

#include "presence/presence_conformance.h"
#include "redis/redis_test_servers.h"

namespace parley::presence_test {
namespace {

using namespace std::chrono_literals;
using presence::RedisPresence;

using redis_test::open_shards;
using redis_test::servers;

// Each backend gets its own key prefix: a fresh, empty presence on the shared servers.
std::unique_ptr<presence::Presence> make(std::chrono::milliseconds ttl) {
  return std::make_unique<RedisPresence>(open_shards(servers().addresses()), ttl,
                                         redis_test::fresh_prefix());
}

INSTANTIATE_TEST_SUITE_P(Redis, PresenceConformance, ::testing::Values(PresenceMaker(make)));

Result<std::vector<Transition>> touch(presence::Presence& p, const std::string& user, int64_t now) {
  std::promise<Result<std::vector<Transition>>> done;
  p.touch({{user, "n1:" + user}}, now, [&](auto r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

// Users on a server that is down get `unavailable`; the others carry on; once it is back,
// its users work again without a new backend.
TEST(RedisPresence, AServerDownFailsOnlyItsUsersAndIsUsedAgainWhenBack) {
  auto shards = open_shards(servers().addresses());
  RedisPresence p(shards, 90s, "fault:");
  // One user on each server.
  std::string on0, on1;
  for (int i = 0; on0.empty() || on1.empty(); ++i) {
    auto u = "user" + std::to_string(i);
    (shards->shard_of(u) == 0 ? on0 : on1) = u;
  }
  ASSERT_TRUE(touch(p, on0, 1000).ok());
  servers().one.kill();
  auto down = touch(p, on0 + "x", 2000);
  for (int i = 0; i < 50 && down.ok(); ++i) {  // until the client noticed the drop
    std::this_thread::sleep_for(20ms);
    down = touch(p, on0 + "x" + std::to_string(i), 2000);
  }
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Errc::unavailable);
  EXPECT_FALSE(p.health().ok);
  auto other = touch(p, on1, 2000);
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->size(), 1u);

  servers().one.start();  // empty: its presence state is gone, sessions come back on refresh
  ASSERT_TRUE(shards->wait_ready(10s));
  EXPECT_TRUE(p.health().ok);
  auto back = touch(p, on0, 3000);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), 1u);  // the restarted server forgot it: online again
  EXPECT_TRUE(back->at(0).online);
}

}  // namespace
}  // namespace parley::presence_test
