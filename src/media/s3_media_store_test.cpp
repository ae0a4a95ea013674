// Runs the MediaStore conformance suite against S3MediaStore and a real local S3-compatible
// server: s3rver (npm, pinned in tests/s3/package-lock.json), started by tests/s3/start.js
// on a free loopback port with a temporary data directory, once for the whole binary. The
// first run installs it with `npm ci` when tests/s3/node_modules is missing. Skipped only
// when `node` is not installed at all.
#include "media/s3_media_store.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "media/media_store_conformance.h"

#ifndef PARLEY_TESTS_S3_DIR
#error "PARLEY_TESTS_S3_DIR must name tests/s3"
#endif

namespace parley::media {
namespace {

namespace fs = std::filesystem;

constexpr char kBucket[] = "parley-test";
constexpr char kAccessKey[] = "S3RVER";  // s3rver's built-in account
constexpr char kSecretKey[] = "S3RVER";

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(pos, end - pos) + "/" + name;
    if (end > pos && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  return {};
}

// The s3rver process, started on first use and stopped when the test binary ends.
class S3rver {
 public:
  static S3rver& instance() {
    static S3rver server;
    return server;
  }

  // Starts the server unless it runs already. Sets skip_reason() when node is missing;
  // anything else that goes wrong is an error.
  Status ensure_started() {
    std::lock_guard lock(mu_);
    if (pid_ > 0 || !skip_reason_.empty()) return ok_status();
    if (!failure_.empty()) return Error{Errc::internal, failure_};
    auto st = start();
    if (!st) failure_ = st.error().message;
    return st;
  }
  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& endpoint() const { return endpoint_; }

  void stop() {
    std::lock_guard lock(mu_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 50 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
      pid_ = -1;
    }
    if (drain_.joinable()) drain_.join();
    if (!data_dir_.empty()) fs::remove_all(data_dir_);
    data_dir_.clear();
  }

 private:
  Status start() {
    const std::string node = find_in_path("node");
    if (node.empty()) {
      skip_reason_ = "node is not installed: the S3 MediaStore tests need Node.js for s3rver";
      return ok_status();
    }
    const char* env_dir = std::getenv("PARLEY_TESTS_S3_DIR");
    const std::string dir = env_dir && *env_dir ? env_dir : PARLEY_TESTS_S3_DIR;
    if (auto st = install(dir); !st) return st;

    char tmpl[] = "/tmp/parley-s3rver-XXXXXX";
    if (!::mkdtemp(tmpl)) return Error{Errc::internal, "mkdtemp failed"};
    data_dir_ = tmpl;

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return Error{Errc::internal, "pipe failed"};
    const std::string script = dir + "/start.js";
    // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 only has in its
    // legacy provider.
    std::vector<std::string> args = {node, "--openssl-legacy-provider", script, data_dir_, kBucket};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return Error{Errc::internal, "fork failed"};
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test binary
      if (::getppid() != parent) ::_exit(1);
      ::dup2(out[1], 1);
      ::execv(node.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);

    // Wait for "s3rver listening on 127.0.0.1:<port>", which start.js prints once the
    // bucket exists and the server listens.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int port = 0;
    while (port == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{out[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        ::close(out[0]);
        return Error{Errc::internal, "s3rver did not start within 60 s"};
      }
      char c;
      if (::read(out[0], &c, 1) != 1) {
        ::close(out[0]);
        return Error{Errc::internal, "s3rver exited before listening (see stderr)"};
      }
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      if (size_t at = line.find("listening on 127.0.0.1:"); at != std::string::npos) {
        port = std::atoi(line.c_str() + at + 23);
      }
      line.clear();
    }
    // Keep reading its output so it never blocks on a full pipe.
    const int fd = out[0];
    drain_ = std::thread([fd] {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      ::close(fd);
    });
    endpoint_ = "http://127.0.0.1:" + std::to_string(port);
    return ok_status();
  }

  // `npm ci` in tests/s3 when s3rver is not installed there, under a lock so that two test
  // processes never install at once.
  static Status install(const std::string& dir) {
    const std::string marker = dir + "/node_modules/s3rver/package.json";
    if (fs::exists(marker)) return ok_status();
    int lock = ::open("/tmp/parley-s3rver-npm.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    int rc = 0;
    if (!fs::exists(marker)) {
      const std::string cmd =
          "cd '" + dir + "' && npm ci --no-audit --no-fund --loglevel=error 1>&2";
      rc = std::system(cmd.c_str());
    }
    if (lock >= 0) ::close(lock);
    if (rc != 0 || !fs::exists(marker)) {
      return Error{Errc::internal, "`npm ci` in " + dir + " failed (exit " + std::to_string(rc) +
                                       "): is npm installed?"};
    }
    return ok_status();
  }

  S3rver() = default;
  ~S3rver() { stop(); }

  std::mutex mu_;
  pid_t pid_ = -1;
  std::string data_dir_;
  std::string endpoint_;
  std::string skip_reason_;
  std::string failure_;
  std::thread drain_;
};

class S3rverEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { S3rver::instance().stop(); }
};
[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new S3rverEnvironment);

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
    auto st = S3rver::instance().ensure_started();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return S3rver::instance().skip_reason();
  }
  std::unique_ptr<MediaStore> create(const std::string& test_name) override {
    static std::atomic<int> counter{0};
    root_ = fs::temp_directory_path() /
            ("parley-media-s3-test-" + std::to_string(::getpid()) + "-" + sanitized(test_name));
    fs::remove_all(root_);
    config_.endpoint = S3rver::instance().endpoint();
    config_.bucket = kBucket;
    config_.access_key = kAccessKey;
    config_.secret_key = kSecretKey;
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
  c.bucket = kBucket;
  c.access_key = kAccessKey;
  c.secret_key = kSecretKey;
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
  ASSERT_TRUE(S3rver::instance().ensure_started().ok());
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
