// Command-line options of every scenario, and the loopback-only target they point at.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace parley::bench {

struct Target {
  boost::asio::ip::address address;
  uint16_t port = 0;
  std::string host;  // Host header
  std::string path = "/v1/ws";
};

// At most this many --url (server nodes).
constexpr size_t kMaxNodes = 16;

struct CommonOptions {
  std::vector<std::string> urls;  // --url, given once or more (or a comma list)
  bool json = false;
  unsigned threads = 0;  // 0: half the cores, at least one (the server needs the rest)
  std::string jwt_secret;
  uint64_t jwt_ttl_s = 3600;
  std::string user_prefix;  // default: derived from the pid and time, unique per run
  unsigned source_addrs = 1;
  unsigned connect_concurrency = 256;
  double connect_timeout_s = 15;
  double timeout_s = 0;  // hard bound on the whole run; 0: derived from the scenario
  bool no_progress = false;
  std::vector<Target> targets;  // filled by validate(), one per --url, same order
  Target target;                // targets[0]
  size_t nodes() const { return targets.size(); }
};

// Which --url a connection uses when there are `nodes` of them (all 0 with one URL).
// direct: pair i's sender is on node i % n, its receiver on (i + 1) % n, so that with
// several nodes every message crosses from one node to another.
inline size_t direct_sender_node(uint64_t pair, size_t nodes) { return pair % nodes; }
inline size_t direct_receiver_node(uint64_t pair, size_t nodes) { return (pair + 1) % nodes; }
// connections, group: round-robin over the nodes by connection index.
inline size_t round_robin_node(uint64_t conn, size_t nodes) { return conn % nodes; }

struct ConnectionsOptions {
  uint64_t count = 1000;
  double hold_s = 10;
  std::vector<int> server_pids;  // one per --url, same order (or none)
  double heartbeat_s = 20;
  uint64_t users = 0;      // connections are devices of this many users; 0: one user each
  unsigned processes = 1;  // forked processes sharing --count (each has its own descriptors)
};

struct DirectOptions {
  uint32_t pairs = 100;
  double rate = 5000;  // aggregate msg/s; 0 = as fast as acks allow
  double duration_s = 10;
  uint32_t size = 64;
  uint32_t window = 64;  // sends in flight per sender
  uint32_t batch = 64;   // sends per WebSocket message at most (1: one each)
  double warmup_s = 1;   // latency of messages sent before this is not recorded
  double drain_s = 10;   // after the last send, wait at most this long for acks and deliveries
};

struct SyncOptions {
  uint32_t devices = 1000;
  uint32_t missed = 100;
  uint32_t devices_per_user = 1;
  uint32_t senders = 16;
  uint32_t window = 128;
  uint32_t page = 1000;
  uint32_t size = 64;
};

struct GroupOptions {
  uint32_t groups = 1;
  uint32_t members = 100;
  double rate = 1000;  // aggregate msg/s over every group; 0 = as fast as the window allows
  double duration_s = 10;
  uint32_t size = 64;
  uint32_t senders = 4;  // sending members per group (at most --members)
  uint32_t window = 16;  // per group: messages sent but not yet delivered to every member
  double warmup_s = 1;   // latency of messages sent before this is not recorded
  double drain_s = 10;   // after the last send, wait at most this long for acks and deliveries
};

struct PresenceOptions {
  uint32_t users = 1000;
  uint32_t contacts = 20;         // users each one subscribes to (distinct, not itself)
  double churn = 50;              // aggregate disconnect + reconnect per second; 0: no churn phase
  double duration_s = 10;         // seconds of churn
  uint32_t pause_min_ms = 100;    // a churned user reconnects after a pause in
  uint32_t pause_max_ms = 2000;   // [pause_min_ms, pause_max_ms]
  bool mass = false;              // then all users disconnect and reconnect at once
  uint32_t mass_pause_ms = 2000;  // between everyone closing and everyone reopening
  uint32_t batch_ms = 1000;       // the server's presence.batch_ms
  bool batch_check = false;       // fail when a connection got more pushes than its batch windows
  int server_pid = 0;             // for the server's CPU and RSS
  uint64_t seed = 1;              // picks the contact offsets
};

void add_common_options(CLI::App& app, CommonOptions& o);

// Parses and checks every --url (ws://HOST:PORT[/path], HOST loopback only, one address
// family for all), fills defaults.
// Returns an error message, empty if fine.
std::string validate(CommonOptions& o);
// Parses one --url into `t`; returns an error message, empty if fine.
std::string parse_target(const std::string& url, Target& t);

}  // namespace parley::bench
