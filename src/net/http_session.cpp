#include "net/http_session.h"

#include <fmt/format.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "net/connection_tracker.h"

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace parley::net {
namespace {

// True if the comma-separated Sec-WebSocket-Protocol offer contains `want`.
bool offers_subprotocol(std::string_view header, std::string_view want) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto token = header.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == want) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

HttpResponse json_error(unsigned version, http::status status, std::string_view code,
                        std::string_view message) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() =
      fmt::format(R"({{"error":{{"code":"{}","message":{}}}}})", code,
                  boost::json::serialize(boost::json::string_view(message.data(), message.size())));
  res.prepare_payload();
  return res;
}

HttpSession::HttpSession(asio::ip::tcp::socket&& socket, const HttpOptions& http,
                         const WsOptions& ws, HttpHandler& handler, WsService& ws_service,
                         ConnectionTracker& tracker)
    : stream_(std::move(socket)),
      http_(http),
      ws_(ws),
      handler_(handler),
      ws_service_(ws_service),
      tracker_(tracker) {}

HttpSession::~HttpSession() {
  if (!handed_over_) tracker_.closed();
}

void HttpSession::run() {
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&HttpSession::read_next, shared_from_this()));
}

void HttpSession::read_next() {
  parser_.emplace();
  parser_->body_limit(http_.body_limit);
  parser_->header_limit(http_.header_limit);
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, size_t) {
  if (ec == http::error::body_limit)
    return respond(json_error(11, http::status::payload_too_large, "too_large",
                              fmt::format("request body over {} bytes", http_.body_limit)));
  if (ec == http::error::header_limit)
    return respond(json_error(11, http::status::request_header_fields_too_large, "too_large",
                              "headers too large"));
  if (ec) {
    if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
        ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
        ec != asio::error::eof)
      return respond(
          json_error(11, http::status::bad_request, "bad_request", "malformed HTTP request"));
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    return;
  }
  HttpRequest req = parser_->release();
  if (beast::websocket::is_upgrade(req)) return upgrade(std::move(req));
  auto self = shared_from_this();
  unsigned version = req.version();
  bool keep_alive = req.keep_alive();
  handler_.handle(std::move(req), [self, version, keep_alive](HttpResponse res) {
    res.version(version);
    res.keep_alive(keep_alive && res.keep_alive());
    asio::post(self->stream_.get_executor(),
               [self, res = std::move(res)]() mutable { self->respond(std::move(res)); });
  });
}

void HttpSession::upgrade(HttpRequest req) {
  auto path = std::string_view(req.target()).substr(0, std::string_view(req.target()).find('?'));
  if (path != http_.ws_path)
    return respond(json_error(req.version(), http::status::not_found, "not_found",
                              "no WebSocket endpoint here"));
  if (!offers_subprotocol(req[http::field::sec_websocket_protocol], http_.ws_subprotocol))
    return respond(
        json_error(req.version(), http::status::bad_request, "subprotocol_required",
                   fmt::format("offer the WebSocket subprotocol {}", http_.ws_subprotocol)));
  handed_over_ = true;
  stream_.expires_never();
  auto ws = std::make_shared<WsConnection>(stream_.release_socket(), ws_, ws_service_, tracker_);
  ws->start(std::move(req));
}

void HttpSession::respond(HttpResponse res) {
  bool keep_alive = res.keep_alive() && parser_ && parser_->is_done();
  res.keep_alive(keep_alive);
  res.set(http::field::server, "parleyd");
  auto sp = std::make_shared<HttpResponse>(std::move(res));
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  http::async_write(stream_, *sp,
                    [self = shared_from_this(), sp, keep_alive](beast::error_code ec, size_t n) {
                      self->on_write(keep_alive, ec, n);
                    });
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, size_t) {
  if (ec) return;
  if (keep_alive) return read_next();
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace parley::net
