#include "net/ws_connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "common/post_batch.h"
#include "net/connection_tracker.h"

namespace asio = boost::asio;

namespace parley::net {
namespace {
constexpr uint16_t kCloseSlowConsumer = 4008;
constexpr auto kCloseGrace = std::chrono::seconds(5);
// Frames in one batched message: bounds a client's parse of one message.
constexpr size_t kMaxBatchFrames = 256;
constexpr char kNewline = '\n';
// Bytes serialised for one write; what is left waits for the next write of the same flush.
constexpr size_t kMaxWriteBytes = 256 * 1024;
// Reads (or writes) of one connection in a row before the thread's other connections get
// their turn: a busy peer cannot hold the thread.
constexpr int kMaxInARow = 4;
constexpr uint16_t kCloseInternalError = 1011;

std::string_view reason_for(uint16_t code) {
  switch (code) {
    case ws::kCloseProtocolError:
      return "protocol error";
    case ws::kCloseInvalidPayload:
      return "invalid UTF-8";
    case ws::kCloseTooBig:
      return "message too big";
    default:
      return "";
  }
}

bool would_block(const boost::system::error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}
}  // namespace

WsConnection::WsConnection(asio::ip::tcp::socket&& socket, const WsOptions& options,
                           WsService& service, ConnectionTracker& tracker)
    : socket_(std::move(socket)),
      executor_(*socket_.get_executor().target<asio::io_context::executor_type>()),
      loop_(WsLoop::of(socket_.get_executor())),
      options_(options),
      service_(service),
      tracker_(tracker),
      id_(tracker.next_id()),
      reader_(options.max_frame_bytes) {}

WsConnection::~WsConnection() { tracker_.closed(); }

asio::any_io_executor WsConnection::executor() const { return executor_; }

void WsConnection::start(std::string handshake, std::string early) {
  boost::system::error_code ec;
  // Reads and writes are attempted at once and return would_block rather than wait.
  socket_.non_blocking(true, ec);
  if (ec) return finish();
  const auto now = WsClock::now();
  last_read_ = now;
  deadline_ = now + std::chrono::seconds(options_.handshake_timeout_s);
  loop_.schedule(*this, deadline_);
  queued_bytes_ = handshake.size();
  out_ = std::move(handshake);
  tracker_.add_ws(id_, weak_from_this());
  handler_ = service_.on_open(shared_from_this());
  flush();
  if (finished_) return;
  if (!early.empty()) {
    if (uint16_t error = reader_.feed(early.data(), early.size(), *this); error != 0)
      begin_close(error, reason_for(error));
    if (finished_) return;
  }
  // Data that arrived before the first wait signals no new readiness (edge-triggered):
  // read first, wait afterwards.
  read_available();
}

// ---- Reading ----

void WsConnection::wait_readable() {
  socket_.async_wait(asio::socket_base::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       if (self->finished_) return;
                       if (ec) return self->finish();
                       self->read_available();
                     });
}

void WsConnection::read_available() {
  char* buffer = loop_.read_buffer();
  for (int i = 0; i < kMaxInARow; ++i) {
    boost::system::error_code ec;
    const size_t n = socket_.read_some(asio::buffer(buffer, WsLoop::kReadBufferBytes), ec);
    if (would_block(ec)) return wait_readable();
    if (ec) {
      if (ec != asio::error::eof && ec != asio::error::connection_reset)
        spdlog::debug("ws {}: read: {}", id_, ec.message());
      return finish();
    }
    last_read_ = WsClock::now();
    ping_sent_ = false;
    if (uint16_t error = reader_.feed(buffer, n, *this); error != 0) {
      begin_close(error, reason_for(error));
      shut_down_if_unparseable();
    }
    if (finished_) return;
    // Read on until would_block even after a short read: an end of stream that came with
    // the data shows only on the next read, and signals no new readiness.
  }
  // Not drained, but others wait: read on in a later turn (the data signals nothing new).
  asio::post(executor_, [self = shared_from_this()] {
    if (!self->finished_) self->read_available();
  });
}

bool WsConnection::on_message(std::string_view payload, bool binary) {
  if (closing() || !handler_) return false;
  try {
    handler_->on_frame(payload, binary);
  } catch (const std::exception& e) {
    // One connection's failure stays its own: it is closed, the thread reads on.
    spdlog::error("ws {}: handler failed: {}", id_, e.what());
    begin_close(kCloseInternalError, "internal error");
  }
  return !closing() && !finished_;
}

void WsConnection::on_ping(std::string_view payload) {
  if (!closing()) queue_control(ws::kPong, payload);
}

void WsConnection::on_close_frame(uint16_t code, std::string_view) {
  close_received_ = true;
  // Echo the client's code (RFC 6455 §5.5.1), unless its stream broke the protocol first
  // (an error in the same read, reported once feed() returns): that code goes instead.
  if (!closing()) {
    const uint16_t error = reader_.error();
    return begin_close(error != 0 ? error : code, error != 0 ? reason_for(error) : "");
  }
  // Our close frame went first: once it is written, the handshake is complete.
  if (close_sent_ && out_.empty() && !waiting_write_) finish();
}

// ---- Writing ----

void WsConnection::send(std::shared_ptr<const std::string> frame, FrameKind kind) {
  if (executor_.running_in_this_thread()) return enqueue(std::move(frame), kind);
  PostBatch::post(executor_, [self = shared_from_this(), frame = std::move(frame), kind]() mutable {
    self->enqueue(std::move(frame), kind);
  });
}

void WsConnection::close(uint16_t code, std::string reason) {
  if (executor_.running_in_this_thread()) return begin_close(code, reason);
  // The same path as send(): a close after a send from this thread never overtakes it.
  PostBatch::post(executor_, [self = shared_from_this(), code, reason = std::move(reason)] {
    self->begin_close(code, reason);
  });
}

void WsConnection::enqueue(std::shared_ptr<const std::string> frame, FrameKind kind) {
  if (closing() || finished_) return;
  const size_t size = frame->size();
  const bool over = kind == FrameKind::answer
                        ? answer_bytes_ + size > options_.max_answer_queue_bytes
                        : queued_bytes_ - answer_bytes_ + size > options_.max_send_queue_bytes;
  if (over) {
    spdlog::info("ws {}: slow consumer, {} bytes queued ({} of answers); closing", id_,
                 queued_bytes_ + size, answer_bytes_);
    // Drop every frame not yet on the wire (the client will resync from its cursor); the
    // tail of a message partly written stays, so that the close frame follows a whole one.
    for (const auto& queued : queue_) queued_bytes_ -= queued.frame->size();
    queue_ = {};
    answer_bytes_ = 0;
    return begin_close(kCloseSlowConsumer, "slow consumer");
  }
  queued_bytes_ += size;
  if (kind == FrameKind::answer) answer_bytes_ += size;
  queue_.push_back(Queued{std::move(frame), kind});
  schedule_flush();
}

void WsConnection::queue_control(ws::Opcode opcode, std::string_view payload) {
  const size_t before = out_.size();
  ws::append_frame(out_, opcode, payload);
  queued_bytes_ += out_.size() - before;
  // A peer that sends pings but never reads gets the same bound as any slow reader.
  if (queued_bytes_ - answer_bytes_ > options_.max_send_queue_bytes)
    return begin_close(kCloseSlowConsumer, "slow consumer");
  schedule_flush();
}

void WsConnection::schedule_flush() {
  if (flush_posted_ || waiting_write_ || finished_) return;
  flush_posted_ = true;
  // Once per turn of the event loop: everything queued until then goes out in one write,
  // and one task of the thread's loop flushes every connection that asked.
  loop_.request_flush(std::shared_ptr<WsFlushable>(shared_from_this(), this));
}

void WsConnection::flush_now() {
  flush_posted_ = false;
  flush();
}

void WsConnection::flush() {
  if (finished_ || waiting_write_) return;
  bool drained = false;
  for (int i = 0; i < kMaxInARow && !drained; ++i) {
    if (!out_.empty()) {
      if (!write_out(out_.data(), out_.size(), true)) return;
      continue;
    }
    std::string& buffer = loop_.write_buffer();
    if (!serialize(buffer)) {
      drained = true;
      break;
    }
    if (!write_out(buffer.data(), buffer.size(), false)) return;
  }
  if (!drained) return schedule_flush();  // more to write, in a later turn
  if (!open_) {
    open_ = true;                            // the 101 answer is out
    if (!closing()) on_due(WsClock::now());  // starts the idle checks
  }
  if (close_sent_ && close_received_) return finish();  // the close handshake is complete
  shut_down_if_unparseable();
  if (queue_.capacity() > 0) queue_ = {};  // an idle connection keeps no queue storage
}

void WsConnection::shut_down_if_unparseable() {
  if (!close_sent_ || !out_.empty() || waiting_write_ || shut_down_ || !reader_.framing_lost())
    return;
  // Our close frame is out and the client's answer cannot be parsed any more: end our side
  // now (clients wait for the server to close the TCP connection first), then read to the
  // end of the stream.
  shut_down_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_send, ignored);
}

// Writes what it can at once; keeps the rest in out_ and waits until the socket takes more.
// False if the caller must stop: a short write is waiting, or the connection failed.
bool WsConnection::write_out(const char* data, size_t size, bool from_out) {
  boost::system::error_code ec;
  size_t n = socket_.write_some(asio::buffer(data, size), ec);
  if (would_block(ec)) {
    n = 0;
    ec = {};
  }
  if (ec) {
    spdlog::debug("ws {}: write: {}", id_, ec.message());
    finish();
    return false;
  }
  if (from_out) {
    out_.erase(0, n);
    queued_bytes_ -= n;
    if (out_.empty()) out_ = std::string();  // keeps no capacity while idle
  } else if (n < size) {
    out_.assign(data + n, size - n);
    queued_bytes_ += size - n;
  }
  if (out_.empty()) return true;
  wait_writable();
  return false;
}

void WsConnection::wait_writable() {
  waiting_write_ = true;
  socket_.async_wait(asio::socket_base::wait_write,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->waiting_write_ = false;
                       if (self->finished_) return;
                       if (ec) return self->finish();
                       self->flush();
                     });
}

// Moves queued frames into `out` as wire bytes, then the close frame once they are all out.
bool WsConnection::serialize(std::string& out) {
  out.clear();
  if (close_sent_) return false;
  const bool batching = batching_.load(std::memory_order_relaxed);
  while (!queue_.empty() && out.size() < kMaxWriteBytes) {
    // With batching, frames queued together become one message, one per line.
    size_t frames = 1;
    size_t bytes = queue_.front().frame->size();
    if (batching) {
      while (frames < queue_.size() && frames < kMaxBatchFrames &&
             bytes + 1 + queue_[frames].frame->size() <= options_.max_batch_bytes) {
        bytes += 1 + queue_[frames].frame->size();
        ++frames;
      }
    }
    char header[ws::kMaxServerHeaderBytes];
    out.append(header, ws::encode_header(header, ws::kText, bytes));
    for (size_t i = 0; i < frames; ++i) {
      if (i > 0) out += kNewline;
      const Queued& q = queue_.front();
      out += *q.frame;
      queued_bytes_ -= q.frame->size();
      if (q.kind == FrameKind::answer) answer_bytes_ -= q.frame->size();
      queue_.pop_front();
    }
  }
  if (queue_.empty() && closing()) {
    ws::append_close(out, close_code_, close_reason_);
    close_sent_ = true;
    close_reason_ = std::string();
  }
  return !out.empty();
}

// ---- Closing and timeouts ----

void WsConnection::begin_close(uint16_t code, std::string_view reason) {
  if (closing() || finished_) return;
  closing_ = true;
  // 1005 (echoing a close without a code) goes as an empty close frame; other codes a peer
  // may not see on the wire (0, 1004, 1006, 1015, ...) as 1011.
  close_code_ =
      code == ws::kCloseNoStatus || ws::valid_close_code(code) ? code : kCloseInternalError;
  close_reason_ = reason;
  // A peer that stops reading, or never answers, would hold the close forever.
  deadline_ = WsClock::now() + kCloseGrace;
  loop_.schedule(*this, deadline_);
  schedule_flush();
}

void WsConnection::on_due(WsClock::time_point now) {
  if (finished_) return;
  auto self = shared_from_this();  // finish() may drop the last other reference
  if (closing() || !open_) {
    if (now >= deadline_) return finish();  // the close grace, or the handshake, ran out
    return loop_.schedule(*this, deadline_);
  }
  if (options_.idle_timeout_s == 0) return;
  // Any bytes from the client count as activity; a ping at half the timeout asks for some.
  const auto idle = std::chrono::seconds(options_.idle_timeout_s);
  const auto quiet = now - last_read_;
  if (quiet >= idle) return begin_close(ws::kCloseGoingAway, "idle timeout");
  if (quiet >= idle / 2 && !ping_sent_) {
    ping_sent_ = true;
    queue_control(ws::kPing, {});
    if (closing()) return;
  }
  loop_.schedule(*this, last_read_ + (ping_sent_ ? idle : idle / 2));
}

void WsConnection::finish() {
  if (finished_) return;
  finished_ = true;
  loop_.cancel(*this);
  tracker_.remove_ws(id_);
  queue_ = {};
  out_ = std::string();
  queued_bytes_ = 0;
  answer_bytes_ = 0;
  boost::system::error_code ignored;
  socket_.close(ignored);  // pending waits complete with operation_aborted
  // Last, and from a local: the handler -> transport cycle is broken even if it throws.
  if (auto handler = std::move(handler_)) {
    try {
      handler->on_close();
    } catch (const std::exception& e) {
      spdlog::error("ws {}: handler failed on close: {}", id_, e.what());
    }
  }
}

}  // namespace parley::net
