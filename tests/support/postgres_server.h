// A PostgreSQL server of the tests' own (Debian's postgresql-15 package): initdb in a fresh
// temporary directory, `postgres` on a free 127.0.0.1 port with its socket in that
// directory, trust authentication for the user "parley". Never a system-wide instance.
//
// Settings are for tests: fsync off (a killed postgres loses nothing, the OS keeps its
// writes; only a machine crash would), small shared buffers, no autovacuum noise in logs.
// When the tests run as root, postgres (which refuses root) runs as the `postgres` system
// user the package creates, and the directory is handed to it.
//
// Start servers from the test's main thread (SetUp, SetUpTestSuite, a test body), never from
// a helper thread: see PDEATHSIG in child_process.h.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace parley::test {

class ChildProcess;

class PostgresServer {
 public:
  // initdb and start; throws std::runtime_error saying what went wrong.
  PostgresServer();
  // Stops the server (fast shutdown) and removes the directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // One server per test binary, started on first use and stopped at exit.
  static PostgresServer& shared();

  int port() const { return port_; }
  // A libpq connection string for `dbname` as the user "parley".
  std::string conninfo(const std::string& dbname = "postgres") const;
  // CREATE / DROP DATABASE (drop: also when sessions are still connected). Throw on failure.
  void create_database(const std::string& name);
  void drop_database(const std::string& name);
  // Runs one SQL statement on `dbname`; throws with the server's message on failure.
  void execute(const std::string& sql, const std::string& dbname = "postgres");

  // Fast shutdown (SIGINT) and wait. No-op when stopped.
  void stop();
  // SIGKILL, like a crash: the next start() recovers from the WAL.
  void kill();
  // Starts it again on the same port and data (waits until it accepts connections).
  void start();
  bool running();
  const std::filesystem::path& directory() const { return dir_; }
  // The server's log so far (for failure messages).
  std::string log() const;

 private:
  void launch();

  std::filesystem::path dir_;
  std::filesystem::path data_;
  std::string bin_;
  int port_ = 0;
  bool as_postgres_user_ = false;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace parley::test
