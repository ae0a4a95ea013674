// Runs the Store conformance suite against RocksStore in a temporary directory.
#include "store/rocksdb/rocks_store.h"

#include <filesystem>

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
INSTANTIATE_TEST_SUITE_P(RocksDB, StoreConformance, ::testing::Values(StoreFactoryMaker([] {
                           return std::make_shared<RocksFactory>();
                         })));

}  // namespace
}  // namespace parley::store::rocks
