#include "parley/cursor_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "parley/error.h"

namespace parley {
namespace {

class CursorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/parley_cursor_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }
  std::string dir_;
};

TEST_F(CursorFileTest, MissingFileIsNoCursor) {
  EXPECT_EQ(LoadCursorFile(dir_ + "/none"), std::nullopt);
}

TEST_F(CursorFileTest, RoundTripWithMode0600) {
  std::string path = dir_ + "/c";
  SaveCursorFile(path, 42);
  EXPECT_EQ(LoadCursorFile(path), 42);
  SaveCursorFile(path, 0);
  EXPECT_EQ(LoadCursorFile(path), 0);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no leftover
}

TEST_F(CursorFileTest, GarbageIsNoCursor) {
  std::string path = dir_ + "/g";
  for (const char* text : {"", "abc", "-3", "12x", "99999999999999999999999"}) {
    std::ofstream(path) << text;
    EXPECT_EQ(LoadCursorFile(path), std::nullopt) << text;
  }
}

TEST_F(CursorFileTest, UnwritableDirectoryThrowsIoError) {
  try {
    SaveCursorFile(dir_ + "/no/such/dir/c", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::kIo);
  }
}

}  // namespace
}  // namespace parley
