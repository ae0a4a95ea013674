#include "support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "support/child_process.h"
#include "support/programs.h"

namespace parley::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

}  // namespace

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

RedisServer::RedisServer() {
  if (find_in_path("redis-server").empty())
    throw std::runtime_error("redis-server not found: install redis-server (tools/deps.sh --test)");
  char tmpl[] = "/tmp/parley-redis-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  for (int attempt = 0;; ++attempt) {
    port_ = free_loopback_port();
    try {
      launch();
      return;
    } catch (const std::exception&) {
      // Another process took the port between our probe and redis' bind: try another.
      if (attempt >= 3) {
        fs::remove_all(dir_);
        throw;
      }
    }
  }
}

RedisServer::~RedisServer() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void RedisServer::launch() {
  child_ = std::make_unique<ChildProcess>(ChildProcess::Options{
      .argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir",
               dir_.string(), "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--protected-mode", "no", "--loglevel", "warning"},
      .out = ChildProcess::Output::file(dir_ / "redis.log", true),
      .err = ChildProcess::Output::file(dir_ / "redis.log", true),
      .kill_grace = 10s});
  // Ready once it answers PING on its port.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && child_->running()) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    bool ready = false;
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      static constexpr char kPing[] = "PING\r\n";
      char buf[16] = {};
      if (::write(fd, kPing, sizeof kPing - 1) == sizeof kPing - 1 &&
          ::read(fd, buf, sizeof buf - 1) > 0)
        ready = std::string_view(buf).starts_with("+PONG");
    }
    if (fd >= 0) ::close(fd);
    if (ready) return;
    std::this_thread::sleep_for(20ms);
  }
  const std::string why = log();
  child_->kill();
  child_.reset();
  throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ": " +
                           why);
}

void RedisServer::stop() {
  if (!child_) return;
  child_->terminate();  // SIGTERM; SIGKILL after the grace
  child_.reset();
}

void RedisServer::kill() {
  if (!child_) return;
  child_->kill();
  child_.reset();
}

void RedisServer::start() {
  if (child_ && child_->running()) return;
  child_.reset();
  launch();
}

bool RedisServer::running() { return child_ && child_->running(); }

std::string RedisServer::log() const {
  std::ifstream in(dir_ / "redis.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace parley::test
