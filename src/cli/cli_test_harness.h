// Test harness for the `parley` binary: runs it in a private XDG_CONFIG_HOME with
// PARLEY_PASSWORD set, against the server named by ServerUrl(), capturing stdout, stderr and
// the exit code. Test-only.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace parley::cli_test {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A valid 8x8 RGB PNG (165 bytes) for media tests.
inline const std::string kTestPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x08\x00\x00"
    "\x00\x08\x08\x02\x00\x00\x00\x4b\x6d\x29\xdc\x00\x00\x00\x6c\x49\x44\x41\x54\x78\xda\x15"
    "\xcd\x41\x15\x00\x51\x08\x42\x51\xa3\x18\x85\x28\x46\x79\x51\x88\x42\x14\xa2\xcc\x1f\x97"
    "\x5c\x0e\xce\x0c\x3b\x68\xb8\x81\xc1\x43\x86\x0e\x33\xcb\x2e\x5a\x6e\x61\xf1\x92\xa5\xfb"
    "\x40\xac\x90\x38\x81\xb0\x88\xa8\x1e\x1c\x7b\xe8\xb8\x83\xc3\x47\x8e\xde\x83\x7f\xe0\x55"
    "\x5f\xf8\x9f\x21\xd0\xf7\x6e\xcc\x1a\x99\xf3\x1f\xdb\xc4\xd4\x0f\xc2\x06\x85\xcb\x5f\x76"
    "\x48\x68\x1e\x94\x2d\x2a\xd7\x7f\xc2\x25\xa5\xe5\x03\xc6\x7b\x58\x01\x57\x39\x36\xf2\x00"
    "\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    165);

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

class CliHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("PARLEY_CLI_BIN");
    bin_ = bin && bin[0] ? bin : PARLEY_CLI_PATH;
    char tmpl[] = "/tmp/parley_cli_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }

  // The --server URL given to every command.
  virtual std::string ServerUrl() = 0;

  struct Proc {
    pid_t pid = -1;
    std::string out_path;
    std::string err_path;
  };

  // Starts `parley args...` with XDG_CONFIG_HOME in the test directory and the server's URL.
  Proc Spawn(std::vector<std::string> args, const std::string& input = "",
             bool with_server = true) {
    static int n = 0;
    Proc p;
    std::string base = dir_ + "/run" + std::to_string(++n);
    p.out_path = base + ".out";
    p.err_path = base + ".err";
    std::string in_path = base + ".in";
    std::ofstream(in_path) << input;

    std::vector<std::string> argv_s{bin_};
    if (with_server) {
      argv_s.push_back("--server");
      argv_s.push_back(ServerUrl());
    }
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_s{"XDG_CONFIG_HOME=" + dir_ + "/config", "HOME=" + dir_,
                                   "PATH=/usr/bin:/bin"};
    if (password_) env_s.push_back("PARLEY_PASSWORD=" + *password_);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&fa, 2, p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    int rc = posix_spawn(&p.pid, bin_.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_EQ(rc, 0) << "cannot start " << bin_;
    return p;
  }

  Result Wait(const Proc& p) {
    int status = 0;
    waitpid(p.pid, &status, 0);
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = Slurp(p.out_path);
    r.err = Slurp(p.err_path);
    return r;
  }

  // Waits until a `parley -v listen` process reports on stderr that it is online (so that a
  // test acts on a live connection, not on one still being set up). False on timeout.
  bool WaitOnline(const Proc& p, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Slurp(p.err_path).find("parley: online as ") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  Result Run(std::vector<std::string> args, const std::string& input = "") {
    return Wait(Spawn(std::move(args), input));
  }

  void RegisterAndLogin(const std::string& user) {
    ASSERT_EQ(Run({"register", user}).code, 0);
    ASSERT_EQ(Run({"--profile", user, "login", user}).code, 0);
  }

  std::string bin_;
  std::string dir_;
  std::optional<std::string> password_ = "correct horse";
};

}  // namespace parley::cli_test
