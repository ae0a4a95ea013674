// What the tests of the Redis backends share: two Redis servers of the tests' own for the
// whole test program (tests/support/redis_server.h), clients for them with short reconnect
// backoffs, and a fresh key prefix per backend so that tests never see each other's keys.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "redis/redis_client.h"
#include "support/redis_server.h"

namespace parley::redis_test {

struct Servers {
  test::RedisServer one, two;
  std::vector<std::string> addresses() const { return {one.address(), two.address()}; }
};
// Started at first use: from a test's SetUp or body, the main thread (redis_server.h).
inline Servers& servers() {
  static Servers s;
  return s;
}

inline std::shared_ptr<redis::RedisShards> open_shards(const std::vector<std::string>& addresses) {
  using namespace std::chrono_literals;
  redis::RedisOptions base;
  base.reconnect_min = 20ms;
  base.reconnect_max = 200ms;
  auto shards = redis::RedisShards::open(addresses, base);
  EXPECT_TRUE(shards.ok());
  EXPECT_TRUE(shards.value()->wait_ready(5s)) << shards.value()->health().detail;
  return shards.value();
}

inline std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(::getpid()) + "." + std::to_string(++n) + ":";
}

}  // namespace parley::redis_test
