// HAProxy of the tests' own (Debian's haproxy package) in front of parleyd nodes: the
// configuration is tools/haproxy.cfg.in, the one `make cluster` runs and docs/SCALING.md
// shows, with the test's ports and optionally another balance algorithm and faster health
// checks. `haproxy -f cfg -db` on a free 127.0.0.1 port, a stats page (CSV) on another.
//
// Start it from the test's main thread (SetUp, SetUpTestSuite, a test body), never from a
// helper thread: see PDEATHSIG in child_process.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace parley::test {

class ChildProcess;

struct HaproxyOptions {
  std::string balance = "leastconn";  // the template's; e.g. "roundrobin"
  // Health checks of /readyz (the template's: inter 1s fall 2 rise 2).
  int check_inter_ms = 200;
  int fall = 2;
  int rise = 1;
};

class HaproxyServer {
 public:
  // Backend i (0-based) is the server "node<i+1>" on 127.0.0.1:backend_ports[i]. Starts it and
  // waits until it accepts connections; throws std::runtime_error saying what went wrong.
  explicit HaproxyServer(std::vector<std::uint16_t> backend_ports, HaproxyOptions options = {});
  // Stops it and removes the directory.
  ~HaproxyServer();
  HaproxyServer(const HaproxyServer&) = delete;
  HaproxyServer& operator=(const HaproxyServer&) = delete;

  // The frontend clients connect to.
  std::uint16_t port() const { return port_; }
  std::uint16_t stats_port() const { return stats_port_; }
  static std::string server_name(size_t backend) { return "node" + std::to_string(backend + 1); }

  // Each backend server's status as HAProxy sees it ("UP", "DOWN", "UP 1/2" while going down,
  // "DOWN 1/1" while coming up, "MAINT"), by server name; empty when the stats page does not
  // answer.
  std::map<std::string, std::string> server_status();
  // Waits until server_status()[server_name(backend)] is exactly `status`.
  bool wait_for_status(size_t backend, const std::string& status,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // SIGTERM and wait. No-op when stopped.
  void stop();
  // SIGKILL.
  void kill();
  bool running();
  // What HAProxy wrote (alerts, warnings, server state changes).
  std::string log() const;
  const std::filesystem::path& config_path() const { return config_; }

 private:
  void launch();

  std::filesystem::path dir_;
  std::filesystem::path config_;
  std::vector<std::uint16_t> backends_;
  HaproxyOptions options_;
  std::uint16_t port_ = 0;
  std::uint16_t stats_port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// The configuration HaproxyServer runs: tools/haproxy.cfg.in filled in. Throws when the
// template no longer has what it replaces.
std::string haproxy_config(std::uint16_t port, std::uint16_t stats_port,
                           const std::vector<std::uint16_t>& backend_ports,
                           const HaproxyOptions& options);

}  // namespace parley::test
