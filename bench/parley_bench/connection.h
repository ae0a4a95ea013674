// One client WebSocket connection: TCP connect from a chosen loopback source address,
// upgrade with subprotocol parley.v1, authenticate with a JWT, then a read loop that hands
// each parsed frame to the scenario, and one write at a time from a reused frame buffer.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::bench {

class Worker;
class Connection;

// Implemented by a scenario; all calls come on the connection's worker thread.
class ConnectionListener {
 public:
  enum class Down { failed, dropped, closed };
  virtual ~ConnectionListener() = default;
  // The JWT for connection `c`, asked for when its open starts.
  virtual std::string token(Connection& c) = 0;
  // Authenticated; `pts` is the user's committed update position.
  virtual void on_ready(Connection& c, uint64_t pts) = 0;
  virtual void on_frame(Connection& c, const boost::json::object& frame) = 0;
  // The last write() finished; out() may be refilled.
  virtual void on_writable(Connection& c) = 0;
  // failed: never got ready; dropped: lost after ready; closed: we closed it.
  virtual void on_down(Connection& c, Down how, std::string_view why) = 0;
};

class Connection {
 public:
  enum class State : uint8_t { idle, opening, ready, down };
  static constexpr uint64_t kAuthId = uint64_t{1} << 52;  // scenarios use smaller ids

  // `node`: which --url (CommonOptions::targets) it connects to.
  Connection(Worker& worker, ConnectionListener& listener, uint32_t index, size_t node = 0);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Worker& worker() { return worker_; }
  uint32_t index() const { return index_; }
  size_t node() const { return node_; }
  State state() const { return state_; }
  bool ready() const { return state_ == State::ready; }
  bool writable() const { return state_ == State::ready && !writing_; }
  uint64_t started_ns() const { return started_ns_; }

  // Queues the open on the worker (which bounds how many open at once).
  void queue_open();
  // Starts connecting now; used by the worker.
  void open();
  // The frame buffer: fill it while writable(), then write(). It keeps its capacity.
  std::string& out() { return out_; }
  void write();
  // Closes the socket; on_down(closed) follows. Idempotent.
  void close();
  // Gives up on an open in progress: on_down(failed, why).
  void abort(std::string_view why);

 private:
  void connect();
  void on_connect(boost::system::error_code ec);
  void on_handshake(boost::system::error_code ec);
  void on_auth_written(boost::system::error_code ec);
  void on_auth_reply(boost::system::error_code ec);
  void read_next();
  void on_read(boost::system::error_code ec);
  void go_down(ConnectionListener::Down how, std::string_view why);

  Worker& worker_;
  ConnectionListener& listener_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::beast::flat_buffer in_;
  std::string out_;
  uint64_t started_ns_ = 0;
  uint32_t index_;
  unsigned source_slot_ = 0;
  uint8_t source_retries_ = 0;
  uint8_t node_ = 0;
  State state_ = State::idle;
  bool writing_ = false;
};

}  // namespace parley::bench
