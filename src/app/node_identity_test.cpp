// node_instance: one name per data directory, kept across restarts, refused when damaged.
#include "app/node_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace parley::app {
namespace {

namespace fs = std::filesystem;

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("parley-identity-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(NodeIdentityTest, IsMadeOnceAndKeptAcrossRestarts) {
  auto first = node_instance(dir_.string());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->size(), 32u);
  auto again = node_instance(dir_.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), first.value());
  EXPECT_FALSE(fs::exists(dir_ / "node-instance.tmp"));
}

TEST_F(NodeIdentityTest, EachDataDirectoryIsAnotherInstance) {
  auto a = node_instance((dir_ / "a").string());
  auto b = node_instance((dir_ / "b").string());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a.value(), b.value());
}

TEST_F(NodeIdentityTest, ADamagedFileIsRefusedNotReplaced) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "node-instance") << "not a name\n";
  auto r = node_instance(dir_.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::bad_request);
  EXPECT_NE(r.error().message.find("node-instance"), std::string::npos);
}

TEST_F(NodeIdentityTest, ADirectoryThatCannotBeMadeIsUnavailable) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  auto r = node_instance((dir_ / "file" / "sub").string());  // a file in the way
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
}

}  // namespace
}  // namespace parley::app
