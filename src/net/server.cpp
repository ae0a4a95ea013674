#include "net/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace parley::net {

Server::Server(ServerOptions options, HttpHandler& http, WsService& ws)
    : options_(std::move(options)),
      http_(http),
      ws_(ws),
      tracker_(options_.max_connections),
      acceptor_([this]() -> asio::io_context& {
        for (uint32_t i = 0; i < std::max(1u, options_.threads); ++i)
          contexts_.push_back(std::make_unique<asio::io_context>(1));
        return *contexts_[0];
      }()) {
  for (auto& ctx : contexts_) guards_.push_back(asio::make_work_guard(*ctx));
}

Server::~Server() { stop(); }

Result<uint16_t> Server::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options_.host, ec);
  if (ec)
    return Error{Errc::bad_request,
                 fmt::format("bad listen address {}: {}", options_.host, ec.message())};
  tcp::endpoint ep(addr, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Error{Errc::unavailable, fmt::format("cannot listen on {}:{}: {}", options_.host,
                                                options_.port, ec.message())};
  return acceptor_.local_endpoint().port();
}

void Server::start() {
  accept_next();
  for (auto& ctx : contexts_)
    threads_.emplace_back([c = ctx.get()] {
      for (;;) {
        try {
          c->run();
          return;
        } catch (const std::exception& e) {
          // A handler threw: log it and keep the thread serving the other connections.
          spdlog::error("io thread: unhandled exception: {}", e.what());
        }
      }
    });
}

asio::io_context& Server::next_context() {
  auto& ctx = *contexts_[next_];
  next_ = (next_ + 1) % contexts_.size();
  return ctx;
}

void Server::accept_next() {
  acceptor_.async_accept(next_context(), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: log, and keep accepting rather than die.
      spdlog::warn("accept: {}", ec.message());
    } else if (!tracker_.try_open()) {
      spdlog::warn("accept: connection limit {} reached, refusing", options_.max_connections);
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(std::move(socket), options_.http, options_.ws, http_, ws_,
                                    tracker_)
          ->run();
    }
    accept_next();
  });
}

void Server::stop_accepting() {
  asio::post(*contexts_[0], [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

void Server::close_connections(uint16_t code, const std::string& reason,
                               std::chrono::milliseconds grace) {
  tracker_.close_all_ws(code, reason);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (tracker_.ws_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Server::stop() {
  if (threads_.empty()) return;
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  tracker_.abort_all_ws();
}

}  // namespace parley::net
