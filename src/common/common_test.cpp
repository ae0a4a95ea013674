#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <random>

#include "common/config.h"
#include "common/ids.h"
#include "common/json_text.h"
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

TEST(Utf8, ReplacesEachInvalidByte) {
  EXPECT_EQ(utf8_replace_invalid("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(utf8_replace_invalid("a\xff"
                                 "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(utf8_replace_invalid("\xc3"), "\xef\xbf\xbd");
  EXPECT_EQ(utf8_replace_invalid("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(JsonQuote, EscapesHostileStrings) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quote("line\nbreak\r\t"), R"("line\nbreak\r\t")");
  EXPECT_EQ(json_quote(std::string_view("nul\0x", 5)), R"("nul\u0000x")");
  EXPECT_EQ(json_quote("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(json_quote("\xff"), "\"\xef\xbf\xbd\"");
  // What an injection would try: the quote closes nothing.
  auto v = boost::json::parse(R"({"device_id":)" + json_quote(R"(x","admin":true,"y":")") + "}");
  EXPECT_EQ(v.as_object().size(), 1u);
  EXPECT_EQ(v.at("device_id").as_string(), R"(x","admin":true,"y":")");
}

// Any bytes at all: the result parses as one JSON string that holds the input (or, where
// the input is not UTF-8, the input with U+FFFD for each bad byte) and has no raw control
// character, so that it can never end a frame line (PROTOCOL.md §3.1).
TEST(JsonQuote, ArbitraryBytesAlwaysGiveOneValidString) {
  std::mt19937 rng(20261207);
  // Bytes a hostile or broken client would pick most, then anything.
  std::string special = "\"\\/\n\r\t\b\f{}[],:";
  special += '\0';
  special += "\x7f\x80\xbf\xc0\xc3\xe2\xed\xf0\xf4\xf8\xff";
  for (int round = 0; round < 50000; ++round) {
    std::string s(rng() % 48, '\0');
    for (char& c : s)
      c = rng() % 3 == 0 ? special[rng() % special.size()] : static_cast<char>(rng() % 256);
    const std::string quoted = json_quote(s);
    for (unsigned char c : quoted) ASSERT_GE(c, 0x20) << "raw control byte for round " << round;
    boost::json::error_code ec;
    auto v = boost::json::parse(quoted, ec);
    ASSERT_FALSE(ec) << "round " << round << ": " << quoted;
    ASSERT_TRUE(v.is_string());
    const std::string back(v.as_string());
    ASSERT_EQ(back, valid_utf8(s) ? s : utf8_replace_invalid(s)) << "round " << round;
    ASSERT_TRUE(valid_utf8(back));
  }
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

TEST(Config, Cluster) {
  auto alone = parse_config("");
  ASSERT_TRUE(alone.ok());
  EXPECT_FALSE(alone->cluster.enabled());
  auto c = parse_config(
      "[cluster]\nredis = [\"127.0.0.1:6379\", \"127.0.0.1:6380\"]\n"
      "postgres = [\"host=127.0.0.1 dbname=parley\"]\npostgres_pool = 8\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->cluster.enabled());
  EXPECT_EQ(c->cluster.redis.size(), 2u);
  EXPECT_EQ(c->cluster.redis[1], "127.0.0.1:6380");
  EXPECT_EQ(c->cluster.postgres_pool, 8u);
  // Nodes on Redis need a shared store.
  auto no_store = parse_config("[cluster]\nredis = [\"127.0.0.1:6379\"]\n");
  ASSERT_FALSE(no_store.ok());
  EXPECT_NE(no_store.error().message.find("cluster.postgres"), std::string::npos);
  EXPECT_FALSE(parse_config("[cluster]\nredis = \"127.0.0.1:6379\"\n").ok());  // not a list
  EXPECT_FALSE(parse_config("[cluster]\npostgres = [\"\"]\n").ok());           // empty entry
  EXPECT_FALSE(parse_config("[cluster]\npostgres_pool = 0\n").ok());
  EXPECT_FALSE(parse_config("[cluster]\nreconnect_min_ms = 9000\n").ok());  // over the max
  auto two_pg = parse_config("[cluster]\npostgres = [\"host=a\", \"host=b\"]\n");
  ASSERT_TRUE(two_pg.ok());  // two shards
  EXPECT_EQ(two_pg->cluster.postgres.size(), 2u);
  auto twice = parse_config("[cluster]\npostgres = [\"host=a\", \"host=a\"]\n");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("twice"), std::string::npos);
}

}  // namespace parley
