// Runs the MediaStore conformance suite against FsMediaStore in a temporary directory, plus
// the filesystem layout it promises.
#include "media/fs_media_store.h"

#include <unistd.h>

#include <filesystem>

#include "media/media_store_conformance.h"

namespace parley::media {
namespace {

class FsFactory final : public MediaStoreFactory {
 public:
  std::unique_ptr<MediaStore> create(const std::string& test_name) override {
    root_ = std::filesystem::temp_directory_path() /
            ("parley-media-test-" + std::to_string(::getpid()) + "-" + test_name);
    std::filesystem::remove_all(root_);
    return reopen();
  }
  std::unique_ptr<MediaStore> reopen() override {
    auto s = FsMediaStore::open(root_.string());
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!s) return nullptr;
    return std::move(s.value());
  }
  std::string spool_dir() override { return (root_ / "tmp").string(); }
  void destroy() override { std::filesystem::remove_all(root_); }

 private:
  std::filesystem::path root_;
};

INSTANTIATE_TEST_SUITE_P(Filesystem, MediaStoreConformance,
                         ::testing::Values(MediaStoreFactoryMaker([] {
                           return std::make_shared<FsFactory>();
                         })));

TEST(FsMediaStore, Layout) {
  const auto root = std::filesystem::temp_directory_path() /
                    ("parley-media-layout-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  auto store = FsMediaStore::open(root.string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto up = store.value()->begin(100);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(std::filesystem::path(up.value()->spool_path()).parent_path(), root / "tmp");
  ASSERT_TRUE(up.value()->write("abc").ok());
  auto info = up.value()->commit();
  ASSERT_TRUE(info.ok());
  const auto path = root / "objects" / "ba" / "78" /
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(store.value()->object_path(info->id), path.string());
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
  EXPECT_EQ(std::filesystem::file_size(path), 3u);
  // Junk in the object tree is not an object.
  std::filesystem::create_directories(root / "objects" / "zz");
  { std::ofstream(root / "objects" / "ba" / "78" / "notes.txt") << "x"; }
  auto all = store.value()->list({}, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all.value()[0].id, info->id);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace parley::media
