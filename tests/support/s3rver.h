// A local S3-compatible server for tests: s3rver (npm, pinned in tests/s3/package-lock.json),
// started by tests/s3/start.js on a free loopback port with a temporary data directory, once
// per test binary and stopped when the binary ends. The first use installs it with `npm ci`
// when tests/s3/node_modules is missing (under a lock, so concurrent test binaries install it
// once). Tests skip only when `node` is not installed at all.
//
// start.js creates kS3rverBucket, checks every SigV4 signature against kS3rverAccessKey /
// kS3rverSecretKey, refuses a PUT whose bytes do not match x-amz-content-sha256, and writes
// objects atomically. PARLEY_S3RVER_VERBOSE=1 shows s3rver's log; PARLEY_TESTS_S3_DIR (in the
// environment) overrides where tests/s3 is.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace parley::test {

class ChildProcess;

inline constexpr char kS3rverBucket[] = "parley-test";
inline constexpr char kS3rverAccessKey[] = "S3RVER";  // s3rver's built-in account
inline constexpr char kS3rverSecretKey[] = "S3RVER";

class S3rver {
 public:
  // The process-wide server (not started until ensure_started()).
  static S3rver& instance();

  // Starts the server unless it runs already. Returns "" when it runs, or when node is
  // missing (then skip_reason() says so and tests should GTEST_SKIP); otherwise what went
  // wrong (a failure is remembered: later calls return it again without retrying).
  std::string ensure_started();
  // Non-empty when the tests that need s3rver should be skipped.
  const std::string& skip_reason() const { return skip_reason_; }
  // "http://127.0.0.1:<port>" once started.
  const std::string& endpoint() const { return endpoint_; }
  // s3rver's storage: object `key` of bucket `b` is the file `<data_dir>/<b>/<key>._S3rver_object`.
  const std::filesystem::path& data_dir() const { return data_dir_; }
  // The file s3rver keeps object `key` of kS3rverBucket in (it may not exist).
  std::filesystem::path object_file(const std::string& key) const;

  // SIGTERM (then SIGKILL after 5 s) and removes the data directory. Also done at exit.
  void stop();

  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

 private:
  S3rver() = default;
  ~S3rver();
  std::string start();

  std::mutex mu_;
  std::unique_ptr<ChildProcess> child_;  // node start.js while it runs
  std::filesystem::path data_dir_;
  std::string endpoint_;
  std::string skip_reason_;
  std::string failure_;
};

}  // namespace parley::test
