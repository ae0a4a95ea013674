// parley::Client: the connection loop, request bookkeeping (ids, timeouts, resends) and auth.
#include <exception>
#include <utility>
#include <variant>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client_impl.h"
#include "parley/cursor_file.h"
#include "parley/wire.h"

namespace parley {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using namespace detail;  // Clock, milliseconds, Op, OpPtr, the k* constants

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

const char* ToString(ConnectionState state) {
  switch (state) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kOnline:
      return "online";
    case ConnectionState::kWaiting:
      return "waiting";
    case ConnectionState::kClosed:
      return "closed";
  }
  return "unknown";
}

// ---------------------------------------------------------------- lifecycle

void Client::Impl::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stop_requested_) {
      throw Error(errc::kInvalidArgument, "Client::Start() may be called only once");
    }
    started_ = true;
  }
  if (!opts_.cursor_file.empty()) {
    if (auto saved = LoadCursorFile(opts_.cursor_file)) opts_.cursor = saved;
  }
  seq_ = UpdateSequencer(opts_.cursor);
  cursor_value_ = seq_.cursor().value_or(-1);
  auto self = shared_from_this();
  net::co_spawn(ioc_, Run(), [self](std::exception_ptr) {});
  StartTick();
  thread_ = std::thread([self] {
    try {
      self->ioc_.run();
    } catch (...) {
      // Handlers do not throw; nothing sensible is left to do if one did.
    }
  });
}

void Client::Impl::Stop() {
  bool post = false;
  {
    std::lock_guard lock(mu_);
    if (!stop_requested_) {
      stop_requested_ = true;
      // After Shutdown() the I/O thread may already have run out of work: a handler posted
      // then would never run (and would keep *this alive through its `self`).
      post = started_ && !closed_;
    }
  }
  if (post) net::post(ioc_, [self = shared_from_this()] { self->DoStop(); });
  std::lock_guard join_lock(join_mu_);
  if (!thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    thread_.detach();  // called from a callback: the thread ends by itself
  } else {
    thread_.join();
  }
}

void Client::Impl::DoStop() {
  if (stopping_ || shut_down_) return;
  MaybeMarkDelivered(true);  // what was received goes out before the close frame
  stopping_ = true;
  backoff_timer_.cancel();
  if (conn_) {
    if (conn_->is_open()) {
      conn_->Close(kCloseNormal);
    } else {
      conn_->Abort();
    }
  }
  stop_timer_.expires_after(kStopGrace);
  stop_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && conn_) conn_->Abort();
  });
}

bool Client::Impl::Submit(OpPtr op) {
  std::lock_guard lock(mu_);
  if (!started_ || stop_requested_ || closed_) return false;
  net::post(ioc_, [self = shared_from_this(), op = std::move(op)]() mutable {
    self->Enqueue(std::move(op));
  });
  return true;
}

Error Client::Impl::ClosedError() const {
  std::lock_guard lock(mu_);
  if (closed_error_) return *closed_error_;
  if (!started_) return Error(errc::kStopped, "the client is not started");
  return Error(errc::kStopped, "the client is stopped");
}

net::awaitable<void> Client::Impl::Run() {
  try {
    while (!stopping_ && !fatal_) {
      co_await ConnectOnce();
      if (stopping_ || fatal_) break;
      ConnectionEvent event;
      event.state = ConnectionState::kWaiting;
      event.code = last_code_;
      event.message = last_error_;
      event.close_code = last_close_code_;
      event.retry_in = backoff_.Next();
      backoff_timer_.expires_after(event.retry_in);
      SetState(std::move(event));
      boost::system::error_code ec;
      co_await backoff_timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  } catch (const std::exception& e) {
    if (!fatal_) fatal_ = Error("internal", std::string("client loop failed: ") + e.what());
  }
  Shutdown();
}

net::awaitable<void> Client::Impl::ConnectOnce() {
  ++conn_gen_;
  detail::WsConnection::Options options;
  options.connect_timeout = opts_.connect_timeout;
  options.idle_timeout = opts_.idle_timeout;
  options.max_frame_bytes = opts_.max_frame_bytes;
  options.user_agent = opts_.user_agent;
  auto conn = std::make_shared<detail::WsConnection>(ioc_.get_executor(), std::move(options));
  conn_ = conn;
  abort_reason_.clear();
  SetState(ConnectionEvent{ConnectionState::kConnecting, {}, {}, 0, milliseconds(0), {}});

  detail::CloseInfo info;
  bool opened = false;
  try {
    co_await conn->Open(ws_url_);
    opened = true;
  } catch (const Error& e) {
    info.error = e.message();
  } catch (const std::exception& e) {
    info.error = e.what();
  }
  if (opened && stopping_) {
    conn->Abort();
  } else if (opened) {
    SendAuth();
    // The client asks for batching at auth: a message may hold several frames, one per line
    // (PROTOCOL.md §3.1); a server frame never contains a raw newline.
    info = co_await conn->ReadLoop([this](std::string_view message) {
      while (!message.empty()) {
        size_t nl = message.find('\n');
        std::string_view frame = message.substr(0, nl);
        message = nl == std::string_view::npos ? std::string_view() : message.substr(nl + 1);
        if (!frame.empty()) OnFrame(frame);
      }
    });
  }
  conn_.reset();
  OnConnectionEnded(info, opened);
}

void Client::Impl::OnConnectionEnded(const detail::CloseInfo& info, bool opened) {
  online_ = false;
  inflight_.clear();  // answers can only come on the connection that carried the request
  if (auth_op_) {
    auth_op_->done = true;
    auth_op_.reset();
  }
  sync_op_.reset();
  seq_.OnSyncAborted();
  last_close_code_ = info.close_code;
  // Internal requests belong to their connection (they are redone after the next auth); a
  // kOnce request sent on it has an unknown outcome.
  for (const OpPtr& op : ops_) {
    if (op->done) continue;
    if (op->kind == Op::Kind::kInternal) {
      op->done = true;
    } else if (op->kind == Op::Kind::kOnce && op->sent_on == conn_gen_) {
      Fail(op, Error("disconnected",
                     op->name + ": the connection closed before the answer; it may or may not "
                                "have been applied",
                     true));
    }
  }
  if (!opened) {
    last_code_ = errc::kConnectionFailed;
    last_error_ = info.error;
  } else if (!abort_reason_.empty()) {
    last_code_ = "disconnected";
    last_error_ = abort_reason_;
  } else if (info.close_code != 0) {
    last_code_ = "disconnected";
    last_error_ = "server closed the connection with code " + std::to_string(info.close_code) +
                  (info.reason.empty() ? "" : " (" + info.reason + ")");
  } else {
    last_code_ = "disconnected";
    last_error_ = "connection lost: " + info.error;
  }
  if (!fatal_ && !stopping_) {
    if (info.close_code == 4001) {
      fatal_ = Error("unauthorized", info.reason.empty()
                                         ? "authentication failed (close 4001); log in again"
                                         : info.reason);
    } else if (info.close_code == 4003) {
      fatal_ = Error("token_revoked", "the device was logged out (close 4003); log in again");
    }
  }
}

void Client::Impl::Shutdown() {
  shut_down_ = true;
  online_ = false;
  if (conn_) conn_->Abort();  // only when the loop ended by an exception
  tick_timer_.cancel();
  stop_timer_.cancel();
  backoff_timer_.cancel();
  Error error = fatal_ ? *fatal_ : Error(errc::kStopped, "the client was stopped");
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    closed_error_ = error;
  }
  std::list<OpPtr> ops;
  ops.swap(ops_);
  for (const OpPtr& op : ops) {
    if (!op->done) Fail(op, error);
  }
  inflight_.clear();
  ConnectionEvent event;
  event.state = ConnectionState::kClosed;
  if (fatal_) {
    event.code = fatal_->code();
    event.message = fatal_->message();
  }
  event.close_code = last_close_code_;
  SetState(std::move(event));
}

void Client::Impl::StartTick() {
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || shut_down_) return;
    Pump();
    StartTick();
  });
}

// ---------------------------------------------------------------- requests

void Client::Impl::Enqueue(OpPtr op) {
  if (shut_down_) {
    Fail(op, fatal_ ? *fatal_ : Error(errc::kStopped, "the client was stopped"));
    return;
  }
  ops_.push_back(op);
  if (online_) Transmit(op);
}

void Client::Impl::Transmit(const OpPtr& op) {
  if (!conn_) return;
  int64_t id = next_id_++;
  inflight_[id] = op;
  op->sent_on = conn_gen_;
  op->retry_at.reset();
  op->attempt_deadline = Clock::now() + opts_.request_timeout;
  conn_->Write(op->encode(id));
}

// Timeouts, resends after reconnect / response timeout / retryable error; runs every tick.
void Client::Impl::Pump() {
  if (shut_down_) return;
  auto now = Clock::now();
  for (auto it = ops_.begin(); it != ops_.end();) {
    OpPtr op = *it;
    if (op->done) {
      it = ops_.erase(it);
      continue;
    }
    ++it;
    if (now >= op->deadline) {
      Fail(op, TimeoutError(*op));
      continue;
    }
    if (!online_ || !op->sendable()) continue;
    if (op->sent_on != conn_gen_) {
      if (!op->retry_at || now >= *op->retry_at) Transmit(op);
    } else if (op->kind == Op::Kind::kSend && !op->retry_at && now >= op->attempt_deadline) {
      Transmit(op);  // same client_msg_id: the server answers a duplicate with the original
    }
  }
  MaybeSync();
  MaybeFetchLarge();
  MaybeMarkDelivered();
}

Error Client::Impl::TimeoutError(const Op& op) const {
  std::string text = op.name + ": no answer in time";
  if (!online_ && !last_error_.empty()) text += " (not connected: " + last_error_ + ")";
  return Error(errc::kTimeout, text, true);
}

void Client::Impl::Complete(const OpPtr& op, const json::value& result) {
  op->done = true;
  try {
    op->on_ok(result);
  } catch (const Error& e) {
    op->on_error(e);
  } catch (const std::exception& e) {
    op->on_error(Error(errc::kBadResponse, op->name + ": " + e.what()));
  }
}

void Client::Impl::Fail(const OpPtr& op, const Error& error) {
  op->done = true;
  op->on_error(error);
}

void Client::Impl::OnFrame(std::string_view text) {
  wire::ServerFrame frame = wire::DecodeServerFrame(text);
  std::visit(
      Overloaded{
          [&](wire::OkFrame& ok) {
            auto it = inflight_.find(ok.id);
            if (it == inflight_.end()) return;  // an answer to an abandoned attempt
            OpPtr op = it->second;
            inflight_.erase(it);
            if (!op->done) Complete(op, ok.result);
          },
          [&](wire::ErrorFrame& err) {
            if (!err.id) {
              ReportError(Error(err.code, "server error without request id: " + err.message,
                                err.retryable));
              return;
            }
            auto it = inflight_.find(*err.id);
            if (it == inflight_.end()) return;
            OpPtr op = it->second;
            inflight_.erase(it);
            if (op->done) return;
            // A retryable error means it was not applied: even kOnce may go again.
            if (err.retryable && (op->resendable() || op->kind == Op::Kind::kOnce) && !stopping_) {
              op->retry_at = Clock::now() +
                             (err.retry_after_ms ? milliseconds(*err.retry_after_ms) : kRetryDelay);
              op->sent_on = 0;  // Pump() resends it after retry_at, until its deadline
              return;
            }
            Fail(op, Error(err.code, err.message, err.retryable));
          },
          [&](wire::MessagePush& push) {
            if (!opts_.receive_updates) return;
            if (push.update.pts == 0) {  // a large group's message: per-chat seq
              OnLargeMessages(large_.OnMessage(*push.update.message));
              MaybeFetchLarge();
              return;
            }
            Deliver(seq_.OnPush(std::move(push.update)));
            MaybeSync();
          },
          [&](wire::ReceiptPush& push) {
            if (opts_.receive_updates) OnReceiptPush(std::move(push.update));
          },
          [&](wire::TypingPush& push) { OnTyping(push.event); },
          [&](wire::PresencePush& push) { OnPresence(push.presence); },
          [&](wire::UnknownPush&) {},
          [&](wire::MalformedFrame& bad) {
            ReportError(Error(errc::kBadResponse, "ignored a frame: " + bad.reason));
          },
      },
      frame);
}

// ---------------------------------------------------------------- auth

void Client::Impl::SendAuth() {
  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kInternal;
  op->name = "auth";
  op->deadline = Clock::now() + opts_.request_timeout;
  op->encode = [token = opts_.token](int64_t id) { return wire::EncodeAuth(id, token); };
  op->on_ok = [this](const json::value& v) { OnAuthenticated(wire::DecodeAuthResult(v)); };
  op->on_error = [this](const Error& e) { OnAuthFailed(e); };
  auth_op_ = op;
  ops_.push_back(op);
  Transmit(op);
}

void Client::Impl::OnAuthenticated(const AuthInfo& auth) {
  auth_op_.reset();
  auth_ = auth;
  online_ = true;
  backoff_.Reset();
  if (opts_.receive_updates && opts_.start_at_first_auth && !seq_.cursor() &&
      !seq_.sync_in_flight()) {
    // A device the auth created: it starts here, with nothing before it to show.
    seq_ = UpdateSequencer(auth.pts);
    SaveCursor(auth.pts);
  }
  if (opts_.receive_updates && seq_.OnAuth(auth.pts)) {
    cursor_value_ = -1;
    ReportError(Error("cursor_reset", "the local cursor is ahead of the server's pts " +
                                          std::to_string(auth.pts) +
                                          "; starting over with a snapshot"));
  }
  ConnectionEvent event;
  event.state = ConnectionState::kOnline;
  event.auth = auth;
  SetState(std::move(event));
  if (opts_.receive_updates) {
    large_.OnReconnect();  // large groups may have moved on while we were away
    RefreshChats();
  }
  Resubscribe();
  Pump();  // sends what waited for the connection, and the first sync
}

void Client::Impl::OnAuthFailed(const Error& error) {
  auth_op_.reset();
  if (!conn_) return;
  if (error.code() == "unauthorized" || error.code() == "token_expired") {
    fatal_ = error;  // the server closes with 4001 too
    conn_->Close(kCloseNormal);
    return;
  }
  abort_reason_ = "auth failed: " + std::string(error.what());
  conn_->Abort();  // retry with backoff
}

// ---------------------------------------------------------------- callbacks

void Client::Impl::SetState(ConnectionEvent event) {
  state_ = event.state;
  Notify(opts_.on_state, event);
}

void Client::Impl::ReportError(const Error& error) {
  if (!opts_.on_error) return;
  try {
    opts_.on_error(error);
  } catch (...) {
    // A failing error handler has nowhere left to report to.
  }
}

}  // namespace parley
