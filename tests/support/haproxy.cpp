#include "support/haproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.h"
#include "support/http_client.h"
#include "support/programs.h"
#include "support/redis_server.h"

#ifndef PARLEY_HAPROXY_TEMPLATE
#error "PARLEY_HAPROXY_TEMPLATE (tools/haproxy.cfg.in) is set by tests/support/CMakeLists.txt"
#endif

namespace parley::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  if (at == std::string::npos)
    throw std::runtime_error("tools/haproxy.cfg.in no longer contains `" + from +
                             "`: update tests/support/haproxy.cpp");
  text.replace(at, from.size(), to);
}

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  return out;
}

}  // namespace

std::string haproxy_config(std::uint16_t port, std::uint16_t stats_port,
                           const std::vector<std::uint16_t>& backend_ports,
                           const HaproxyOptions& options) {
  std::ifstream in(PARLEY_HAPROXY_TEMPLATE);
  if (!in) throw std::runtime_error(std::string("cannot read ") + PARLEY_HAPROXY_TEMPLATE);
  std::stringstream s;
  s << in.rdbuf();
  std::string cfg = s.str();
  std::string servers;
  for (size_t i = 0; i < backend_ports.size(); ++i)
    servers += (i ? "\n" : "") + std::string("    server ") + HaproxyServer::server_name(i) +
               " 127.0.0.1:" + std::to_string(backend_ports[i]);
  replace_once(cfg, "@BIND@", "127.0.0.1:" + std::to_string(port));
  replace_once(cfg, "@STATS_BIND@", "127.0.0.1:" + std::to_string(stats_port));
  replace_once(cfg, "@SERVERS@", servers);
  replace_once(cfg, "balance leastconn", "balance " + options.balance);
  replace_once(cfg, "default-server check inter 1s fall 2 rise 2",
               "default-server check inter " + std::to_string(options.check_inter_ms) + "ms fall " +
                   std::to_string(options.fall) + " rise " + std::to_string(options.rise));
  return cfg;
}

HaproxyServer::HaproxyServer(std::vector<std::uint16_t> backend_ports, HaproxyOptions options)
    : backends_(std::move(backend_ports)), options_(std::move(options)) {
  if (find_in_path("haproxy").empty())
    throw std::runtime_error("haproxy not found: install haproxy (tools/deps.sh --test)");
  char tmpl[] = "/tmp/parley-haproxy-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  config_ = dir_ / "haproxy.cfg";
  for (int attempt = 0;; ++attempt) {
    port_ = static_cast<std::uint16_t>(free_loopback_port());
    stats_port_ = static_cast<std::uint16_t>(free_loopback_port());
    try {
      launch();
      return;
    } catch (const std::exception&) {
      // Another process took a port between our probe and haproxy's bind: try others.
      if (attempt >= 3) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        throw;
      }
    }
  }
}

HaproxyServer::~HaproxyServer() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void HaproxyServer::launch() {
  {
    std::ofstream out(config_, std::ios::trunc);
    out << haproxy_config(port_, stats_port_, backends_, options_);
    if (!out) throw std::runtime_error("cannot write " + config_.string());
  }
  child_ = std::make_unique<ChildProcess>(
      ChildProcess::Options{.argv = {"haproxy", "-f", config_.string(), "-db"},
                            .out = ChildProcess::Output::file(dir_ / "haproxy.log", true),
                            .err = ChildProcess::Output::file(dir_ / "haproxy.log", true),
                            .kill_grace = 10s});
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_->running()) break;
    if (accepts_connections(port_) && accepts_connections(stats_port_)) return;
    std::this_thread::sleep_for(20ms);
  }
  const std::string why = log();
  child_->kill();
  child_.reset();
  throw std::runtime_error("haproxy did not start on port " + std::to_string(port_) + ": " + why);
}

std::map<std::string, std::string> HaproxyServer::server_status() {
  std::map<std::string, std::string> out;
  HttpRequestOptions request;
  request.target = "/;csv";
  request.timeout = 2s;
  const auto r = http_request(stats_port_, request);
  if (r.status != 200) return out;
  // "# pxname,svname,qcur,...": status is the 18th field.
  std::istringstream lines(r.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto fields = split(line, ',');
    if (fields.size() > 17 && fields[0] == "parleyd" && fields[1] != "BACKEND")
      out[fields[1]] = fields[17];
  }
  return out;
}

bool HaproxyServer::wait_for_status(size_t backend, const std::string& status,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string name = server_name(backend);
  while (true) {
    const auto all = server_status();
    const auto it = all.find(name);
    if (it != all.end() && it->second == status) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

void HaproxyServer::stop() {
  if (!child_) return;
  child_->terminate();
  child_.reset();
}

void HaproxyServer::kill() {
  if (!child_) return;
  child_->kill();
  child_.reset();
}

bool HaproxyServer::running() { return child_ && child_->running(); }

std::string HaproxyServer::log() const {
  std::ifstream in(dir_ / "haproxy.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace parley::test
