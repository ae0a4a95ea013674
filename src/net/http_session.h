// An HTTP/1.1 connection: reads requests (bounded in size and time), answers them through
// the HttpHandler, and hands a WebSocket upgrade of /v1/ws over to a WsConnection.
//
// Each request's header is read first. A body the handler streams (HttpHandler::streams) is
// read in chunks of at most kChunkBytes into its BodySink, one chunk at a time; any other is
// read whole, up to http.body_limit. A StreamedResponse is written chunk by chunk from its
// BodySource. The timeout applies to each socket operation (a whole header, a whole body
// read whole, one chunk); never while the handler, a sink or a source is working.
#pragma once

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
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
  // The largest chunk handed to a BodySink.
  static constexpr size_t kChunkBytes = 64 * 1024;

  HttpSession(boost::asio::ip::tcp::socket&& socket, const HttpOptions& http, const WsOptions& ws,
              HttpHandler& handler, WsService& ws_service, ConnectionTracker& tracker);
  ~HttpSession();
  void run();

 private:
  struct Outgoing;  // a StreamedResponse being written

  // Requests.
  void read_next();
  void on_header(boost::beast::error_code ec, size_t bytes);
  void on_read_error(boost::beast::error_code ec);
  void read_whole();
  void on_read(boost::beast::error_code ec, size_t bytes);
  void upgrade(HttpRequest request);

  // Streamed request bodies.
  void open_stream();
  void on_stream_start(std::shared_ptr<BodySink> sink, std::optional<HttpResponse> refusal,
                       uint64_t max_bytes);
  void read_chunk();
  void on_chunk(boost::beast::error_code ec, size_t bytes);
  void on_next(uint64_t seq, std::optional<HttpResponse> stop);
  void finish_stream();
  void stream_too_large();
  void abort_stream();

  // Answers.
  void reply(HttpReply reply);
  void respond(HttpResponse response);
  void respond_streamed(StreamedResponse response);
  void pull_source();
  void on_source(Result<std::string_view> chunk);
  void on_write(bool keep_alive, boost::beast::error_code ec, size_t bytes);
  void linger();
  void drop();

  char* chunk_buffer();

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  // One of these at a time: the header of a request, then its body read whole or streamed.
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> header_parser_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body>> body_parser_;
  std::unique_ptr<char[]> chunk_;  // kChunkBytes, allocated on first use, then reused
  const HttpOptions& http_;
  const WsOptions& ws_;
  HttpHandler& handler_;
  WsService& ws_service_;
  ConnectionTracker& tracker_;
  bool handed_over_ = false;  // the socket now belongs to a WsConnection

  // The current request.
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;          // HEAD: a streamed answer's body is never sent
  bool request_done_ = false;  // read whole: another request may follow on the connection

  // The sink of a body being streamed in, until finish(), abort() or a stopping write; the
  // session's destruction aborts it (the I/O threads stopped mid-stream).
  std::shared_ptr<BodySink> sink_;
  std::atomic<bool> sink_stopped_{false};  // its `next` stopped it (set on the sink's thread)
  uint64_t max_bytes_ = 0;
  uint64_t chunk_seq_ = 0;      // numbers the sink's write() calls
  bool awaiting_next_ = false;  // a write() whose `next` has not come back yet

  std::unique_ptr<Outgoing> out_;
};

// A JSON error response: {"error":{"code":...,"message":...}}.
HttpResponse json_error(unsigned version, boost::beast::http::status status, std::string_view code,
                        std::string_view message);

}  // namespace parley::net
