#include "support/s3rver.h"

#include "support/programs.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <vector>

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
  int rc = 0;
  if (!fs::exists(marker)) {
    const std::string cmd = "cd '" + dir + "' && npm ci --no-audit --no-fund --loglevel=error 1>&2";
    rc = std::system(cmd.c_str());
  }
  if (lock >= 0) ::close(lock);
  if (rc != 0 || !fs::exists(marker)) {
    return "`npm ci` in " + dir + " failed (exit " + std::to_string(rc) + "): is npm installed?";
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
  if (pid_ > 0 || !skip_reason_.empty()) return {};
  if (!failure_.empty()) return failure_;
  failure_ = start();
  if (!failure_.empty() && pid_ > 0) {  // started but never listened
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  return failure_;
}

fs::path S3rver::object_file(const std::string& key) const {
  fs::path p = data_dir_ / kS3rverBucket / key;
  return p.parent_path() / (p.filename().string() + "._S3rver_object");
}

void S3rver::stop() {
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

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  const std::string script = dir + "/start.js";
  // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 only has in its
  // legacy provider.
  std::vector<std::string> args = {node, "--openssl-legacy-provider", script, data_dir_.string(),
                                   kS3rverBucket};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return "fork failed";
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test binary
    if (::getppid() != parent) ::_exit(1);
    ::dup2(out[1], 1);
    ::execv(node.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);

  // Wait for "s3rver listening on 127.0.0.1:<port>", which start.js prints once the bucket
  // exists and the server listens.
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int port = 0;
  while (port == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      ::close(out[0]);
      return "s3rver did not start within 60 s";
    }
    char c;
    if (::read(out[0], &c, 1) != 1) {
      ::close(out[0]);
      return "s3rver exited before listening (see stderr)";
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
  return {};
}

}  // namespace parley::test
