// Counts open TCP connections and keeps the live WebSocket connections, so that the server
// can refuse connections over its limit and close every WebSocket on shutdown.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace parley::net {

class WsConnection;

class ConnectionTracker {
 public:
  explicit ConnectionTracker(uint32_t max_connections) : max_(max_connections) {}

  // TCP connections (HTTP or WebSocket). try_open fails when the limit is reached.
  bool try_open();
  void closed();
  uint32_t open_count() const { return open_.load(); }

  uint64_t next_id() { return ++last_id_; }
  void add_ws(uint64_t id, std::weak_ptr<WsConnection> ws);
  void remove_ws(uint64_t id);
  // Asks every live WebSocket to close with `code`.
  void close_all_ws(uint16_t code, const std::string& reason);
  size_t ws_count();
  // Drops every WebSocket still open without a close handshake. Only once the I/O threads
  // have stopped: it breaks the connection <-> handler references that the handlers of the
  // destroyed io_contexts would otherwise leave behind.
  void abort_all_ws();

 private:
  const uint32_t max_;
  std::atomic<uint32_t> open_{0};
  std::atomic<uint64_t> last_id_{0};
  std::mutex mu_;
  std::unordered_map<uint64_t, std::weak_ptr<WsConnection>> ws_;
};

}  // namespace parley::net
