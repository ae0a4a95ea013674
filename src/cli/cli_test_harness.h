// Test harness for the `parley` binary: runs it in a private XDG_CONFIG_HOME with
// PARLEY_PASSWORD set, against the server named by ServerUrl(), capturing stdout, stderr and
// the exit code. Test-only.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/child_process.h"

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
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The --server URL given to every command.
  virtual std::string ServerUrl() = 0;

  // A running `parley`; stdout and stderr go to files, so that a test can watch them grow.
  struct Proc {
    pid_t pid = -1;
    std::string out_path;
    std::string err_path;
    // Killed (SIGTERM, then SIGKILL) when the last copy goes, if Wait() did not reap it.
    std::shared_ptr<test::ChildProcess> child;
  };

  // Starts `parley args...` with XDG_CONFIG_HOME in the test directory and the server's URL,
  // `input` on stdin and only the environment set here.
  Proc Spawn(std::vector<std::string> args, const std::string& input = "",
             bool with_server = true) {
    static int n = 0;
    Proc p;
    std::string base = dir_ + "/run" + std::to_string(++n);
    p.out_path = base + ".out";
    p.err_path = base + ".err";

    std::vector<std::string> argv{bin_};
    if (with_server) {
      argv.push_back("--server");
      argv.push_back(ServerUrl());
    }
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env{
        {"XDG_CONFIG_HOME", dir_ + "/config"}, {"HOME", dir_}, {"PATH", "/usr/bin:/bin"}};
    if (password_) env["PARLEY_PASSWORD"] = *password_;
    try {
      p.child = std::make_shared<test::ChildProcess>(
          test::ChildProcess::Options{.argv = std::move(argv),
                                      .env = std::move(env),
                                      .inherit_env = false,
                                      .stdin_text = input,
                                      .out = test::ChildProcess::Output::file(p.out_path),
                                      .err = test::ChildProcess::Output::file(p.err_path)});
      p.pid = p.child->pid();
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    return p;
  }

  // Waits for the process to exit (no timeout: each command ends by itself or by --timeout).
  Result Wait(const Proc& p) {
    Result r;
    if (p.child) r.code = p.child->wait().shell_code();
    r.out = Slurp(p.out_path);
    r.err = Slurp(p.err_path);
    return r;
  }

  // Waits until a `parley -v listen` process reports on stderr that it is online (so that a
  // test acts on a live connection, not on one still being set up). False on timeout.
  bool WaitOnline(const Proc& p, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return p.child &&
           p.child->wait_for_output(test::ChildProcess::Stream::err, "parley: online as ", timeout);
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
