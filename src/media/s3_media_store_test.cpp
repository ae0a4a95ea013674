// Runs the MediaStore conformance suite against S3MediaStore and a real local S3-compatible
// server: s3rver, started once for the whole binary by tests/support/s3rver.h (tests/s3/
// start.js on a free loopback port with a temporary data directory; the first run installs it
// with `npm ci` when tests/s3/node_modules is missing). Skipped only when `node` is not
// installed at all.
#include "media/s3_media_store.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>

#include "media/media_store_conformance.h"
#include "support/s3rver.h"

namespace parley::media {
namespace {

namespace fs = std::filesystem;

using test::kS3rverAccessKey;
using test::kS3rverBucket;
using test::kS3rverSecretKey;
using test::S3rver;

std::string sanitized(std::string name) {
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  return name;
}

// One store per test: same bucket, its own key prefix, its own spool directory.
class S3Factory final : public MediaStoreFactory {
 public:
  S3Factory(std::string prefix_tag, uint32_t read_buffer_bytes)
      : prefix_tag_(std::move(prefix_tag)), read_buffer_bytes_(read_buffer_bytes) {}

  std::string skip_reason() override {
    const std::string failure = S3rver::instance().ensure_started();
    EXPECT_EQ(failure, "");
    return S3rver::instance().skip_reason();
  }
  std::unique_ptr<MediaStore> create(const std::string& test_name) override {
    static std::atomic<int> counter{0};
    root_ = fs::temp_directory_path() /
            ("parley-media-s3-test-" + std::to_string(::getpid()) + "-" + sanitized(test_name));
    fs::remove_all(root_);
    config_.endpoint = S3rver::instance().endpoint();
    config_.bucket = kS3rverBucket;
    config_.access_key = kS3rverAccessKey;
    config_.secret_key = kS3rverSecretKey;
    config_.prefix = prefix_tag_ + std::to_string(counter++) + "-" + sanitized(test_name) + "/";
    config_.spool_dir = (root_ / "spool").string();
    config_.read_buffer_bytes = read_buffer_bytes_;
    return reopen();
  }
  std::unique_ptr<MediaStore> reopen() override {
    auto s = S3MediaStore::open(config_);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!s) return nullptr;
    return std::move(s.value());
  }
  std::string spool_dir() override { return config_.spool_dir; }
  void destroy() override { fs::remove_all(root_); }

 private:
  std::string prefix_tag_;
  uint32_t read_buffer_bytes_;
  fs::path root_;
  S3Config config_;
};

// Default settings; and a small read buffer (the transfer pauses and resumes all the time)
// with a prefix that needs URI encoding.
INSTANTIATE_TEST_SUITE_P(S3, MediaStoreConformance,
                         ::testing::Values(MediaStoreFactoryMaker([] {
                                             return std::make_shared<S3Factory>("media/",
                                                                                256 * 1024);
                                           }),
                                           MediaStoreFactoryMaker([] {
                                             return std::make_shared<S3Factory>(
                                                 "sm\xc3\xa4ll buf+1/", 16 * 1024);
                                           })));

S3Config base_config(const std::string& spool) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:9";
  c.bucket = kS3rverBucket;
  c.access_key = kS3rverAccessKey;
  c.secret_key = kS3rverSecretKey;
  c.spool_dir = spool;
  return c;
}

TEST(S3MediaStore, ConfigIsChecked) {
  const std::string spool =
      (fs::temp_directory_path() / ("parley-media-s3-config-" + std::to_string(::getpid())))
          .string();
  EXPECT_TRUE(S3MediaStore::open(base_config(spool)).ok());
  for (auto change : std::vector<std::function<void(S3Config&)>>{
           [](S3Config& c) { c.endpoint = "127.0.0.1:9000"; },
           [](S3Config& c) { c.endpoint = "ftp://127.0.0.1"; },
           [](S3Config& c) { c.endpoint = "http://"; },
           [](S3Config& c) { c.endpoint = "http://user@host"; }, [](S3Config& c) { c.bucket = ""; },
           [](S3Config& c) { c.bucket = "a/b"; }, [](S3Config& c) { c.secret_key = ""; },
           [](S3Config& c) { c.spool_dir = ""; }}) {
    S3Config c = base_config(spool);
    change(c);
    auto s = S3MediaStore::open(c);
    ASSERT_FALSE(s.ok()) << c.endpoint;
    EXPECT_EQ(s.error().code, Errc::bad_request);
  }
  fs::remove_all(spool);
}

TEST(S3MediaStore, UnreachableServerIsUnavailable) {
  const std::string spool =
      (fs::temp_directory_path() / ("parley-media-s3-down-" + std::to_string(::getpid()))).string();
  // Port 9 (discard) on loopback: nothing listens there.
  auto s = S3MediaStore::open(base_config(spool));
  ASSERT_TRUE(s.ok());
  const std::string id = sha256_hex("x");
  EXPECT_EQ(s.value()->stat(id).error().code, Errc::unavailable);
  EXPECT_EQ(s.value()->open(id, 0, 10).error().code, Errc::unavailable);
  EXPECT_EQ(s.value()->remove(id).error().code, Errc::unavailable);
  EXPECT_EQ(s.value()->list({}, 10).error().code, Errc::unavailable);
  auto up = s.value()->begin(100);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(up.value()->write("x").ok());
  auto r = up.value()->commit();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_TRUE(fs::is_empty(spool)) << "a failed commit leaves no spool file";
  fs::remove_all(spool);
}

TEST(S3MediaStore, WrongCredentialsAreRefused) {
  ASSERT_EQ(S3rver::instance().ensure_started(), "");
  if (!S3rver::instance().skip_reason().empty()) GTEST_SKIP() << S3rver::instance().skip_reason();
  const std::string spool =
      (fs::temp_directory_path() / ("parley-media-s3-creds-" + std::to_string(::getpid())))
          .string();
  S3Config c = base_config(spool);
  c.endpoint = S3rver::instance().endpoint();
  c.secret_key = "not-the-secret";  // start.js checks every signature
  auto s = S3MediaStore::open(c);
  ASSERT_TRUE(s.ok());
  auto r = s.value()->list({}, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_NE(r.error().message.find("SignatureDoesNotMatch"), std::string::npos)
      << r.error().message;
  fs::remove_all(spool);
}

}  // namespace
}  // namespace parley::media
