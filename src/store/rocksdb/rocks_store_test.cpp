// Runs the Store conformance suite against RocksStore in a temporary directory.
#include "store/rocksdb/rocks_store.h"

#include <filesystem>

#include "store/rocksdb/codec.h"
#include "store/store_conformance.h"

namespace parley::store::rocks {
namespace {

std::string sanitized(std::string name) {
  for (char& c : name)
    if (c == '/') c = '_';
  return name;
}

class RocksFactory final : public StoreFactory {
 public:
  std::unique_ptr<Store> create(const std::string& test_name, const SyncConfig& sync) override {
    dir_ = std::filesystem::temp_directory_path() /
           ("parley-store-test-" + std::to_string(::getpid()) + "-" + sanitized(test_name));
    std::filesystem::remove_all(dir_);
    return reopen(sync);
  }
  std::unique_ptr<Store> reopen(const SyncConfig& sync) override {
    auto s = RocksStore::open(dir_.string(), StoreConfig{Durability::flush, 1024},
                              sync);  // fsync: tests/integration
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!s) return nullptr;
    return std::move(s.value());
  }
  void destroy() override { std::filesystem::remove_all(dir_); }

 private:
  std::filesystem::path dir_;
};

INSTANTIATE_TEST_SUITE_P(RocksDB, GroupConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));
INSTANTIATE_TEST_SUITE_P(RocksDB, ReceiptConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));
INSTANTIATE_TEST_SUITE_P(RocksDB, MediaConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));
INSTANTIATE_TEST_SUITE_P(RocksDB, PushConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));
INSTANTIATE_TEST_SUITE_P(RocksDB, StoreConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));

// Settings rows written before push settings existed (version 1) read as dnd off, no
// previews; the current layout round-trips every field.
TEST(RocksCodec, SettingsVersions) {
  auto old = decode_settings(Encoder().u8(1).u8(1).varint(5000).take());
  ASSERT_TRUE(old);
  EXPECT_EQ(old->presence, PresenceVisibility::contacts);
  EXPECT_EQ(old->last_seen, 5000);
  EXPECT_EQ(old->dnd_until, 0);
  EXPECT_FALSE(old->push_preview);
  auto now = decode_settings(encode(UserSettings{PresenceVisibility::nobody, 7, 9000, true}));
  ASSERT_TRUE(now);
  EXPECT_EQ(now->presence, PresenceVisibility::nobody);
  EXPECT_EQ(now->last_seen, 7);
  EXPECT_EQ(now->dnd_until, 9000);
  EXPECT_TRUE(now->push_preview);
  EXPECT_FALSE(decode_settings(Encoder().u8(2).u8(0).varint(1).take()));  // truncated
}

// Due keys sort by time (negative ones included), then by user, device and chat.
TEST(RocksCodec, PushDueKeysSortByTime) {
  EXPECT_LT(push_due_key(-5, "b", "d", 1), push_due_key(3, "a", "d", 1));
  EXPECT_LT(push_due_key(3, "a", "d", 9), push_due_key(4, "a", "d", 1));
  EXPECT_LT(push_due_key(4, "a", "d", 1), push_due_key(4, "a", "d", 2));
  EXPECT_LT(push_due_bound(4), push_due_key(4, "", "", 0));
  EXPECT_LT(push_due_key(3, "zz", "zz", UINT64_MAX), push_due_bound(4));
  auto k = decode_push_due_key(push_due_key(-5, "bob", "phone", 42));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->ts, -5);
  EXPECT_EQ(k->user, "bob");
  EXPECT_EQ(k->device, "phone");
  EXPECT_EQ(k->chat, 42u);
  EXPECT_FALSE(decode_push_due_key(push_job_key("bob", "phone", 42)));
}

}  // namespace
}  // namespace parley::store::rocks
