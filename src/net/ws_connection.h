// A WebSocket connection pinned to one I/O thread, on RFC 6455 framing of our own
// (net/ws_frame.h) rather than Beast's stream: while idle it holds no buffer and no timer.
// Reads wait for readiness and then read into the thread's buffer (WsLoop), handing whole
// messages to the handler in place; writes are gathered: a flush posted once per turn of
// the event loop serialises every queued frame into the thread's buffer and writes them
// with one system call, keeping only an unwritten tail. Timeouts (handshake, idle ping and
// close, close grace) run on the thread's timing wheel.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/container/devector.hpp>
#include <memory>
#include <string>

#include "net/transport.h"
#include "net/ws_frame.h"
#include "net/ws_loop.h"

namespace parley::net {

class ConnectionTracker;

struct WsOptions {
  uint32_t max_frame_bytes = 64 * 1024;
  uint32_t max_send_queue_bytes = 4 * 1024 * 1024;    // pushes and unwritten wire bytes
  uint32_t max_answer_queue_bytes = 8 * 1024 * 1024;  // answers not yet serialised
  uint32_t idle_timeout_s = 60;
  uint32_t handshake_timeout_s = 10;
  // With batching on, one message carries queued frames up to this many bytes (a larger
  // frame goes alone) and at most kMaxBatchFrames of them.
  uint32_t max_batch_bytes = 64 * 1024;
};

class WsConnection final : public Transport,
                           public std::enable_shared_from_this<WsConnection>,
                           private ws::FrameReader::Events,
                           private WsTimed,
                           private WsFlushable {
 public:
  // Takes the socket of an HTTP session whose upgrade request it has checked.
  WsConnection(boost::asio::ip::tcp::socket&& socket, const WsOptions& options, WsService& service,
               ConnectionTracker& tracker);
  ~WsConnection() override;

  // Sends `handshake` (the 101 answer) and starts reading; `early` holds bytes the client
  // sent after its request that the HTTP session had already read.
  void start(std::string handshake, std::string early);

  using Transport::send;
  void send(std::shared_ptr<const std::string> frame, FrameKind kind) override;
  void close(uint16_t code, std::string reason) override;
  void set_batching(bool on) override { batching_.store(on, std::memory_order_relaxed); }
  uint64_t id() const override { return id_; }
  // Drops the connection at once, without a close handshake. Only on the connection's
  // thread, or once the I/O threads have stopped.
  void abort() { finish(); }
  boost::asio::any_io_executor executor() const override;

 private:
  // Reading.
  void wait_readable();
  void read_available();
  bool on_message(std::string_view payload, bool binary) override;
  void on_ping(std::string_view payload) override;
  void on_close_frame(uint16_t code, std::string_view reason) override;
  // Writing.
  void enqueue(std::shared_ptr<const std::string> frame, FrameKind kind);
  void queue_control(ws::Opcode opcode, std::string_view payload);
  void schedule_flush();
  void flush();
  void flush_now() override;
  bool serialize(std::string& out);
  bool write_out(const char* data, size_t size, bool from_out);
  void wait_writable();
  // Closing and timeouts.
  void begin_close(uint16_t code, std::string_view reason);
  void on_due(WsClock::time_point now) override;
  void finish();
  void shut_down_if_unparseable();
  bool closing() const { return closing_; }

  boost::asio::ip::tcp::socket socket_;
  const boost::asio::io_context::executor_type executor_;  // the socket's, without the wrapper
  WsLoop& loop_;
  const WsOptions& options_;
  WsService& service_;
  ConnectionTracker& tracker_;
  const uint64_t id_;
  std::shared_ptr<WsHandler> handler_;
  ws::FrameReader reader_;
  // Frames not yet serialised. Not a std::deque: libstdc++'s allocates ~600 bytes on
  // construction; a devector allocates on first use and is freed when it drains.
  struct Queued {
    std::shared_ptr<const std::string> frame;
    FrameKind kind;
  };
  boost::container::devector<Queued> queue_;
  // Wire bytes not yet written: the handshake, control frames, the tail of a short write.
  std::string out_;
  size_t queued_bytes_ = 0;  // frames in queue_ plus out_
  size_t answer_bytes_ = 0;  // the answers among the frames in queue_
  std::string close_reason_;
  WsClock::time_point last_read_;
  WsClock::time_point deadline_;  // of the handshake, then (once closing) of the close
  uint16_t close_code_ = 0;       // what our close frame carries
  std::atomic<bool> batching_{false};
  bool open_ = false;     // the handshake is written
  bool closing_ = false;  // the server decided to close: no more frames either way
  bool flush_posted_ = false;
  bool waiting_write_ = false;
  bool ping_sent_ = false;       // since the last read
  bool close_sent_ = false;      // our close frame is serialised
  bool close_received_ = false;  // the client's close frame arrived
  bool shut_down_ = false;       // our side of the TCP connection is shut
  bool finished_ = false;
};

}  // namespace parley::net
