// One WebSocket connection to parleyd: connect + handshake (subprotocol parley.v1), a read
// loop, and an ordered write queue with one write in flight. Knows nothing about the protocol
// beyond the subprotocol name. Not thread-safe: use it from the executor's one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "parley/url.h"

namespace parley::detail {

inline constexpr char kSubprotocol[] = "parley.v1";

// How a connection ended.
struct CloseInfo {
  int close_code = 0;  // from the peer's close frame; 0 if there was none
  std::string reason;  // close frame reason text
  std::string error;   // local error (read failed, timeout); empty after a close frame
};

class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds idle_timeout{30000};
    size_t max_frame_bytes = 64 << 20;
    std::string user_agent;
  };

  WsConnection(boost::asio::any_io_executor executor, Options options);

  // Resolves, connects and performs the WebSocket handshake. Throws Error{"connection_failed"}.
  boost::asio::awaitable<void> Open(const Url& url);

  // Reads until the connection ends, passing each text frame to on_frame; returns why it
  // ended. Call once, after Open().
  boost::asio::awaitable<CloseInfo> ReadLoop(std::function<void(std::string_view)> on_frame);

  // Queues a text frame (dropped when the connection is not open or closing).
  void Write(std::string frame);
  // Queues a close frame after the frames already queued; Abort()s if not open yet.
  void Close(uint16_t code);
  // Closes the socket now: pending operations end with an error.
  void Abort();

  bool is_open() const { return open_; }

 private:
  struct Item {
    bool close = false;
    uint16_t code = 0;
    std::string text;
  };
  void WriteNext();
  void DropQueued();

  Options options_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  std::deque<Item> queue_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;  // close queued or connection over: no more writes
};

}  // namespace parley::detail
