// A raw WebSocket test client for the parley.v1 protocol (Beast, single-threaded).
//
// All I/O runs on the caller's thread: a read is always outstanding on a private io_context,
// and every blocking call runs that context until its condition holds or its deadline passes.
// Frames that arrive meanwhile are queued in arrival order (the "inbox"), so a test can wait
// for one response and inspect the pushes that came before it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::test {

using namespace std::chrono_literals;

inline constexpr auto kDefaultTimeout = std::chrono::milliseconds(10'000);

struct WsOptions {
  // Offered in Sec-WebSocket-Protocol; nullopt offers none.
  std::optional<std::string> subprotocol = std::string("parley.v1");
  std::string target = "/v1/ws";
  std::chrono::milliseconds timeout = kDefaultTimeout;
};

// Outcome of a handshake that may be refused.
struct HandshakeResult {
  bool upgraded = false;
  unsigned status = 0;      // HTTP status of the handshake response (101 when upgraded)
  std::string body;         // body of a refusal
  std::string subprotocol;  // Sec-WebSocket-Protocol of the response
  std::string error;        // Beast error text if not upgraded
};

class WsClient {
 public:
  using Frame = boost::json::object;
  using Clock = std::chrono::steady_clock;

  // Connects and completes the WebSocket handshake; throws std::runtime_error on failure.
  explicit WsClient(std::uint16_t port, WsOptions options = {});
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Attempts a handshake and reports the response without throwing.
  static HandshakeResult try_handshake(std::uint16_t port, WsOptions options = {});

  const std::string& negotiated_subprotocol() const { return subprotocol_; }

  // Sends one text frame holding exactly these bytes (no validation: tests send broken JSON
  // and invalid UTF-8 on purpose). Returns the write error, if any.
  boost::beast::error_code send_text(std::string_view bytes,
                                     std::chrono::milliseconds timeout = kDefaultTimeout);
  boost::beast::error_code send_binary(std::string_view bytes,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);

  // Writes these bytes to the socket as they are, outside the WebSocket framing (tests
  // that forge frame headers).
  boost::beast::error_code send_raw(std::string_view bytes,
                                    std::chrono::milliseconds timeout = kDefaultTimeout);

  // Sends a request, giving it the next free `id` unless it has one; returns the id.
  // Throws if the write fails.
  std::int64_t send_request(Frame request);
  // Waits for the response (type ok/error) with this id and removes it from the inbox.
  std::optional<Frame> wait_response(std::int64_t id,
                                     std::chrono::milliseconds timeout = kDefaultTimeout);
  // send_request + wait_response; throws std::runtime_error if no response arrives.
  Frame request(Frame request, std::chrono::milliseconds timeout = kDefaultTimeout);
  // request({"type":"auth","token":token}); with `batch`, asks for batched messages
  // (several frames per message, one per line: PROTOCOL.md §3.1).
  Frame auth(const std::string& token, bool batch = false);
  // WebSocket messages received so far (with batching, fewer than frames).
  size_t messages() const { return messages_; }

  // Removes and returns the first frame without an `id` field (a push).
  std::optional<Frame> next_push(std::chrono::milliseconds timeout = kDefaultTimeout);
  // Removes and returns the first frame of any kind.
  std::optional<Frame> next_frame(std::chrono::milliseconds timeout = kDefaultTimeout);
  // Removes and returns the first frame for which `pred` holds.
  std::optional<Frame> wait_for(const std::function<bool(const Frame&)>& pred,
                                std::chrono::milliseconds timeout = kDefaultTimeout);

  // Processes whatever input is ready, without blocking.
  void poll();
  // Frames received and not yet taken (after poll()).
  const std::deque<Frame>& inbox() const { return inbox_; }
  // Removes and returns all queued frames (after poll()).
  std::vector<Frame> take_all();
  // Every frame received so far, in arrival order (taken or not), for order checks.
  const std::vector<Frame>& received() const { return received_; }

  // Waits until the server closes the connection. Returns the close code it sent (1005 if
  // its close frame had none, 1006 if the TCP connection ended without a close frame), or
  // nullopt if it is still open at the deadline. Frames before the close stay in the inbox.
  std::optional<std::uint16_t> wait_close(std::chrono::milliseconds timeout = kDefaultTimeout);
  bool closed() const { return closed_; }
  std::optional<std::uint16_t> close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  // Why the read loop ended (websocket::error::closed after a clean close handshake).
  boost::beast::error_code read_error() const { return read_error_; }

  // Client-initiated close handshake (best effort, bounded by `timeout`).
  void close(std::uint16_t code = 1000, std::chrono::milliseconds timeout = 2s);

 private:
  using Stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

  bool run_until(const std::function<bool()>& done, Clock::time_point deadline);
  boost::beast::error_code write(std::string_view bytes, bool text,
                                 std::chrono::milliseconds timeout);
  void start_read();
  void on_read(boost::beast::error_code ec);
  std::optional<Frame> take_first(const std::function<bool(const Frame&)>& pred);

  boost::asio::io_context ioc_;  // declared first: destroyed after the stream
  Stream ws_;
  boost::beast::flat_buffer read_buffer_;
  std::deque<Frame> inbox_;
  std::vector<Frame> received_;
  std::string subprotocol_;
  std::int64_t next_id_ = 1;
  bool reading_ = false;
  bool closed_ = false;
  bool batching_ = false;
  size_t messages_ = 0;
  std::optional<std::uint16_t> close_code_;
  std::string close_reason_;
  boost::beast::error_code read_error_;
};

// Frame helpers.
bool is_response(const WsClient::Frame& f);
bool is_push(const WsClient::Frame& f);
bool is_ok(const WsClient::Frame& f);
// `code` of an error frame, "" otherwise.
std::string error_code_of(const WsClient::Frame& f);

}  // namespace parley::test
