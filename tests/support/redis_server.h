// A Redis server of the tests' own (Debian's redis-server package): a free 127.0.0.1 port,
// a fresh temporary directory, no persistence (no RDB, no AOF). Never a system-wide instance.
//
// Start servers from the test's main thread (SetUp, SetUpTestSuite, a test body), never from
// a helper thread: see PDEATHSIG in child_process.h.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace parley::test {

class ChildProcess;

class RedisServer {
 public:
  // Starts it; throws std::runtime_error saying what went wrong.
  RedisServer();
  // Stops it and removes the directory.
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:<port>"

  // SIGTERM and wait. No-op when stopped.
  void stop();
  // SIGKILL, like a crash.
  void kill();
  // Starts it again on the same port (empty: no persistence); waits until it answers.
  void start();
  bool running();
  std::string log() const;

 private:
  void launch();

  std::filesystem::path dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// A free TCP port on 127.0.0.1 right now (bind to port 0, read it back, close).
int free_loopback_port();

}  // namespace parley::test
