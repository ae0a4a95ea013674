#include "support/http_receiver.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <stdexcept>

namespace parley::test {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
}  // namespace

HttpReceiver::HttpReceiver() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("HttpReceiver: cannot listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpReceiver::~HttpReceiver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  thread_.join();
  ::close(listen_fd_);
}

std::string HttpReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpReceiver::script(std::vector<unsigned> statuses) {
  std::lock_guard lock(mu_);
  script_.assign(statuses.begin(), statuses.end());
}

void HttpReceiver::set_default_status(unsigned status) {
  std::lock_guard lock(mu_);
  default_status_ = status;
}

std::vector<ReceivedRequest> HttpReceiver::wait_for(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
  return received_;
}

std::vector<ReceivedRequest> HttpReceiver::received() {
  std::lock_guard lock(mu_);
  return received_;
}

// One connection at a time, one request per connection (Connection: close): enough for tests.
void HttpReceiver::serve() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    boost::asio::io_context ioc;
    tcp::socket socket(ioc);
    socket.assign(tcp::v4(), fd);
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) continue;
    ReceivedRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
    r.body = req.body();
    unsigned status;
    {
      std::lock_guard lock(mu_);
      received_.push_back(std::move(r));
      if (!script_.empty()) {
        status = script_.front();
        script_.pop_front();
      } else {
        status = default_status_;
      }
    }
    cv_.notify_all();
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.body() = "{}";
    res.keep_alive(false);
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }
}

}  // namespace parley::test
