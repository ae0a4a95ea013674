#include "ws_connection.h"

#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>

#include "parley/error.h"

namespace parley::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

WsConnection::WsConnection(net::any_io_executor executor, Options options)
    : options_(std::move(options)), resolver_(executor), ws_(executor) {}

net::awaitable<void> WsConnection::Open(const Url& url) {
  beast::error_code ec;
  auto fail = [&](std::string_view step) {
    throw Error(errc::kConnectionFailed,
                std::string(step) + " " + url.HostPort() + ": " + ec.message(), true);
  };
  auto endpoints = co_await resolver_.async_resolve(url.host, std::to_string(url.port),
                                                    net::redirect_error(net::use_awaitable, ec));
  if (ec) fail("resolve");
  auto& tcp = beast::get_lowest_layer(ws_);
  tcp.expires_after(options_.connect_timeout);
  co_await tcp.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) fail("connect to");
  tcp.socket().set_option(net::ip::tcp::no_delay(true), ec);
  tcp.expires_never();  // the websocket stream has its own timeouts from here on

  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options_.connect_timeout;  // also bounds the close handshake
  timeouts.idle_timeout = options_.idle_timeout;
  timeouts.keep_alive_pings = true;  // ping at idle/2, drop at idle without any frame
  ws_.set_option(timeouts);
  ws_.set_option(
      websocket::stream_base::decorator([ua = options_.user_agent](websocket::request_type& req) {
        req.set(http::field::user_agent, ua);
        req.set(http::field::sec_websocket_protocol, kSubprotocol);
      }));
  ws_.read_message_max(options_.max_frame_bytes);
  ws_.text(true);

  websocket::response_type res;
  co_await ws_.async_handshake(res, url.HostPort(), url.path,
                               net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    std::string detail = ec.message();
    if (res.result_int() != 0 && res.result_int() != 101) {
      detail = "HTTP " + std::to_string(res.result_int());
      if (!res.body().empty()) detail += ": " + res.body().substr(0, 200);
    }
    throw Error(errc::kConnectionFailed,
                "WebSocket handshake with " + url.ToString() + ": " + detail, true);
  }
  if (res[http::field::sec_websocket_protocol] != kSubprotocol) {
    Abort();
    throw Error(errc::kConnectionFailed,
                "server at " + url.ToString() + " did not accept subprotocol parley.v1", false);
  }
  open_ = true;
}

net::awaitable<CloseInfo> WsConnection::ReadLoop(std::function<void(std::string_view)> on_frame) {
  beast::flat_buffer buffer;
  CloseInfo info;
  for (;;) {
    beast::error_code ec;
    co_await ws_.async_read(buffer, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      if (ec == websocket::error::closed) {
        info.close_code = static_cast<int>(ws_.reason().code);
        info.reason = std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
      } else {
        info.error = ec.message();
      }
      break;
    }
    if (ws_.got_text()) {
      auto data = buffer.cdata();
      on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    buffer.consume(buffer.size());
  }
  open_ = false;
  closing_ = true;
  DropQueued();
  co_return info;
}

void WsConnection::Write(std::string frame) {
  if (!open_ || closing_) return;
  queue_.push_back(Item{false, 0, std::move(frame)});
  if (!writing_) WriteNext();
}

void WsConnection::Close(uint16_t code) {
  if (closing_) return;
  closing_ = true;
  if (!open_) {
    Abort();
    return;
  }
  queue_.push_back(Item{true, code, {}});
  if (!writing_) WriteNext();
}

void WsConnection::DropQueued() {
  // The front item's buffer belongs to the write in flight until its handler runs.
  size_t keep = writing_ && !queue_.empty() ? 1 : 0;
  queue_.resize(keep);
}

void WsConnection::Abort() {
  closing_ = true;
  DropQueued();
  resolver_.cancel();
  beast::get_lowest_layer(ws_).close();
}

void WsConnection::WriteNext() {
  if (queue_.empty() || !open_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  Item& item = queue_.front();
  auto self = shared_from_this();
  if (item.close) {
    ws_.async_close(websocket::close_reason(item.code), [self](beast::error_code ec) {
      self->writing_ = false;
      self->queue_.clear();  // nothing is written after a close frame
      if (ec) self->Abort();
    });
    return;
  }
  ws_.async_write(net::buffer(item.text), [self](beast::error_code ec, size_t) {
    if (ec) {
      self->writing_ = false;
      self->Abort();
      return;
    }
    if (!self->queue_.empty()) self->queue_.pop_front();
    self->WriteNext();
  });
}

}  // namespace parley::detail
