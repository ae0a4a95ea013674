#include "support/ws_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <stdexcept>

namespace parley::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr std::size_t kReadMessageMax = 64 * 1024 * 1024;

// Connects `ws` and performs the handshake, running `ioc` until done or the deadline.
beast::error_code connect_and_handshake(asio::io_context& ioc,
                                        websocket::stream<beast::tcp_stream>& ws,
                                        std::uint16_t port, const WsOptions& options,
                                        websocket::response_type& res) {
  if (options.subprotocol) {
    ws.set_option(websocket::stream_base::decorator(
        [sp = *options.subprotocol](websocket::request_type& req) {
          req.set(http::field::sec_websocket_protocol, sp);
          req.set(http::field::user_agent, "parley-integration-test");
        }));
  }
  auto& lowest = beast::get_lowest_layer(ws);
  lowest.expires_after(options.timeout);
  bool done = false;
  beast::error_code result;
  const std::string host = "127.0.0.1:" + std::to_string(port);
  lowest.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code ec) {
                         if (ec) {
                           result = ec;
                           done = true;
                           return;
                         }
                         lowest.expires_after(options.timeout);
                         ws.async_handshake(res, host, options.target, [&](beast::error_code hec) {
                           result = hec;
                           done = true;
                         });
                       });
  ioc.run();
  ioc.restart();
  if (!done) result = asio::error::timed_out;
  lowest.expires_never();
  return result;
}

}  // namespace

WsClient::WsClient(std::uint16_t port, WsOptions options) : ws_(ioc_) {
  websocket::response_type res;
  auto ec = connect_and_handshake(ioc_, ws_, port, options, res);
  if (ec) {
    throw std::runtime_error("WebSocket handshake to 127.0.0.1:" + std::to_string(port) +
                             " failed: " + ec.message() + " (HTTP " +
                             std::to_string(res.result_int()) + " " + res.body() + ")");
  }
  subprotocol_ = std::string(res[http::field::sec_websocket_protocol]);
  ws_.read_message_max(kReadMessageMax);
  ws_.auto_fragment(false);
  start_read();
}

WsClient::~WsClient() {
  if (!closed_) close(1000, 1s);
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  ioc_.restart();
  ioc_.run_for(1s);
}

HandshakeResult WsClient::try_handshake(std::uint16_t port, WsOptions options) {
  HandshakeResult out;
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws(ioc);
  websocket::response_type res;
  auto ec = connect_and_handshake(ioc, ws, port, options, res);
  out.upgraded = !ec;
  out.status = res.result_int();
  out.body = res.body();
  out.subprotocol = std::string(res[http::field::sec_websocket_protocol]);
  if (ec) out.error = ec.message();
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().close(ignored);
  return out;
}

bool WsClient::run_until(const std::function<bool()>& done, Clock::time_point deadline) {
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    if (ioc_.stopped()) ioc_.restart();
    if (ioc_.run_one_until(deadline) == 0 && ioc_.stopped() && Clock::now() < deadline) {
      return done();  // no work left: nothing more can arrive
    }
  }
  return true;
}

void WsClient::start_read() {
  reading_ = true;
  ws_.async_read(read_buffer_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
}

void WsClient::on_read(beast::error_code ec) {
  reading_ = false;
  if (ec) {
    closed_ = true;
    read_error_ = ec;
    // Beast keeps the peer's close frame even when answering it or the TCP teardown then
    // fails (e.g. the server reset the connection right after its close frame).
    auto reason = ws_.reason();
    if (reason.code != websocket::close_code::none) {
      close_code_ = static_cast<std::uint16_t>(reason.code);
      close_reason_ = std::string(reason.reason.data(), reason.reason.size());
    } else {
      close_code_ = ec == websocket::error::closed ? 1005 : 1006;
    }
    return;
  }
  std::string message = beast::buffers_to_string(read_buffer_.data());
  read_buffer_.consume(read_buffer_.size());
  ++messages_;
  // A message holds one frame, or several, one per line, once batching was asked for at auth
  // (PROTOCOL.md §3.1). A newline in a message that did not ask for it is a failure.
  std::vector<std::string> lines;
  for (size_t start = 0;;) {
    size_t nl = message.find('\n', start);
    lines.push_back(message.substr(start, nl == std::string::npos ? nl : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (lines.size() > 1 && !batching_)
    ADD_FAILURE() << "several frames in one message without batching: " << message;
  for (const auto& text : lines) {
    json::error_code jec;
    auto value = json::parse(text, jec);
    if (jec || !value.is_object()) {
      ADD_FAILURE() << "server sent a frame that is not a JSON object: " << text;
      Frame bad;
      bad["type"] = "<unparsable>";
      bad["raw"] = text;
      received_.push_back(bad);
      inbox_.push_back(std::move(bad));
    } else {
      received_.push_back(value.as_object());
      inbox_.push_back(std::move(value.as_object()));
    }
  }
  start_read();
}

beast::error_code WsClient::write(std::string_view bytes, bool text,
                                  std::chrono::milliseconds timeout) {
  if (closed_) return websocket::error::closed;
  ws_.text(text);
  bool done = false;
  beast::error_code result;
  ws_.async_write(asio::buffer(bytes.data(), bytes.size()), [&](beast::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  if (!run_until([&] { return done; }, Clock::now() + timeout)) {
    beast::get_lowest_layer(ws_).socket().cancel();
    run_until([&] { return done; }, Clock::now() + 1s);
    return asio::error::timed_out;
  }
  return result;
}

beast::error_code WsClient::send_text(std::string_view bytes, std::chrono::milliseconds timeout) {
  return write(bytes, true, timeout);
}

beast::error_code WsClient::send_binary(std::string_view bytes, std::chrono::milliseconds timeout) {
  return write(bytes, false, timeout);
}

beast::error_code WsClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (closed_) return websocket::error::closed;
  bool done = false;
  beast::error_code result;
  asio::async_write(beast::get_lowest_layer(ws_).socket(), asio::buffer(bytes.data(), bytes.size()),
                    [&](beast::error_code ec, std::size_t) {
                      result = ec;
                      done = true;
                    });
  if (!run_until([&] { return done; }, Clock::now() + timeout)) return asio::error::timed_out;
  return result;
}

std::int64_t WsClient::send_request(Frame request) {
  std::int64_t id;
  if (const auto* v = request.if_contains("id"); v != nullptr && v->is_int64()) {
    id = v->as_int64();
    if (id >= next_id_) next_id_ = id + 1;
  } else {
    id = next_id_++;
    request["id"] = id;
  }
  auto ec = send_text(json::serialize(request));
  if (ec) {
    throw std::runtime_error(
        "send of request " + json::serialize(request) + " failed: " + ec.message() +
        (close_code_ ? " (closed with " + std::to_string(*close_code_) + ")" : std::string()));
  }
  return id;
}

std::optional<WsClient::Frame> WsClient::take_first(const std::function<bool(const Frame&)>& pred) {
  for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
    if (pred(*it)) {
      Frame f = std::move(*it);
      inbox_.erase(it);
      return f;
    }
  }
  return std::nullopt;
}

std::optional<WsClient::Frame> WsClient::wait_for(const std::function<bool(const Frame&)>& pred,
                                                  std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::size_t checked = 0;
  std::optional<Frame> found;
  run_until(
      [&] {
        // Only frames that arrived since the last check can newly match.
        for (; checked < inbox_.size(); ++checked) {
          if (pred(inbox_[checked])) {
            found = std::move(inbox_[checked]);
            inbox_.erase(inbox_.begin() + static_cast<std::ptrdiff_t>(checked));
            return true;
          }
        }
        return closed_;
      },
      deadline);
  return found;
}

std::optional<WsClient::Frame> WsClient::wait_response(std::int64_t id,
                                                       std::chrono::milliseconds timeout) {
  return wait_for(
      [id](const Frame& f) {
        if (!is_response(f)) return false;
        const auto& v = f.at("id");
        return v.is_int64() && v.as_int64() == id;
      },
      timeout);
}

WsClient::Frame WsClient::request(Frame req, std::chrono::milliseconds timeout) {
  std::string text = json::serialize(req);
  auto id = send_request(std::move(req));
  auto res = wait_response(id, timeout);
  if (!res) {
    throw std::runtime_error(
        "no response to " + text + " within " + std::to_string(timeout.count()) + " ms" +
        (closed_ ? " (connection closed with " + std::to_string(close_code_.value_or(0)) + " " +
                       close_reason_ + ")"
                 : std::string()));
  }
  return *res;
}

WsClient::Frame WsClient::auth(const std::string& token, bool batch) {
  Frame req{{"type", "auth"}, {"token", token}};
  if (batch) {
    req["batch"] = true;
    batching_ = true;
  }
  return request(std::move(req));
}

std::optional<WsClient::Frame> WsClient::next_push(std::chrono::milliseconds timeout) {
  return wait_for(is_push, timeout);
}

std::optional<WsClient::Frame> WsClient::next_frame(std::chrono::milliseconds timeout) {
  return wait_for([](const Frame&) { return true; }, timeout);
}

void WsClient::poll() {
  if (ioc_.stopped()) ioc_.restart();
  ioc_.poll();
}

std::vector<WsClient::Frame> WsClient::take_all() {
  poll();
  std::vector<Frame> out(std::make_move_iterator(inbox_.begin()),
                         std::make_move_iterator(inbox_.end()));
  inbox_.clear();
  return out;
}

std::optional<std::uint16_t> WsClient::wait_close(std::chrono::milliseconds timeout) {
  run_until([this] { return closed_; }, Clock::now() + timeout);
  if (!closed_) return std::nullopt;
  return close_code_;
}

void WsClient::close(std::uint16_t code, std::chrono::milliseconds timeout) {
  if (closed_) return;
  bool done = false;
  ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code)),
                  [&](beast::error_code) { done = true; });
  run_until([&] { return done && !reading_; }, Clock::now() + timeout);
  if (!done || reading_) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    run_until([&] { return done && !reading_; }, Clock::now() + 1s);
  }
  closed_ = true;
}

bool is_response(const WsClient::Frame& f) {
  const auto* type = f.if_contains("type");
  return f.contains("id") && type != nullptr && type->is_string() &&
         (type->as_string() == "ok" || type->as_string() == "error");
}

bool is_push(const WsClient::Frame& f) { return !f.contains("id"); }

bool is_ok(const WsClient::Frame& f) {
  const auto* type = f.if_contains("type");
  return type != nullptr && type->is_string() && type->as_string() == "ok";
}

std::string error_code_of(const WsClient::Frame& f) {
  const auto* type = f.if_contains("type");
  if (type == nullptr || !type->is_string() || type->as_string() != "error") return "";
  const auto* code = f.if_contains("code");
  if (code == nullptr || !code->is_string()) return "";
  return std::string(code->as_string());
}

}  // namespace parley::test
