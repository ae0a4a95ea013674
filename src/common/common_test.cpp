#include <gtest/gtest.h>

#include "common/config.h"
#include "common/ids.h"
#include "common/utf8.h"

namespace parley {

TEST(Utf8, AcceptsValidAndRejectsInvalid) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("hello"));
  EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("ab\x80"));
}

TEST(Ids, UserIdRules) {
  EXPECT_TRUE(valid_user_id("alice"));
  EXPECT_TRUE(valid_user_id("a.b-c_9"));
  EXPECT_FALSE(valid_user_id("al"));
  EXPECT_FALSE(valid_user_id("Alice"));
  EXPECT_FALSE(valid_user_id("_alice"));
  EXPECT_FALSE(valid_user_id("ali ce"));
  EXPECT_FALSE(valid_user_id(std::string(33, 'a')));
}

TEST(Ids, SnowflakeIsMonotonicAndCarriesNode) {
  SnowflakeGenerator gen(5);
  int64_t t = SnowflakeGenerator::kEpochMs + 1000;
  uint64_t prev = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t id = gen.next(i < 5000 ? t : t - 10);  // clock steps back half way
    EXPECT_GT(id, prev);
    EXPECT_EQ((id >> 12) & 0x3ff, 5u);
    prev = id;
  }
  EXPECT_EQ(new_device_id().size(), 17u);
}

TEST(Config, ParsesAndRejects) {
  auto c = parse_config("[limits]\nmax_message_bytes = 100\n[store]\ndurability = \"none\"\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->limits.max_message_bytes, 100u);
  EXPECT_EQ(c->store.durability, Durability::none);
  EXPECT_FALSE(parse_config("[limits]\nmax_mesage_bytes = 1\n").ok());
  EXPECT_FALSE(parse_config("[limits]\nmax_message_bytes = -1\n").ok());
  EXPECT_FALSE(parse_config("[store]\ndurability = \"sometimes\"\n").ok());
  EXPECT_FALSE(parse_config("not toml [").ok());
}

}  // namespace parley
