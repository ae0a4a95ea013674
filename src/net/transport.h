// What the chat layer sees of a connection, and what the transport sees of the chat layer.
// net/ knows nothing of chats (STYLE.md §2.5): it moves frames and HTTP messages.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace parley::net {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// One WebSocket connection. Every method is safe to call from any thread.
class Transport {
 public:
  virtual ~Transport() = default;
  // Queues a text frame. Past ws.max_send_queue_bytes queued, the connection is closed
  // with 4008 (slow consumer) instead of buffering more.
  virtual void send(std::shared_ptr<const std::string> frame) = 0;
  // Sends what is queued, then the close frame.
  virtual void close(uint16_t code, std::string reason) = 0;
  // Unique per process.
  virtual uint64_t id() const = 0;
  // The connection's thread: post here to run alongside its handler.
  virtual boost::asio::any_io_executor executor() const = 0;
};

// The chat side of one connection. Called only on the connection's thread.
class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_frame(std::string_view text, bool binary) = 0;
  virtual void on_close() = 0;
};

class WsService {
 public:
  virtual ~WsService() = default;
  virtual std::shared_ptr<WsHandler> on_open(std::shared_ptr<Transport> transport) = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // `done` may be called on any thread, exactly once.
  virtual void handle(HttpRequest request, std::function<void(HttpResponse)> done) = 0;
};

}  // namespace parley::net
