#include "net/ws_connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket/error.hpp>

#include "common/post_batch.h"
#include "net/connection_tracker.h"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;

namespace parley::net {
namespace {
constexpr uint16_t kCloseSlowConsumer = 4008;
constexpr auto kCloseGrace = std::chrono::seconds(5);
// Frames in one batched message: bounds the gather list (and a client's parse of one message).
constexpr size_t kMaxBatchFrames = 256;
constexpr char kNewline = '\n';
// What the first read of a message asks for (see read_next).
constexpr size_t kFirstReadBytes = 256;
}  // namespace

WsConnection::WsConnection(asio::ip::tcp::socket&& socket, const WsOptions& options,
                           WsService& service, ConnectionTracker& tracker)
    : ws_(std::move(socket)),
      executor_(ws_.get_executor()),
      options_(options),
      service_(service),
      tracker_(tracker),
      id_(tracker.next_id()) {}

WsConnection::~WsConnection() { tracker_.closed(); }

void WsConnection::start(HttpRequest request) {
  websocket::stream_base::timeout timeouts{std::chrono::seconds(options_.handshake_timeout_s),
                                           std::chrono::seconds(options_.idle_timeout_s), true};
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(beast::http::field::server, "parleyd");
    res.set(beast::http::field::sec_websocket_protocol, "parley.v1");
  }));
  ws_.read_message_max(options_.max_frame_bytes);
  ws_.auto_fragment(false);
  ws_.async_accept(request,
                   beast::bind_front_handler(&WsConnection::on_accept, shared_from_this()));
}

void WsConnection::on_accept(beast::error_code ec) {
  if (ec) return finish();
  tracker_.add_ws(id_, weak_from_this());
  handler_ = service_.on_open(shared_from_this());
  read_next();
}

void WsConnection::read_next() {
  // Beast prepares the buffer before it waits for data: an idle connection holds what the
  // first read asks for. Asking for a little (most requests fit) and then for the rest
  // keeps that small; the message size limit and UTF-8 checks apply to the whole message.
  const size_t limit = buffer_.size() == 0 ? kFirstReadBytes : 0;  // 0: Beast's own hint
  ws_.async_read_some(buffer_, limit,
                      beast::bind_front_handler(&WsConnection::on_read, shared_from_this()));
}

void WsConnection::on_read(beast::error_code ec, size_t bytes) {
  if (ec) {
    // Beast has already sent the close frame for protocol errors (1007 invalid UTF-8,
    // 1009 too big) and answered a client's close.
    if (ec != websocket::error::closed && ec != asio::error::operation_aborted &&
        ec != asio::error::eof)
      spdlog::debug("ws {}: read: {}", id_, ec.message());
    return finish();
  }
  if (!ws_.is_message_done()) return read_next();  // the rest of this message
  bytes = buffer_.size();
  if (handler_ && !closing_) {
    auto data = buffer_.cdata();
    handler_->on_frame(std::string_view(static_cast<const char*>(data.data()), bytes),
                       !ws_.got_text());
  }
  buffer_.consume(bytes);
  // An idle connection keeps no read buffer: most connections are idle most of the time,
  // and a small allocation per frame costs less than a buffer held by every connection.
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  if (!finished_) read_next();
}

void WsConnection::send(std::shared_ptr<const std::string> frame) {
  auto* ioc_exec = executor_.target<asio::io_context::executor_type>();
  if (ioc_exec && ioc_exec->running_in_this_thread()) return enqueue(std::move(frame));
  PostBatch::post(executor_, [self = shared_from_this(), frame = std::move(frame)]() mutable {
    self->enqueue(std::move(frame));
  });
}

void WsConnection::close(uint16_t code, std::string reason) {
  asio::dispatch(executor_,
                 [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
                   self->begin_close(code, std::move(reason));
                 });
}

void WsConnection::enqueue(std::shared_ptr<const std::string> frame) {
  if (closing_ || finished_) return;
  queued_bytes_ += frame->size();
  if (queued_bytes_ > options_.max_send_queue_bytes) {
    spdlog::info("ws {}: slow consumer, {} bytes queued; closing", id_, queued_bytes_);
    // Drop everything not yet on the wire; the client will resync from its cursor.
    while (queue_.size() > (writing_ ? in_flight_ : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    return begin_close(kCloseSlowConsumer, "slow consumer");
  }
  queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void WsConnection::begin_close(uint16_t code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  pending_close_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  // A peer that stops reading would hold the close forever: cut the socket after a grace.
  kill_timer_ = std::make_unique<asio::steady_timer>(executor_, kCloseGrace);
  kill_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->ws_.next_layer().close(ec);
  });
  if (!writing_) write_next();
}

void WsConnection::write_next() {
  if (finished_) return;
  if (queue_.empty()) {
    if (pending_close_) {
      writing_ = true;
      auto reason = *pending_close_;
      pending_close_.reset();
      ws_.async_close(reason,
                      [self = shared_from_this()](beast::error_code) { self->writing_ = false; });
    }
    return;
  }
  writing_ = true;
  // Under load many frames wait here (acks of one group commit, pushes of a burst): one
  // message, one write and one system call for all of them, instead of one each.
  size_t bytes = queue_.front()->size();
  in_flight_ = 1;
  if (batching_.load(std::memory_order_relaxed)) {
    while (in_flight_ < queue_.size() && in_flight_ < kMaxBatchFrames &&
           bytes + 1 + queue_[in_flight_]->size() <= options_.max_batch_bytes) {
      bytes += 1 + queue_[in_flight_]->size();
      ++in_flight_;
    }
  }
  if (in_flight_ == 1)
    return ws_.async_write(asio::buffer(*queue_.front()),
                           beast::bind_front_handler(&WsConnection::on_write, shared_from_this()));
  // One contiguous copy: a gather list would be split into writes of 64 buffers each by
  // Asio, and copying a few KiB costs less than a system call.
  batch_.clear();
  batch_.reserve(bytes);
  for (size_t i = 0; i < in_flight_; ++i) {
    if (i) batch_ += kNewline;
    batch_ += *queue_[i];
  }
  ws_.async_write(asio::buffer(batch_),
                  beast::bind_front_handler(&WsConnection::on_write, shared_from_this()));
}

void WsConnection::on_write(beast::error_code ec, size_t) {
  writing_ = false;
  if (finished_) return;
  for (; in_flight_ > 0; --in_flight_) {
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
  }
  // An idle connection keeps no batch buffer and no queue storage (per-connection memory).
  if (queue_.empty()) {
    if (batch_.capacity() > 0) batch_ = std::string();
    if (queue_.capacity() > 0) queue_ = {};
  }
  if (ec) return finish();
  write_next();
}

void WsConnection::finish() {
  if (finished_) return;
  finished_ = true;
  if (kill_timer_) kill_timer_->cancel();
  tracker_.remove_ws(id_);
  if (handler_) {
    handler_->on_close();
    handler_.reset();  // breaks the handler -> transport cycle
  }
  queue_.clear();
  queued_bytes_ = 0;
  in_flight_ = 0;
  beast::error_code ignored;
  ws_.next_layer().close(ignored);
}

}  // namespace parley::net
