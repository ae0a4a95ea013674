// The listener and the I/O threads: one io_context per thread, each connection pinned to
// one of them (round robin at accept), so that a connection's work never crosses threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "common/errc.h"
#include "net/connection_tracker.h"
#include "net/http_session.h"
#include "net/ws_connection.h"

namespace parley::net {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  uint32_t threads = 1;
  uint32_t max_connections = 100000;
  HttpOptions http;
  WsOptions ws;
};

class Server {
 public:
  Server(ServerOptions options, HttpHandler& http, WsService& ws);
  ~Server();

  // Binds and listens; returns the bound port (useful with port 0).
  Result<uint16_t> listen();
  // Starts the I/O threads and accepting. Returns at once.
  void start();
  // Stops accepting new connections; open ones go on.
  void stop_accepting();
  // Asks every WebSocket to close with `code`, waits up to `grace` for them to go.
  void close_connections(uint16_t code, const std::string& reason, std::chrono::milliseconds grace);
  // Stops the I/O threads and joins them.
  void stop();

  ConnectionTracker& tracker() { return tracker_; }

 private:
  void accept_next();
  boost::asio::io_context& next_context();

  ServerOptions options_;
  HttpHandler& http_;
  WsService& ws_;
  ConnectionTracker tracker_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  boost::asio::ip::tcp::acceptor acceptor_;
  size_t next_ = 0;
};

}  // namespace parley::net
