#include "connection.h"

#include <fmt/format.h>
#include <netinet/in.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/value.hpp>

#include "system.h"
#include "worker.h"

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

Connection::Connection(Worker& worker, ConnectionListener& listener, uint32_t index, size_t node)
    : worker_(worker),
      listener_(listener),
      ws_(worker.ioc()),
      index_(index),
      node_(static_cast<uint8_t>(node)) {}

void Connection::queue_open() { worker_.queue_open(this); }

void Connection::open() {
  state_ = State::opening;
  started_ns_ = now_ns();
  connect();
}

void Connection::connect() {
  auto& shared = worker_.shared();
  auto source = shared.sources.pick(index_, &source_slot_);
  auto& sock = ws_.next_layer();
  error_code ec;
  if (sock.is_open()) sock.close(ec);
  sock.open(source.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), ec);
  if (!ec && source.is_v4()) {
    // Pick the port at connect(), per 4-tuple, not at bind(): one source address then
    // serves a whole ephemeral port range per server port.
    int one = 1;
    ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  }
  if (!ec) sock.bind(asio::ip::tcp::endpoint(source, 0), ec);
  if (ec) return on_connect(ec);
  const auto& target = shared.options.targets[node_];
  asio::ip::tcp::endpoint server(target.address, target.port);
  sock.async_connect(server, [this](error_code e) { on_connect(e); });
}

void Connection::on_connect(error_code ec) {
  if (state_ != State::opening) return;
  if (ec == boost::system::errc::address_not_available || ec == asio::error::address_in_use) {
    // This source address has no port left for the server: move on to the next one.
    if (++source_retries_ < 254 && worker_.shared().sources.exhausted(source_slot_))
      return connect();
  }
  if (ec) return go_down(ConnectionListener::Down::failed, "connect: " + ec.message());
  ws_.next_layer().set_option(asio::ip::tcp::no_delay(true), ec);
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(10);
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::sec_websocket_protocol, "parley.v1");
    req.set(beast::http::field::user_agent, "parley-bench");
  }));
  ws_.read_message_max(64 * 1024 * 1024);
  ws_.text(true);
  const auto& target = worker_.shared().options.targets[node_];
  ws_.async_handshake(target.host, target.path, [this](error_code e) { on_handshake(e); });
}

void Connection::on_handshake(error_code ec) {
  if (state_ != State::opening) return;
  if (ec) return go_down(ConnectionListener::Down::failed, "upgrade: " + ec.message());
  out_.clear();
  fmt::format_to(std::back_inserter(out_), R"({{"type":"auth","id":{},"token":"{}","batch":true}})",
                 kAuthId, listener_.token(*this));
  ws_.async_write(asio::buffer(out_), [this](error_code e, size_t) { on_auth_written(e); });
}

void Connection::on_auth_written(error_code ec) {
  if (state_ != State::opening) return;
  if (ec) return go_down(ConnectionListener::Down::failed, "auth write: " + ec.message());
  out_.clear();
  out_.shrink_to_fit();  // an idle connection keeps no token around
  ws_.async_read(in_, [this](error_code e, size_t) { on_auth_reply(e); });
}

void Connection::on_auth_reply(error_code ec) {
  if (state_ != State::opening) return;
  if (ec) return go_down(ConnectionListener::Down::failed, "auth read: " + ec.message());
  auto data = in_.cdata();
  const auto* v =
      worker_.json().parse(std::string_view(static_cast<const char*>(data.data()), data.size()));
  in_.consume(in_.size());
  const boost::json::object* o = v && v->is_object() ? &v->get_object() : nullptr;
  if (!o || get_str(*o, "type") != "ok" || get_u64(*o, "id") != kAuthId) {
    std::string why = "auth refused";
    if (o)
      why += ": " + std::string(get_str(*o, "code")) + " " + std::string(get_str(*o, "message"));
    return go_down(ConnectionListener::Down::failed, why);
  }
  const auto* result = get_obj(*o, "result");
  uint64_t pts = result ? get_u64(*result, "pts") : 0;
  state_ = State::ready;
  in_.shrink_to_fit();
  worker_.open_finished(this);
  worker_.counters().connected.add();
  worker_.counters().connected_by_node[node_].add();
  listener_.on_ready(*this, pts);
  if (state_ == State::ready) read_next();
}

void Connection::read_next() {
  ws_.async_read(in_, [this](error_code e, size_t) { on_read(e); });
}

void Connection::on_read(error_code ec) {
  if (state_ != State::ready) return;
  if (ec) {
    std::string why =
        ec == websocket::error::closed
            ? fmt::format("closed by server: {} {}", ws_.reason().code, ws_.reason().reason.c_str())
            : "read: " + ec.message();
    return go_down(ConnectionListener::Down::dropped, why);
  }
  // With batching (asked for at auth) a message holds one frame per line (PROTOCOL.md §3.1).
  auto data = in_.cdata();
  std::string_view message(static_cast<const char*>(data.data()), data.size());
  while (!message.empty() && state_ == State::ready) {
    size_t nl = message.find('\n');
    std::string_view frame = message.substr(0, nl);
    message = nl == std::string_view::npos ? std::string_view() : message.substr(nl + 1);
    const auto* v = worker_.json().parse(frame);
    if (v && v->is_object()) {
      listener_.on_frame(*this, v->get_object());
    } else {
      worker_.counters().bad_frames.add();
    }
  }
  in_.consume(in_.size());
  if (state_ == State::ready) read_next();
}

void Connection::write() {
  if (!writable()) return;
  writing_ = true;
  ws_.async_write(asio::buffer(out_), [this](error_code ec, size_t) {
    writing_ = false;
    if (state_ != State::ready) return;
    if (ec) return go_down(ConnectionListener::Down::dropped, "write: " + ec.message());
    listener_.on_writable(*this);
  });
}

void Connection::close() {
  if (state_ == State::down || state_ == State::idle) {
    state_ = State::down;
    return;
  }
  go_down(ConnectionListener::Down::closed, "closed by bench");
}

void Connection::abort(std::string_view why) {
  if (state_ == State::opening) go_down(ConnectionListener::Down::failed, why);
}

void Connection::go_down(ConnectionListener::Down how, std::string_view why) {
  bool was_opening = state_ == State::opening;
  state_ = State::down;
  error_code ec;
  auto& sock = ws_.next_layer();
  if (sock.is_open()) {
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }
  if (was_opening) {
    how = ConnectionListener::Down::failed;
    worker_.counters().failed.add();
    worker_.open_finished(this);
  } else if (how == ConnectionListener::Down::dropped) {
    worker_.counters().dropped.add();
  }
  listener_.on_down(*this, how, why);
}

}  // namespace parley::bench
