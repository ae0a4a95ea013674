// ChildProcess (tests/support/child_process.h) on its own, with sh, cat, sleep and env.
#include "support/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace parley::test {
namespace {

using namespace std::chrono_literals;
using Stream = ChildProcess::Stream;
namespace fs = std::filesystem;

// True once `pid` is gone (or a zombie about to be reaped by init): its /proc entry says so.
bool process_gone(pid_t pid, std::chrono::milliseconds within = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line)) return true;
    auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-child-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(ChildProcess, ExitCodes) {
  auto r = ChildProcess::run({"sh", "-c", "exit 0"});
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.code(), 0);
  r = ChildProcess::run({"sh", "-c", "exit 3"});
  EXPECT_TRUE(r.status.exited);
  EXPECT_EQ(r.status.code, 3);
  EXPECT_FALSE(r.timed_out);
  r = ChildProcess::run({"sh", "-c", "kill -TERM $$"});
  EXPECT_FALSE(r.status.exited);
  EXPECT_EQ(r.status.signal, SIGTERM);
  EXPECT_EQ(r.code(), 128 + SIGTERM);
}

TEST(ChildProcess, CapturesStdoutAndStderr) {
  auto r = ChildProcess::run({"sh", "-c", "echo out; echo err >&2; echo more"});
  EXPECT_EQ(r.out, "out\nmore\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(ChildProcess, LargeOutputDoesNotBlockTheChild) {
  // Far more than a pipe buffer holds, on both streams at once.
  auto r =
      ChildProcess::run({"sh", "-c", "head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2"}, {},
                        std::nullopt, 30s);
  EXPECT_TRUE(r.status.ok()) << r.status.describe();
  EXPECT_EQ(r.out.size(), 1000000u);
  EXPECT_EQ(r.err.size(), 300000u);
}

TEST(ChildProcess, Stdin) {
  auto r = ChildProcess::run({"cat"}, {}, std::string("hello\nworld"));
  EXPECT_EQ(r.out, "hello\nworld");
  std::string big(2'000'000, 'x');
  r = ChildProcess::run({"wc", "-c"}, {}, big);
  EXPECT_EQ(std::stol(r.out), 2'000'000);
  // No stdin text: /dev/null, so a reader sees EOF at once.
  r = ChildProcess::run({"cat"}, {}, std::nullopt, 10s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "");
}

TEST(ChildProcess, Environment) {
  ::setenv("PARLEY_CHILD_TEST_INHERITED", "from the test", 1);
  auto r =
      ChildProcess::run({"sh", "-c", "echo \"$PARLEY_CHILD_TEST|$PARLEY_CHILD_TEST_INHERITED\""},
                        {{"PARLEY_CHILD_TEST", "a value"}});
  EXPECT_EQ(r.out, "a value|from the test\n");

  ChildProcess::Options o;
  o.argv = {"env"};
  o.env = {{"ONLY", "this"}};
  o.inherit_env = false;
  ChildProcess alone(std::move(o));
  EXPECT_TRUE(alone.wait_for(10s).value().ok());
  EXPECT_EQ(alone.stdout_text(), "ONLY=this\n");
  ::unsetenv("PARLEY_CHILD_TEST_INHERITED");
}

TEST(ChildProcess, WorkingDirectoryAndOutputFiles) {
  TempDir dir;
  ChildProcess::Options o;
  o.argv = {"sh", "-c", "pwd; echo oops >&2"};
  o.cwd = dir.path();
  o.out = ChildProcess::Output::file(dir.path() / "out.txt");
  o.err = ChildProcess::Output::file(dir.path() / "err.txt", /*append=*/true);
  { std::ofstream(dir.path() / "err.txt") << "earlier\n"; }
  ChildProcess child(std::move(o));
  EXPECT_TRUE(child.wait().ok());
  EXPECT_EQ(child.stdout_text(), fs::canonical(dir.path()).string() + "\n");
  EXPECT_EQ(child.stderr_text(), "earlier\noops\n");
}

TEST(ChildProcess, PipeCopyToFile) {
  TempDir dir;
  ChildProcess::Options o;
  o.argv = {"sh", "-c", "echo one; echo two"};
  o.out = ChildProcess::Output::pipe(dir.path() / "copy.log");
  ChildProcess child(std::move(o));
  EXPECT_TRUE(child.wait().ok());
  EXPECT_EQ(child.stdout_text(), "one\ntwo\n");
  std::ifstream in(dir.path() / "copy.log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "one\ntwo\n");
}

TEST(ChildProcess, WaitForLine) {
  TempDir dir;
  for (bool to_file : {false, true}) {
    SCOPED_TRACE(to_file ? "file" : "pipe");
    ChildProcess::Options o;
    o.argv = {"sh", "-c", "echo starting; sleep 0.2; echo 'listening on 127.0.0.1:1234'; sleep 60"};
    if (to_file) o.out = ChildProcess::Output::file(dir.path() / "out.txt");
    ChildProcess child(std::move(o));
    auto line = child.wait_for_line(
        Stream::out, [](std::string_view l) { return l.find("listening on") == 0; }, 10s);
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(*line, "listening on 127.0.0.1:1234");
    EXPECT_TRUE(child.wait_for_output(Stream::out, "starting", 1s));
    EXPECT_TRUE(child.running());
  }
  // A child that exits without the line: no need to wait for the timeout.
  ChildProcess quitter({.argv = {"sh", "-c", "echo nothing here"}});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(quitter.wait_for_line(
      Stream::out, [](std::string_view) { return false; }, 30s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(ChildProcess, TimeoutKillsSleep) {
  const auto start = std::chrono::steady_clock::now();
  auto r = ChildProcess::run({"sleep", "60"}, {}, std::nullopt, 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.status.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(ChildProcess, WaitForTimesOutWhileRunning) {
  ChildProcess child({.argv = {"sleep", "60"}});
  EXPECT_FALSE(child.wait_for(100ms).has_value());
  EXPECT_TRUE(child.running());
  ExitStatus st = child.terminate();
  EXPECT_EQ(st.signal, SIGTERM) << st.describe();
  EXPECT_FALSE(child.running());
}

TEST(ChildProcess, MissingProgramIsAClearError) {
  try {
    ChildProcess child({.argv = {"parley-no-such-program"}});
    ADD_FAILURE() << "started a program that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("parley-no-such-program"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
  }
  try {
    ChildProcess::run({"/nonexistent/parleyd"});
    ADD_FAILURE() << "started a program that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/parleyd"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  TempDir dir;
  const fs::path not_exec = dir.path() / "script";
  std::ofstream(not_exec) << "#!/bin/sh\n";
  EXPECT_THROW(ChildProcess::run({not_exec.string()}), std::runtime_error);
  EXPECT_THROW(ChildProcess({.argv = {"true"}, .cwd = dir.path() / "missing"}), std::runtime_error);
}

TEST(ChildProcess, SignalReachesTheChildAlone) {
  ChildProcess child({.argv = {"sh", "-c",
                               "trap 'echo got INT; exit 7' INT; echo ready; "
                               "while :; do sleep 0.05; done"}});
  ASSERT_TRUE(child.wait_for_output(Stream::out, "ready\n", 10s));
  child.signal(SIGINT);
  auto st = child.wait_for(10s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code, 7);
  EXPECT_EQ(child.stdout_text(), "ready\ngot INT\n");
}

// The child's own children: a background `sleep` that the shell started.
pid_t grandchild_of(ChildProcess& child) {
  auto line = child.wait_for_line(
      Stream::out, [](std::string_view l) { return !l.empty(); }, 10s);
  return line ? static_cast<pid_t>(std::stol(*line)) : -1;
}

TEST(ChildProcess, DestructorKillsTheChildAndItsGroup) {
  pid_t child_pid = -1;
  pid_t grandchild = -1;
  {
    ChildProcess child({.argv = {"sh", "-c", "sleep 60 & echo $!; wait"}});
    child_pid = child.pid();
    grandchild = grandchild_of(child);
    ASSERT_GT(grandchild, 0);
    ASSERT_EQ(::getpgid(grandchild), child_pid);  // its own process group
  }
  EXPECT_TRUE(process_gone(child_pid));
  EXPECT_TRUE(process_gone(grandchild));
}

TEST(ChildProcess, TerminateEscalatesToSigkill) {
  // Both the shell and its sleep ignore SIGTERM (an ignored signal stays ignored across exec).
  ChildProcess child(
      {.argv = {"sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait"}, .kill_grace = 300ms});
  pid_t grandchild = grandchild_of(child);
  ASSERT_GT(grandchild, 0);
  const auto start = std::chrono::steady_clock::now();
  ExitStatus st = child.terminate();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(st.signal, SIGKILL) << st.describe();
  EXPECT_TRUE(process_gone(grandchild));
}

TEST(ChildProcess, LeftoversDieWithTheLeader) {
  // The shell exits at once; its background sleep still holds stdout. wait() neither hangs
  // on that pipe nor leaves the sleep running.
  ChildProcess child({.argv = {"sh", "-c", "sleep 60 & echo $!"}});
  auto st = child.wait_for(10s);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok());
  const std::string out = child.stdout_text();
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(process_gone(static_cast<pid_t>(std::stol(out))));
}

}  // namespace
}  // namespace parley::test
