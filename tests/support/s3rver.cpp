#include "support/s3rver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <vector>

#include "support/child_process.h"
#include "support/programs.h"

#ifndef PARLEY_TESTS_S3_DIR
#error "PARLEY_TESTS_S3_DIR must name tests/s3"
#endif

namespace parley::test {
namespace {

namespace fs = std::filesystem;

// `npm ci` in tests/s3 when s3rver is not installed there, under a lock so that two test
// processes never install at once. "" on success.
std::string install(const std::string& dir) {
  const std::string marker = dir + "/node_modules/s3rver/package.json";
  if (fs::exists(marker)) return {};
  int lock = ::open("/tmp/parley-s3rver-npm.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  std::string problem;
  if (!fs::exists(marker)) {
    try {
      ChildProcess npm(
          {.argv = {"npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"}, .cwd = dir});
      auto st = npm.wait_for(std::chrono::minutes(10));
      if (!st) {
        problem = "timed out after 10 min";
        npm.kill();
      } else if (!st->ok()) {
        problem = st->describe();
      }
      // npm's output is diagnostics: on the test's stderr, as before.
      std::cerr << npm.stdout_text() << npm.stderr_text();
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  if (lock >= 0) ::close(lock);
  if (!problem.empty() || !fs::exists(marker)) {
    return "`npm ci` in " + dir + " failed (" + (problem.empty() ? "no s3rver" : problem) +
           "): is npm installed?";
  }
  return {};
}

}  // namespace

S3rver& S3rver::instance() {
  static S3rver server;
  return server;
}

S3rver::~S3rver() { stop(); }

std::string S3rver::ensure_started() {
  std::lock_guard lock(mu_);
  if (child_ || !skip_reason_.empty()) return {};
  if (!failure_.empty()) return failure_;
  failure_ = start();
  if (!failure_.empty() && child_) {  // started but never listened
    child_->kill();
    child_.reset();
  }
  return failure_;
}

fs::path S3rver::object_file(const std::string& key) const {
  fs::path p = data_dir_ / kS3rverBucket / key;
  return p.parent_path() / (p.filename().string() + "._S3rver_object");
}

void S3rver::stop() {
  std::lock_guard lock(mu_);
  if (child_) child_->terminate();  // SIGTERM, SIGKILL after 5 s
  child_.reset();
  if (!data_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
  }
  data_dir_.clear();
  endpoint_.clear();
}

std::string S3rver::start() {
  const std::string node = find_in_path("node");
  if (node.empty()) {
    skip_reason_ = "node is not installed: the S3 tests need Node.js for s3rver";
    return {};
  }
  const char* env_dir = std::getenv("PARLEY_TESTS_S3_DIR");
  const std::string dir = env_dir && *env_dir ? env_dir : PARLEY_TESTS_S3_DIR;
  if (auto problem = install(dir); !problem.empty()) return problem;

  char tmpl[] = "/tmp/parley-s3rver-XXXXXX";
  if (!::mkdtemp(tmpl)) return "mkdtemp failed";
  data_dir_ = tmpl;

  // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 only has in its
  // legacy provider. stdout is captured (the port, and never a full pipe); stderr is the
  // test's.
  try {
    child_ = std::make_unique<ChildProcess>(
        ChildProcess::Options{.argv = {node, "--openssl-legacy-provider", dir + "/start.js",
                                       data_dir_.string(), kS3rverBucket},
                              .err = ChildProcess::Output::inherit(),
                              .kill_grace = std::chrono::seconds(5)});
  } catch (const std::exception& e) {
    return e.what();
  }

  // start.js prints "s3rver listening on 127.0.0.1:<port>" once the bucket exists and the
  // server listens.
  static constexpr std::string_view kListening = "listening on 127.0.0.1:";
  auto line = child_->wait_for_line(
      ChildProcess::Stream::out,
      [](std::string_view l) { return l.find(kListening) != std::string_view::npos; },
      std::chrono::seconds(60));
  if (!line) {
    return child_->running() ? "s3rver did not start within 60 s"
                             : "s3rver exited before listening (see stderr)";
  }
  const int port = std::atoi(line->c_str() + line->find(kListening) + kListening.size());
  endpoint_ = "http://127.0.0.1:" + std::to_string(port);
  return {};
}

}  // namespace parley::test
