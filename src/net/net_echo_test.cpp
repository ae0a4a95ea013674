// net/ on its own, with an echo service instead of the chat layer (like Dragonfly's
// ok_main.cc): proves the transport has no chat dependencies and checks its bounds.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <netinet/tcp.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/post_batch.h"
#include "net/server.h"
#include "net/ws_test_frames.h"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
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
    if (text == "throw") throw std::runtime_error("handler bug");
    if (text == "quiet") return;  // no answer
    if (text == "from-elsewhere") {
      // Another thread sends and then closes inside one PostBatch (as a store commit does):
      // the close must not overtake the send.
      std::thread([t = t_] {
        PostBatch batch;
        t->send(std::make_shared<const std::string>("last words"));
        t->close(4001, "done");
      }).detach();
      return;
    }
    if (text.starts_with("burst ") || text.starts_with("batch ")) {
      // "batch N": N frames at once with batching on; "burst N": the same without.
      if (text.starts_with("batch ")) t_->set_batching(true);
      int n = std::stoi(std::string(text.substr(6)));
      for (int i = 0; i < n; ++i)
        t_->send(
            std::make_shared<const std::string>(fmt::format("{:05}{}", i, std::string(95, 'x'))));
      return;
    }
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

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
uint64_t fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Deterministic bytes: pattern(n, offset) is bytes [offset, offset + n) of one long stream.
std::string pattern(size_t n, size_t offset = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((offset + i) * 131 + (offset + i) / 4099);
  return s;
}

std::string digest(std::string_view body) {
  return std::to_string(body.size()) + " " + std::to_string(fnv(kFnvOffset, body));
}

constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kDownloadBytes = 3 * kMiB + 777;

// A thread standing for a disk or a remote store: sinks and sources answer from it.
class Worker {
 public:
  Worker() : guard_(asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~Worker() { drain(); }
  void post(std::function<void()> fn) { asio::post(ioc_, std::move(fn)); }
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto t = std::make_shared<asio::steady_timer>(ioc_, delay);
    t->async_wait([t, fn = std::move(fn)](beast::error_code) { fn(); });
  }
  // Runs what is queued (timers included), then stops.
  void drain() {
    guard_.reset();
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

struct Counts {
  int opened = 0;
  int writes = 0;
  int finishes = 0;
  int aborts = 0;
  int bad_calls = 0;  // a call the BodySink contract forbids
  uint64_t bytes = 0;
  size_t max_chunk = 0;
};

struct Stats {
  std::mutex mu;
  std::condition_variable cv;
  Counts c;
  std::function<void(std::optional<HttpResponse>)> held;  // a gated sink's first `next`

  template <class F>
  void update(F f) {
    {
      std::lock_guard lock(mu);
      f(c);
    }
    cv.notify_all();
  }
  template <class P>
  bool wait(P pred, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(c); });
  }
  Counts snap() {
    std::lock_guard lock(mu);
    return c;
  }
};

enum class SinkMode {
  immediate,  // `next` at once, on the calling thread
  slow,       // `next` 50 ms later, on the worker
  gated,      // the first `next` only when the test releases it
  stop,       // stops at the first chunk with a 415
};

class TestSink final : public BodySink, public std::enable_shared_from_this<TestSink> {
 public:
  TestSink(Stats& stats, Worker& worker, SinkMode mode)
      : stats_(stats), worker_(worker), mode_(mode) {}

  void write(std::string_view chunk,
             std::function<void(std::optional<HttpResponse>)> next) override {
    bool first = false;
    stats_.update([&](Counts& c) {
      if (in_write_ || ended_ || chunk.empty()) ++c.bad_calls;
      in_write_ = true;
      ++c.writes;
      c.bytes += chunk.size();
      c.max_chunk = std::max(c.max_chunk, chunk.size());
      first = c.writes == 1;
    });
    size_ += chunk.size();
    hash_ = fnv(hash_, chunk);
    auto release = [self = shared_from_this(), next](std::optional<HttpResponse> stop) {
      self->stats_.update([&](Counts&) {
        self->in_write_ = false;
        if (stop) self->ended_ = true;
      });
      next(std::move(stop));
    };
    switch (mode_) {
      case SinkMode::immediate:
        return release(std::nullopt);
      case SinkMode::slow:
        return worker_.after(std::chrono::milliseconds(50), [release] { release(std::nullopt); });
      case SinkMode::gated:
        if (first) return stats_.update([&](Counts&) { stats_.held = release; });
        return release(std::nullopt);
      case SinkMode::stop:
        return release(json_error(11, beast::http::status::unsupported_media_type,
                                  "unsupported_type", "no thanks"));
    }
  }

  void finish(std::function<void(HttpResponse)> done) override {
    stats_.update([&](Counts& c) {
      if (in_write_ || ended_) ++c.bad_calls;
      ended_ = true;
      ++c.finishes;
    });
    HttpResponse res{beast::http::status::created, 11};
    res.body() = std::to_string(size_) + " " + std::to_string(hash_);
    res.prepare_payload();
    worker_.post([done, res] { done(res); });
  }

  void abort() override {
    stats_.update([&](Counts& c) {
      if (ended_) ++c.bad_calls;
      ended_ = true;
      ++c.aborts;
    });
  }

 private:
  Stats& stats_;
  Worker& worker_;
  SinkMode mode_;
  bool in_write_ = false;  // under stats_.mu
  bool ended_ = false;     // under stats_.mu
  uint64_t size_ = 0;
  uint64_t hash_ = kFnvOffset;
};

// Gives `total` pattern bytes in pieces of 100000, alternately at once and from the worker;
// fails once `fail_at` bytes are given.
class PatternSource final : public BodySource, public std::enable_shared_from_this<PatternSource> {
 public:
  PatternSource(Worker& worker, size_t total, std::optional<size_t> fail_at)
      : worker_(worker), total_(total), fail_at_(fail_at) {}

  void read(std::function<void(Result<std::string_view>)> done) override {
    auto produce = [self = shared_from_this(), done] { self->produce(done); };
    if (++reads_ % 2) return produce();
    worker_.post(produce);
  }

 private:
  void produce(const std::function<void(Result<std::string_view>)>& done) {
    if (fail_at_ && pos_ >= *fail_at_) return done(Error{Errc::unavailable, "disk on fire"});
    size_t n = std::min<size_t>(100000, total_ - pos_);
    buf_ = pattern(n, pos_);
    pos_ += n;
    done(std::string_view(buf_));
  }

  Worker& worker_;
  size_t total_;
  std::optional<size_t> fail_at_;
  size_t pos_ = 0;
  int reads_ = 0;
  std::string buf_;
};

// Plain requests: "ok <target>". /download...: a streamed response. /upload...: streamed in.
class TestHttp final : public HttpHandler {
 public:
  void handle(HttpRequest req, std::function<void(HttpReply)> done) override {
    std::string target(req.target());
    if (target.starts_with("/download")) {
      StreamedResponse r;
      r.header.result(beast::http::status::ok);
      r.header.set(beast::http::field::content_type, "application/octet-stream");
      r.header.set(beast::http::field::content_length, std::to_string(kDownloadBytes));
      if (req.method() != beast::http::verb::head)
        r.body = std::make_shared<PatternSource>(
            worker, kDownloadBytes,
            target == "/download/broken" ? std::optional<size_t>(kMiB) : std::nullopt);
      return done(std::move(r));
    }
    HttpResponse res{beast::http::status::ok, req.version()};
    res.body() = "ok " + target;
    res.prepare_payload();
    done(std::move(res));
  }

  bool streams(const HttpRequestHeader& header) const override {
    return std::string_view(header.target()).starts_with("/upload");
  }

  void open_stream(HttpRequestHeader header, std::function<void(StreamStart)> done) override {
    stats.update([](Counts& c) { ++c.opened; });
    std::string target(header.target());
    worker.post([this, target, done] {  // answered from another thread
      StreamStart start;
      if (target == "/upload/refuse") {
        start.refusal = json_error(11, beast::http::status::unauthorized, "unauthorized", "no");
        return done(std::move(start));
      }
      auto mode = target == "/upload/slow"    ? SinkMode::slow
                  : target == "/upload/gated" ? SinkMode::gated
                  : target == "/upload/stop"  ? SinkMode::stop
                                              : SinkMode::immediate;
      start.sink = std::make_shared<TestSink>(stats, worker, mode);
      start.max_bytes = target == "/upload/small" ? 64 * 1024 : 8 * kMiB;
      done(std::move(start));
    });
  }

  // Lets a gated sink go on.
  void release() {
    std::function<void(std::optional<HttpResponse>)> next;
    stats.update([&](Counts&) { next = std::move(stats.held); });
    ASSERT_TRUE(next);
    next(std::nullopt);
  }

  Stats stats;
  Worker worker;
};

class NetEchoTest : public ::testing::Test {
 protected:
  // A fixture may change the options before the server starts.
  virtual void configure(ServerOptions&) {}

  void SetUp() override {
    ServerOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    opts.max_connections = 8;
    opts.ws.max_frame_bytes = 4096;
    opts.ws.max_send_queue_bytes = 1 << 20;
    opts.ws.max_batch_bytes = 2048;
    opts.http.body_limit = 1024;
    opts.http.timeout_s = 2;
    configure(opts);
    server_ = std::make_unique<Server>(opts, http_, echo_);
    auto p = server_->listen();
    ASSERT_TRUE(p.ok());
    port_ = p.value();
    server_->start();
  }
  void TearDown() override {
    http_.worker.drain();  // its callbacks post to the server's threads: before they stop
    if (server_) server_->stop();
  }

  tcp::socket http_connect() {
    tcp::socket s(ioc_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return s;
  }

  // The header of a request whose body the test writes itself.
  static void write_header(tcp::socket& s, http::request<http::empty_body>& req) {
    http::request_serializer<http::empty_body> sr{req};
    http::write_header(s, sr);
  }

  static http::response<http::string_body> read_response(tcp::socket& s, beast::flat_buffer& buf) {
    http::response_parser<http::string_body> p;
    p.body_limit(boost::none);
    http::read(s, buf, p);
    return p.release();
  }

  // True when the server has closed the connection (after what was read).
  static bool closed_by_server(tcp::socket& s) {
    char c;
    beast::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

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
  TestHttp http_;
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

// Reads messages until `frames` lines arrived; returns the messages.
std::vector<std::string> read_lines(websocket::stream<tcp::socket>& ws, size_t frames,
                                    std::vector<std::string>& lines) {
  std::vector<std::string> messages;
  while (lines.size() < frames) {
    beast::flat_buffer buf;
    ws.read(buf);
    messages.push_back(beast::buffers_to_string(buf.data()));
    std::string_view m = messages.back();
    for (size_t start = 0;;) {
      size_t nl = m.find('\n', start);
      lines.emplace_back(m.substr(start, nl == std::string_view::npos ? nl : nl - start));
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  return messages;
}

TEST_F(NetEchoTest, BatchingGathersQueuedFramesInOrderWithinTheBound) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("batch 300")));
  std::vector<std::string> lines;
  auto messages = read_lines(*ws, 300, lines);
  ASSERT_EQ(lines.size(), 300u);
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(lines[i], fmt::format("{:05}{}", i, std::string(95, 'x')));
  EXPECT_LT(messages.size(), 300u);  // frames queued behind a write went out together
  for (const auto& m : messages) EXPECT_LE(m.size(), 2048u);  // ws.max_batch_bytes
  // Still a working connection afterwards.
  ws->write(asio::buffer(std::string("hello")));
  beast::flat_buffer buf;
  ws->read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "hello");
}

TEST_F(NetEchoTest, WithoutBatchingEveryFrameIsItsOwnMessage) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("burst 50")));
  std::vector<std::string> lines;
  auto messages = read_lines(*ws, 50, lines);
  EXPECT_EQ(messages.size(), 50u);
  EXPECT_EQ(lines.size(), 50u);
}

// The server reads a message a little at a time (net/ws_connection.cpp, read_next): the
// handler still gets each message whole, however it was framed on the wire.
TEST_F(NetEchoTest, LargeFragmentedAndBackToBackMessagesArriveWhole) {
  auto ws = connect();
  auto echo = [&] {
    beast::flat_buffer buf;
    ws->read(buf);
    return beast::buffers_to_string(buf.data());
  };
  std::string large(4000, 'L');  // past the first read, under ws.max_frame_bytes (4096)
  for (size_t i = 0; i < large.size(); i += 97) large[i] = static_cast<char>('a' + i % 26);
  ws->write(asio::buffer(large));
  EXPECT_EQ(echo(), large);
  // One message in three frames, and a multi-byte character split between two of them.
  const std::string euro = "\xe2\x82\xac";
  ws->auto_fragment(false);
  ws->write_some(false, asio::buffer(std::string(300, 'x') + euro.substr(0, 1)));
  ws->write_some(false, asio::buffer(euro.substr(1) + std::string(300, 'y')));
  ws->write_some(true, asio::buffer(std::string("end")));
  EXPECT_EQ(echo(), std::string(300, 'x') + euro + std::string(300, 'y') + "end");
  // Several messages in one TCP write: each its own frame for the handler.
  {
    std::string wire;
    for (const char* m : {"one", "two", "three"}) {
      wire += static_cast<char>(0x81);                   // FIN, text
      wire += static_cast<char>(0x80 | std::strlen(m));  // masked, length
      wire += std::string(4, '\0');                      // mask 0: payload as is
      wire += m;
    }
    asio::write(ws->next_layer(), asio::buffer(wire));
  }
  EXPECT_EQ(echo(), "one");
  EXPECT_EQ(echo(), "two");
  EXPECT_EQ(echo(), "three");
  ws->close(websocket::close_code::normal);
}

TEST_F(NetEchoTest, FragmentsAddingUpPastTheLimitClose1009) {
  auto ws = connect();
  ws->auto_fragment(false);
  for (int i = 0; i < 4; ++i) ws->write_some(false, asio::buffer(std::string(1500, 'a')));
  EXPECT_EQ(read_until_closed(*ws), 1009);
}

TEST_F(NetEchoTest, InvalidUtf8InALaterFragmentCloses1007) {
  auto ws = connect();
  ws->auto_fragment(false);
  ws->write_some(false, asio::buffer(std::string(600, 'a')));
  ws->write_some(true, asio::buffer(std::string("ok\xff")));
  EXPECT_EQ(read_until_closed(*ws), 1007);
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

// ---- Streamed bodies ----

TEST_F(NetEchoTest, StreamsAnUploadInBoundedChunks) {
  auto s = http_connect();
  std::string body = pattern(5 * kMiB + 123);
  http::request<http::string_body> req{http::verb::post, "/upload", 11};
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res.body(), digest(body));  // every byte, in order
  EXPECT_EQ(res[http::field::server], "parleyd");
  auto c = http_.stats.snap();
  EXPECT_EQ(c.opened, 1);
  EXPECT_EQ(c.finishes, 1);
  EXPECT_EQ(c.aborts, 0);
  EXPECT_EQ(c.bad_calls, 0);
  EXPECT_EQ(c.bytes, body.size());
  EXPECT_LE(c.max_chunk, HttpSession::kChunkBytes);
  EXPECT_GE(static_cast<size_t>(c.writes), body.size() / HttpSession::kChunkBytes);
}

TEST_F(NetEchoTest, StreamsAChunkedUpload) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload", 11};
  req.chunked(true);
  write_header(s, req);
  std::string body;
  const size_t sizes[] = {1, 7000, 65536, 65537, 100000, 333, 200000};
  for (int round = 0; round < 3; ++round)
    for (size_t n : sizes) {
      std::string piece = pattern(n, body.size());
      body += piece;
      asio::write(s, http::make_chunk(asio::buffer(piece)));
    }
  asio::write(s, http::make_chunk_last());
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res.body(), digest(body));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.finishes, 1);
  EXPECT_EQ(c.aborts, 0);
  EXPECT_EQ(c.bad_calls, 0);
  EXPECT_LE(c.max_chunk, HttpSession::kChunkBytes);
}

TEST_F(NetEchoTest, ContentLengthOverTheLimitIs413AtOnce) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload/small", 11};
  req.content_length(10 * kMiB);
  write_header(s, req);  // and no body: the answer must not wait for it
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::payload_too_large);
  EXPECT_NE(res.body().find("\"too_large\""), std::string::npos);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_server(s));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.aborts, 1);
  EXPECT_EQ(c.writes, 0);
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
}

TEST_F(NetEchoTest, ChunkedBodyOverTheLimitIs413) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload/small", 11};
  req.chunked(true);
  write_header(s, req);
  for (int i = 0; i < 6; ++i)  // 96 KiB, over 64
    asio::write(s, http::make_chunk(asio::buffer(pattern(16 * 1024, i * 16 * 1024))));
  asio::write(s, http::make_chunk_last());
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::payload_too_large);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_server(s));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.aborts, 1);
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
  EXPECT_LE(c.bytes, 64u * 1024);
}

TEST_F(NetEchoTest, ClientGoneMidBodyAbortsOnce) {
  {
    auto s = http_connect();
    http::request<http::empty_body> req{http::verb::post, "/upload", 11};
    req.content_length(kMiB);
    write_header(s, req);
    asio::write(s, asio::buffer(pattern(200 * 1024)));
    ASSERT_TRUE(http_.stats.wait([](const Counts& c) { return c.bytes >= 64 * 1024; }));
  }  // closed mid-body
  ASSERT_TRUE(http_.stats.wait([](const Counts& c) { return c.aborts == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.aborts, 1);
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
}

TEST_F(NetEchoTest, StalledUploadTimesOutAndAborts) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload", 11};
  req.content_length(kMiB);
  write_header(s, req);
  asio::write(s, asio::buffer(pattern(10 * 1024)));
  ASSERT_TRUE(http_.stats.wait([](const Counts& c) { return c.aborts == 1; }));
  EXPECT_TRUE(closed_by_server(s));  // no answer
  auto c = http_.stats.snap();
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
}

TEST_F(NetEchoTest, RefusalIsSentWithoutReadingTheBody) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload/refuse", 11};
  req.content_length(5 * kMiB);
  req.set(http::field::expect, "100-continue");
  write_header(s, req);
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::unauthorized);  // not 100 first
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(res[http::field::server], "parleyd");
  EXPECT_TRUE(closed_by_server(s));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.opened, 1);
  EXPECT_EQ(c.writes, 0);
  EXPECT_EQ(c.aborts, 0);
}

TEST_F(NetEchoTest, ExpectContinueGets100ThenTheAnswer) {
  auto s = http_connect();
  std::string body = pattern(300000);
  http::request<http::empty_body> req{http::verb::post, "/upload", 11};
  req.content_length(body.size());
  req.set(http::field::expect, "100-continue");
  write_header(s, req);
  beast::flat_buffer buf;
  auto interim = read_response(s, buf);
  EXPECT_EQ(interim.result(), http::status::continue_);
  asio::write(s, asio::buffer(body));
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res.body(), digest(body));
}

TEST_F(NetEchoTest, StoppingWriteAnswersAndCloses) {
  auto s = http_connect();
  std::string body = pattern(kMiB);
  http::request<http::string_body> req{http::verb::post, "/upload/stop", 11};
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);  // the server drains what it does not read before closing
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::unsupported_media_type);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_server(s));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.writes, 1);
  EXPECT_EQ(c.aborts, 0);
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
}

TEST_F(NetEchoTest, SlowSinkIsWaitedForPastTheTimeout) {
  // 48 chunks, 50 ms each: longer than the 2 s timeout, which applies per chunk read.
  auto s = http_connect();
  std::string body = pattern(3 * kMiB);
  http::request<http::string_body> req{http::verb::post, "/upload/slow", 11};
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res.body(), digest(body));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.bad_calls, 0);  // never a write() before the previous `next`
  EXPECT_EQ(c.aborts, 0);
}

TEST_F(NetEchoTest, NothingMoreIsReadUntilNext) {
  auto s = http_connect();
  std::string body = pattern(5 * kMiB);
  http::request<http::empty_body> req{http::verb::post, "/upload/gated", 11};
  req.content_length(body.size());
  write_header(s, req);
  beast::error_code write_ec;
  std::thread writer([&] { asio::write(s, asio::buffer(body), write_ec); });
  ASSERT_TRUE(http_.stats.wait([](const Counts& c) { return c.writes == 1; }));
  // Held past the 2 s timeout: the sink is not the client, the connection must stay.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto c = http_.stats.snap();
  EXPECT_EQ(c.writes, 1);
  EXPECT_EQ(c.bytes, HttpSession::kChunkBytes);
  EXPECT_EQ(c.aborts, 0);
  http_.release();
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  writer.join();
  EXPECT_FALSE(write_ec);
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res.body(), digest(body));
  EXPECT_EQ(http_.stats.snap().bad_calls, 0);
}

TEST_F(NetEchoTest, KeepAliveAfterAStreamedUpload) {
  auto s = http_connect();
  std::string body = pattern(200000);
  http::request<http::string_body> up{http::verb::post, "/upload", 11};
  up.body() = body;
  up.prepare_payload();
  http::write(s, up);
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.body(), digest(body));
  EXPECT_TRUE(res.keep_alive());
  http::request<http::string_body> get{http::verb::get, "/x", 11};
  http::write(s, get);
  EXPECT_EQ(read_response(s, buf).body(), "ok /x");
}

TEST_F(NetEchoTest, StreamsADownload) {
  auto s = http_connect();
  http::request<http::string_body> get{http::verb::get, "/download", 11};
  http::write(s, get);
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_length], std::to_string(kDownloadBytes));
  EXPECT_EQ(res[http::field::server], "parleyd");
  EXPECT_TRUE(res.body() == pattern(kDownloadBytes));
  // The connection goes on.
  http::request<http::string_body> next{http::verb::get, "/y", 11};
  http::write(s, next);
  EXPECT_EQ(read_response(s, buf).body(), "ok /y");
}

TEST_F(NetEchoTest, HeadSendsOnlyTheHeader) {
  auto s = http_connect();
  http::request<http::string_body> head{http::verb::head, "/download", 11};
  http::write(s, head);
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> p;
  p.skip(true);
  http::read(s, buf, p);
  EXPECT_EQ(p.get().result(), http::status::ok);
  EXPECT_EQ(p.get()[http::field::content_length], std::to_string(kDownloadBytes));
  // No stray body bytes: the next answer is read right.
  http::request<http::string_body> get{http::verb::get, "/x", 11};
  http::write(s, get);
  EXPECT_EQ(read_response(s, buf).body(), "ok /x");
}

TEST_F(NetEchoTest, SourceErrorCutsTheBodyShort) {
  auto s = http_connect();
  http::request<http::string_body> get{http::verb::get, "/download/broken", 11};
  http::write(s, get);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(boost::none);
  beast::error_code ec;
  http::read(s, buf, p, ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(p.get()[http::field::content_length], std::to_string(kDownloadBytes));
  EXPECT_LT(p.get().body().size(), kDownloadBytes);
}

TEST_F(NetEchoTest, StoppingTheServerMidUploadAborts) {
  auto s = http_connect();
  http::request<http::empty_body> req{http::verb::post, "/upload", 11};
  req.content_length(kMiB);
  write_header(s, req);
  asio::write(s, asio::buffer(pattern(100 * 1024)));
  ASSERT_TRUE(http_.stats.wait([](const Counts& c) { return c.writes >= 1; }));
  server_->stop();
  server_.reset();  // the sessions still open go with the I/O contexts
  auto c = http_.stats.snap();
  EXPECT_EQ(c.aborts, 1);
  EXPECT_EQ(c.finishes, 0);
  EXPECT_EQ(c.bad_calls, 0);
}

// ---- WebSocket protocol details (net/ws_connection, net/ws_frame) ----

constexpr std::string_view kUpgradeRequest =
    "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: parley.v1\r\n";

// Reads until `n` bytes are in `got` (or the connection ends).
void read_at_least(tcp::socket& s, std::string& got, size_t n) {
  beast::error_code ec;
  while (got.size() < n && !ec) {
    char buf[512];
    size_t k = s.read_some(asio::buffer(buf), ec);
    got.append(buf, k);
  }
}

TEST_F(NetEchoTest, HandshakeAnswersWithTheAcceptKey) {
  auto s = http_connect();
  asio::write(s, asio::buffer(std::string(kUpgradeRequest) + "Sec-WebSocket-Version: 13\r\n\r\n" +
                              ws::client_frame(ws::kText, "early")));  // sent before the answer
  std::string got;
  size_t end = asio::read_until(s, asio::dynamic_buffer(got), "\r\n\r\n");
  std::string head = got.substr(0, end);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 101 ")) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: parley.v1"), std::string::npos);
  got.erase(0, end);
  read_at_least(s, got, 7);
  EXPECT_EQ(got,
            "\x81\x05"
            "early");  // the frame that came with the request, echoed
}

TEST_F(NetEchoTest, HandshakeNeedsVersion13AndAValidKey) {
  {
    auto s = http_connect();
    asio::write(s, asio::buffer(std::string(kUpgradeRequest) + "Sec-WebSocket-Version: 8\r\n\r\n"));
    beast::flat_buffer buf;
    auto res = read_response(s, buf);
    EXPECT_EQ(res.result(), http::status::upgrade_required);
    EXPECT_EQ(res[http::field::sec_websocket_version], "13");
  }
  auto s = http_connect();
  std::string request(kUpgradeRequest);
  request.replace(request.find("dGhl"), 4, "*Ghl");
  asio::write(s, asio::buffer(request + "Sec-WebSocket-Version: 13\r\n\r\n"));
  beast::flat_buffer buf;
  auto res = read_response(s, buf);
  EXPECT_EQ(res.result(), http::status::bad_request);
}

TEST_F(NetEchoTest, UnmaskedFrameCloses1002) {
  auto ws = connect();
  asio::write(ws->next_layer(), asio::buffer(std::string("\x81\x02hi", 4)));
  EXPECT_EQ(read_until_closed(*ws), 1002);
}

TEST_F(NetEchoTest, PingIsAnsweredWithItsPayloadAndTheClientsCloseCodeIsEchoed) {
  auto ws = connect();
  std::vector<std::string> pongs;
  ws->control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) pongs.emplace_back(payload);
  });
  ws->ping("abc");
  ws->write(asio::buffer(std::string("after")));
  beast::flat_buffer buf;
  ws->read(buf);  // the pong comes first; the callback sees it during this read
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "after");
  EXPECT_EQ(pongs, std::vector<std::string>{"abc"});
  ws->close(websocket::close_reason(static_cast<websocket::close_code>(4321), "done"));
  EXPECT_EQ(ws->reason().code, 4321);
}

TEST_F(NetEchoTest, ManyFramesInOneWriteAreEchoedInOrder) {
  // Many small frames in one TCP write: the echoes queue up and leave in gathered writes.
  auto ws = connect();
  std::string wire;
  for (int i = 0; i < 2000; ++i) wire += ws::client_frame(ws::kText, fmt::format("m{:04}", i));
  asio::write(ws->next_layer(), asio::buffer(wire));
  for (int i = 0; i < 2000; ++i) {
    beast::flat_buffer buf;
    ws->read(buf);
    ASSERT_EQ(beast::buffers_to_string(buf.data()), fmt::format("m{:04}", i));
  }
}

TEST_F(NetEchoTest, ACloseFromAnotherThreadFollowsItsSends) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("from-elsewhere")));
  beast::flat_buffer buf;
  ws->read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "last words");
  EXPECT_EQ(read_until_closed(*ws), 4001);
}

TEST_F(NetEchoTest, AHandlerThatThrowsClosesItsConnection1011AndNoOther) {
  auto other = connect();
  auto ws = connect();
  ws->write(asio::buffer(std::string("throw")));
  EXPECT_EQ(read_until_closed(*ws), 1011);
  other->write(asio::buffer(std::string("fine")));
  beast::flat_buffer buf;
  other->read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "fine");
}

TEST_F(NetEchoTest, AnErrorIsTheCloseCodeEvenWithTheClientsCloseInTheSameRead) {
  auto ws = connect();
  asio::write(ws->next_layer(),
              asio::buffer(ws::client_frame(ws::kText, "bad \xff") +
                           ws::client_frame(ws::kClose, ws::close_payload(1000))));
  std::string got;
  read_at_least(ws->next_layer(), got, 4);
  EXPECT_EQ(got.substr(0, 4), std::string("\x88\x0f\x03\xef", 4));  // 1007 "invalid UTF-8"
  EXPECT_TRUE(closed_by_server(ws->next_layer()));
}

TEST_F(NetEchoTest, AClientThatSendsAndHangsUpIsClosedAtOnce) {
  // The frame and the end of the stream may reach the server together, as one readiness:
  // it must read on past the data to see the end, not wait for readiness that never comes.
  // (Whether one run exercises that case depends on the kernel's timing.)
  for (int i = 0; i < 20; ++i) {
    auto ws = connect();
    auto& s = ws->next_layer();
    // Corked, the frame waits in the client's kernel and leaves with the FIN in one segment.
    int on = 1;
    ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    // A frame with no answer: a write of the server's would also show the end of stream.
    asio::write(s, asio::buffer(ws::client_frame(ws::kText, "quiet")));
    s.shutdown(tcp::socket::shutdown_send);
    // A hang guard, not a timing assertion: the idle timeout (60 s) would be the other end.
    struct timeval tv = {10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    beast::error_code ec;
    while (!ec) {
      char buf[256];
      s.read_some(asio::buffer(buf), ec);
    }
    // Closed (what was queued for it is dropped: a client that hangs up without a close
    // frame resyncs), not timed out.
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  }
}

class NetEchoIdleTest : public NetEchoTest {
 protected:
  void configure(ServerOptions& opts) override { opts.ws.idle_timeout_s = 2; }
};

TEST_F(NetEchoIdleTest, AnsweredPingsKeepAQuietConnectionOpen) {
  auto ws = connect();
  int pings = 0;
  ws->control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping) ++pings;
  });
  beast::flat_buffer buf;
  bool read_done = false;
  beast::error_code read_ec;
  ws->async_read(buf, [&](beast::error_code ec, size_t) {
    read_ec = ec;
    read_done = true;
  });
  ioc_.run_for(std::chrono::milliseconds(4500));  // over twice the idle timeout, in silence
  EXPECT_FALSE(read_done) << read_ec.message();
  EXPECT_GE(pings, 2);  // one per half timeout, each answered by Beast's read
  ws->async_write(asio::buffer(std::string("still here")), [](beast::error_code, size_t) {});
  ioc_.restart();
  while (!read_done && ioc_.run_one_for(std::chrono::seconds(5)) > 0) {
  }
  ASSERT_TRUE(read_done);
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "still here");
}

TEST_F(NetEchoIdleTest, ASilentPeerIsPingedThenClosed1001) {
  auto ws = connect();
  // Read nothing for 3 s: the ping (at 1 s) and the close (at 2 s) wait in the socket.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::string got;
  read_at_least(ws->next_layer(), got, 2 + 2 + 2 + 12);
  EXPECT_EQ(got.substr(0, 2), std::string("\x89\x00", 2));  // ping, empty
  EXPECT_EQ(got.substr(2), std::string("\x88\x0e\x03\xe9"
                                       "idle timeout",
                                       16));
}

}  // namespace
}  // namespace parley::net
