// net/ on its own, with an echo service instead of the chat layer (like Dragonfly's
// ok_main.cc): proves the transport has no chat dependencies and checks its bounds.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "net/server.h"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace parley::net {
namespace {

class EchoHandler final : public WsHandler {
 public:
  explicit EchoHandler(std::shared_ptr<Transport> t) : t_(std::move(t)) {}
  void on_frame(std::string_view text, bool) override {
    if (text == "flood") {
      // Far more than the send queue bound, at once: the connection must be closed 4008.
      auto big = std::make_shared<const std::string>(32 * 1024, 'x');
      for (int i = 0; i < 2000; ++i) t_->send(big);
      return;
    }
    if (text == "bye") return t_->close(4000, "bye");
    t_->send(std::make_shared<const std::string>(text));
  }
  void on_close() override { t_.reset(); }

 private:
  std::shared_ptr<Transport> t_;
};

class EchoService final : public WsService {
 public:
  std::shared_ptr<WsHandler> on_open(std::shared_ptr<Transport> t) override {
    return std::make_shared<EchoHandler>(std::move(t));
  }
};

class OkHttp final : public HttpHandler {
 public:
  void handle(HttpRequest req, std::function<void(HttpResponse)> done) override {
    HttpResponse res{beast::http::status::ok, req.version()};
    res.body() = "ok " + std::string(req.target());
    res.prepare_payload();
    done(std::move(res));
  }
};

class NetEchoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    opts.max_connections = 8;
    opts.ws.max_frame_bytes = 4096;
    opts.ws.max_send_queue_bytes = 1 << 20;
    opts.http.body_limit = 1024;
    server_ = std::make_unique<Server>(opts, http_, echo_);
    auto p = server_->listen();
    ASSERT_TRUE(p.ok());
    port_ = p.value();
    server_->start();
  }
  void TearDown() override { server_->stop(); }

  std::unique_ptr<websocket::stream<tcp::socket>> connect(const char* subprotocol = "parley.v1") {
    auto ws = std::make_unique<websocket::stream<tcp::socket>>(ioc_);
    ws->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    ws->set_option(websocket::stream_base::decorator([subprotocol](websocket::request_type& req) {
      if (subprotocol) req.set(beast::http::field::sec_websocket_protocol, subprotocol);
    }));
    ws->handshake("127.0.0.1", "/v1/ws");
    return ws;
  }

  // Reads until the server closes; returns the close code.
  uint16_t read_until_closed(websocket::stream<tcp::socket>& ws) {
    beast::flat_buffer buf;
    beast::error_code ec;
    while (!ec) {
      ws.read(buf, ec);
      buf.consume(buf.size());
    }
    return ws.reason().code;
  }

  asio::io_context ioc_;
  EchoService echo_;
  OkHttp http_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

TEST_F(NetEchoTest, EchoesTextFrames) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("hello")));
  beast::flat_buffer buf;
  ws->read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "hello");
  ws->close(websocket::close_code::normal);
}

TEST_F(NetEchoTest, RequiresSubprotocol) {
  EXPECT_THROW(connect(nullptr), beast::system_error);
  EXPECT_THROW(connect("other.v2"), beast::system_error);
}

TEST_F(NetEchoTest, ServesPlainHttp) {
  tcp::socket s(ioc_);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  beast::http::request<beast::http::string_body> req{beast::http::verb::get, "/x", 11};
  beast::http::write(s, req);
  beast::flat_buffer buf;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(s, buf, res);
  EXPECT_EQ(res.body(), "ok /x");
  beast::http::request<beast::http::string_body> big{beast::http::verb::post, "/x", 11};
  big.body() = std::string(4096, 'a');
  big.prepare_payload();
  beast::http::write(s, big);
  beast::http::read(s, buf, res);
  EXPECT_EQ(res.result(), beast::http::status::payload_too_large);
}

TEST_F(NetEchoTest, OversizedFrameClosesWith1009) {
  auto ws = connect();
  ws->write(asio::buffer(std::string(8192, 'a')));
  EXPECT_EQ(read_until_closed(*ws), 1009);
}

TEST_F(NetEchoTest, InvalidUtf8ClosesWith1007) {
  auto ws = connect();
  ws->text(true);
  ws->write(asio::buffer(std::string("\xff\xfe")));
  EXPECT_EQ(read_until_closed(*ws), 1007);
}

TEST_F(NetEchoTest, SlowConsumerIsClosedWith4008) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("flood")));
  EXPECT_EQ(read_until_closed(*ws), 4008);
}

TEST_F(NetEchoTest, HandlerCloseAndServerWideClose) {
  auto a = connect();
  a->write(asio::buffer(std::string("bye")));
  EXPECT_EQ(read_until_closed(*a), 4000);
  auto b = connect();
  auto c = connect();
  // Make sure both upgrades completed server side before closing everything.
  for (auto* ws : {b.get(), c.get()}) {
    ws->write(asio::buffer(std::string("ping")));
    beast::flat_buffer buf;
    ws->read(buf);
  }
  std::thread closer(
      [&] { server_->close_connections(1001, "going away", std::chrono::seconds(5)); });
  EXPECT_EQ(read_until_closed(*b), 1001);
  EXPECT_EQ(read_until_closed(*c), 1001);
  closer.join();
}

TEST_F(NetEchoTest, RefusesConnectionsOverTheLimit) {
  std::vector<std::unique_ptr<websocket::stream<tcp::socket>>> open;
  for (int i = 0; i < 8; ++i) open.push_back(connect());
  EXPECT_THROW(connect(), beast::system_error);
  open.pop_back();
  open.front()->close(websocket::close_code::normal);
}

}  // namespace
}  // namespace parley::net
