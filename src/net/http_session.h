// An HTTP/1.1 connection: reads requests (bounded in size and time), answers them through
// the HttpHandler, and hands a WebSocket upgrade of /v1/ws over to a WsConnection.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <optional>

#include "net/transport.h"
#include "net/ws_connection.h"

namespace parley::net {

struct HttpOptions {
  uint32_t body_limit = 16 * 1024;
  uint32_t header_limit = 8 * 1024;
  uint32_t timeout_s = 10;
  std::string ws_path = "/v1/ws";
  std::string ws_subprotocol = "parley.v1";
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, const HttpOptions& http, const WsOptions& ws,
              HttpHandler& handler, WsService& ws_service, ConnectionTracker& tracker);
  ~HttpSession();
  void run();

 private:
  void read_next();
  void on_read(boost::beast::error_code ec, size_t bytes);
  void upgrade(HttpRequest request);
  void respond(HttpResponse response);
  void on_write(bool keep_alive, boost::beast::error_code ec, size_t bytes);

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  const HttpOptions& http_;
  const WsOptions& ws_;
  HttpHandler& handler_;
  WsService& ws_service_;
  ConnectionTracker& tracker_;
  bool handed_over_ = false;  // the socket now belongs to a WsConnection
};

// A JSON error response: {"error":{"code":...,"message":...}}.
HttpResponse json_error(unsigned version, boost::beast::http::status status, std::string_view code,
                        std::string_view message);

}  // namespace parley::net
