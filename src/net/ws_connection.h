// A WebSocket connection pinned to one I/O thread: a read loop that hands frames to its
// handler, and a bounded send queue with one write in flight (Beast chat-multi pattern).
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/container/devector.hpp>
#include <optional>
#include <vector>

#include "net/transport.h"

namespace parley::net {

class ConnectionTracker;

struct WsOptions {
  uint32_t max_frame_bytes = 64 * 1024;
  uint32_t max_send_queue_bytes = 4 * 1024 * 1024;
  uint32_t idle_timeout_s = 60;
  uint32_t handshake_timeout_s = 10;
  // With batching on, one message carries queued frames up to this many bytes (a larger
  // frame goes alone) and at most kMaxBatchFrames of them.
  uint32_t max_batch_bytes = 64 * 1024;
};

class WsConnection final : public Transport, public std::enable_shared_from_this<WsConnection> {
 public:
  // Takes the socket of an HTTP session whose request asked for the upgrade. A plain socket,
  // not a tcp_stream: the websocket's own timeouts replace the stream's timers, which saves
  // their memory on every idle connection.
  WsConnection(boost::asio::ip::tcp::socket&& socket, const WsOptions& options, WsService& service,
               ConnectionTracker& tracker);
  ~WsConnection() override;

  // Completes the upgrade of `request` (already read) and starts reading.
  void start(HttpRequest request);

  void send(std::shared_ptr<const std::string> frame) override;
  void close(uint16_t code, std::string reason) override;
  void set_batching(bool on) override { batching_.store(on, std::memory_order_relaxed); }
  uint64_t id() const override { return id_; }
  // Drops the connection at once, without a close handshake. Only on the connection's
  // thread, or once the I/O threads have stopped.
  void abort() { finish(); }
  boost::asio::any_io_executor executor() const override { return executor_; }

 private:
  void on_accept(boost::beast::error_code ec);
  void read_next();
  void on_read(boost::beast::error_code ec, size_t bytes);
  void enqueue(std::shared_ptr<const std::string> frame);
  void begin_close(uint16_t code, std::string reason);
  void write_next();
  void on_write(boost::beast::error_code ec, size_t bytes);
  void finish();

  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::asio::any_io_executor executor_;
  boost::beast::flat_buffer buffer_;
  const WsOptions& options_;
  WsService& service_;
  ConnectionTracker& tracker_;
  uint64_t id_;
  std::shared_ptr<WsHandler> handler_;
  // Not a std::deque: libstdc++'s allocates ~600 bytes on construction, for every idle
  // connection; a devector allocates on first use and is freed when it drains.
  boost::container::devector<std::shared_ptr<const std::string>> queue_;
  size_t queued_bytes_ = 0;
  // The message being written: the first `in_flight_` frames of queue_, copied into
  // `batch_` (frame "\n" frame ...) when there are several. Empty while idle.
  std::string batch_;
  size_t in_flight_ = 0;
  std::atomic<bool> batching_{false};
  bool writing_ = false;
  bool closing_ = false;  // a close frame is queued or sent: no more frames
  bool finished_ = false;
  std::optional<boost::beast::websocket::close_reason> pending_close_;
  std::unique_ptr<boost::asio::steady_timer> kill_timer_;  // only while closing
};

}  // namespace parley::net
