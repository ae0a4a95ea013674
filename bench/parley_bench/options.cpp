#include "options.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace parley::bench {

void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("--url", o.urls,
                 "server, ws://HOST:PORT (loopback only); several (repeat it, or a comma list): "
                 "connections are spread over them")
      ->required()
      ->delimiter(',');
  app.add_flag("--json", o.json, "print one JSON object with the results on the last line");
  app.add_option("--threads", o.threads, "client threads, one io_context each (0: cores/2)");
  app.add_option("--jwt-secret", o.jwt_secret,
                 "the server's auth.jwt_hs256_secret (or env PARLEY_BENCH_JWT_SECRET)");
  app.add_option("--jwt-ttl", o.jwt_ttl_s, "lifetime of minted tokens, seconds");
  app.add_option("--user-prefix", o.user_prefix,
                 "prefix of generated user ids (default: unique per run)");
  app.add_option("--source-addrs", o.source_addrs,
                 "spread connections over 127.0.0.1 .. 127.0.0.N (more are used when one "
                 "runs out of ports)")
      ->check(CLI::Range(1, 254));
  app.add_option("--connect-concurrency", o.connect_concurrency,
                 "connections being opened at once");
  app.add_option("--connect-timeout", o.connect_timeout_s, "seconds for connect + upgrade + auth");
  app.add_option("--timeout", o.timeout_s, "hard bound on the whole run, seconds (0: auto)");
  app.add_flag("--no-progress", o.no_progress, "no live progress line on a terminal");
}

namespace {

bool is_loopback(const boost::asio::ip::address& a) {
  if (a.is_v4()) return (a.to_v4().to_uint() >> 24) == 127;
  return a.is_v6() && a.to_v6().is_loopback();
}

}  // namespace

std::string parse_target(const std::string& text, Target& t) {
  auto url = boost::urls::parse_uri(text);
  if (!url) return fmt::format("--url {}: not a URL ({})", text, url.error().message());
  if (url->scheme() != "ws") return "--url: only ws:// is supported";
  std::string host = url->host();
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return fmt::format("--url: host {} is not an IP address or localhost", url->host());
  if (!is_loopback(addr))
    return fmt::format(
        "--url: {} is not a loopback address; parley-bench only loads 127.0.0.0/8, "
        "::1 or localhost",
        url->host());
  if (!url->has_port() || url->port_number() == 0) return "--url: a port is required";
  t.address = addr;
  t.port = url->port_number();
  t.host = std::string(url->encoded_host_and_port());
  if (!url->encoded_path().empty() && url->encoded_path() != "/")
    t.path = std::string(url->encoded_path());
  return {};
}

std::string validate(CommonOptions& o) {
  if (o.urls.empty()) return "--url is required";
  if (o.urls.size() > kMaxNodes) return fmt::format("--url: at most {} URLs", kMaxNodes);
  o.targets.clear();
  for (const auto& u : o.urls) {
    Target t;
    if (auto err = parse_target(u, t); !err.empty()) return err;
    if (!o.targets.empty() && t.address.is_v6() != o.targets.front().address.is_v6())
      return "--url: every URL must be IPv4 or every URL IPv6 (one source address pool)";
    o.targets.push_back(std::move(t));
  }
  o.target = o.targets.front();
  if (o.jwt_secret.empty()) {
    if (const char* env = std::getenv("PARLEY_BENCH_JWT_SECRET")) o.jwt_secret = env;
  }
  if (o.jwt_secret.empty()) return "--jwt-secret is required (the server's auth.jwt_hs256_secret)";
  if (o.threads == 0) o.threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  if (o.user_prefix.empty()) {
    auto t = std::chrono::system_clock::now().time_since_epoch().count();
    o.user_prefix = fmt::format("pb{:x}{:x}", static_cast<unsigned>(getpid()) & 0xfff,
                                static_cast<uint64_t>(t / 1000000) & 0xffffff);
  }
  if (o.user_prefix.size() > 20) return "--user-prefix: at most 20 characters";
  if (o.connect_concurrency == 0) o.connect_concurrency = 1;
  return {};
}

}  // namespace parley::bench
