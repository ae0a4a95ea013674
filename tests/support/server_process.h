// Starts the real `parleyd` binary on a loopback port with a fresh data directory, for tests
// that talk to it over real sockets (STYLE.md §2.10-11: port 0, read back the port).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "support/child_process.h"

namespace parley::test {

// A TOML document built from (section, key) -> literal value, so that a test can override one
// key of the defaults without writing a second `[section]` header (TOML forbids duplicates).
class TomlConfig {
 public:
  // Sets `key = <literal>` in `[section]`; `literal` is TOML text, e.g. "5", "true", "\"x\"".
  TomlConfig& set(const std::string& section, const std::string& key, const std::string& literal);
  // Sets `key = "<value>"` (a basic string, escaped).
  TomlConfig& set_string(const std::string& section, const std::string& key,
                         const std::string& value);
  std::string to_string() const;

  // Defaults for tests: cheap password hashing, two I/O threads, fsync durability (the
  // default, kept so that the SIGKILL tests prove what the server promises).
  static TomlConfig test_defaults();

 private:
  std::map<std::string, std::map<std::string, std::string>> sections_;
};

// One `parleyd` child process (a ChildProcess): the shared fixture for every test that
// needs a real server. Not copyable; the destructor kills the process (SIGKILL) and removes
// the temporary directory. stdout and stderr go to files in that directory; when the current
// test has failed, the destructor prints their tails for diagnostics.
class ServerProcess {
 public:
  // Creates the temp dir and config file and starts the server; throws std::runtime_error
  // (with the server's stderr) if it does not print `listening on HOST:PORT` within 20 s.
  explicit ServerProcess(TomlConfig config = TomlConfig::test_defaults());
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  // True while the child has not exited (reaps it if it has).
  bool alive();
  // Sends SIGTERM without waiting.
  void terminate();
  // Waits for the child to exit; nullopt on timeout (the child is left running).
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  // SIGTERM, then wait up to `timeout`; on timeout SIGKILLs and returns the status of that.
  ExitStatus stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap.
  ExitStatus kill();
  // Starts the server again on the same data dir and config (after stop() or kill()).
  // The port may differ; read port() again.
  void restart();
  // The same, listening on `port` (e.g. the old port(), so that clients reconnect to the same
  // address). Retries for a few seconds while the port is still taken.
  void restart(std::uint16_t port);

  // The text the server wrote to stderr / stdout so far (all runs).
  std::string stderr_text() const;
  std::string stdout_text() const;
  // Prints the tails of stderr and stdout to std::cerr (done by the destructor when a test
  // failed while this server existed).
  void dump_diagnostics() const;

 private:
  void start();
  static int failures_so_far();

  std::filesystem::path root_;
  std::filesystem::path data_dir_;
  std::filesystem::path config_path_;
  std::filesystem::path stderr_path_;
  std::filesystem::path stdout_path_;
  std::string binary_;
  std::string host_ = "127.0.0.1";
  std::uint16_t listen_port_ = 0;  // what --listen asks for (0: any)
  std::uint16_t port_ = 0;
  int failures_at_start_ = 0;
  // The running (or last) server; stdout is captured (to find the port) and copied to
  // stdout_path_, stderr appended to stderr_path_.
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace parley::test
