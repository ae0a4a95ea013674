#include "parley/http_api.h"

#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "parley/error.h"
#include "parley/url.h"
#include "parley/wire.h"

namespace parley {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr size_t kMaxResponseBody = 1 << 20;

struct Reply {
  unsigned status = 0;
  std::string body;
};

struct Call {
  Url url;
  http::verb verb = http::verb::get;
  std::string body;    // JSON; empty for none
  std::string bearer;  // token; empty for none
  std::string user_agent;
};

[[noreturn]] void ConnectionFailed(const Url& url, std::string_view step,
                                   const beast::error_code& ec) {
  throw Error(errc::kConnectionFailed,
              std::string(step) + " " + url.HostPort() + ": " + ec.message(), true);
}

net::awaitable<Reply> Exchange(Call call) {
  auto ex = co_await net::this_coro::executor;
  beast::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(call.url.host, std::to_string(call.url.port),
                                                   net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "resolve", ec);
  beast::tcp_stream stream(ex);
  co_await stream.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "connect to", ec);

  http::request<http::string_body> req{call.verb, call.url.path, 11};
  req.set(http::field::host, call.url.HostPort());
  req.set(http::field::user_agent, call.user_agent);
  req.set(http::field::accept, "application/json");
  if (!call.bearer.empty()) req.set(http::field::authorization, "Bearer " + call.bearer);
  if (!call.body.empty() || call.verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(call.body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  co_await http::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "write to", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "read from", ec);
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  auto res = parser.release();
  co_return Reply{res.result_int(), std::move(res.body())};
}

// Runs one exchange on a private io_context, bounded by options.timeout.
Reply Run(Call call, const HttpOptions& options) {
  net::io_context ioc;
  std::optional<Reply> reply;
  std::exception_ptr error;
  std::string where = call.url.HostPort();
  net::co_spawn(ioc, Exchange(std::move(call)), [&](std::exception_ptr e, Reply r) {
    if (e) {
      error = e;
    } else {
      reply = std::move(r);
    }
  });
  ioc.run_for(options.timeout);
  if (error) std::rethrow_exception(error);
  if (!reply) {
    throw Error(
        errc::kTimeout,
        "no answer from " + where + " within " + std::to_string(options.timeout.count()) + " ms",
        true);
  }
  return std::move(*reply);
}

[[noreturn]] void ThrowHttpError(const Reply& reply) {
  bool retryable = reply.status >= 500 || reply.status == 429;
  if (auto e = wire::DecodeHttpError(reply.body)) {
    throw Error(std::move(e->first), std::move(e->second), retryable,
                static_cast<int>(reply.status));
  }
  std::string snippet = reply.body.substr(0, 200);
  throw Error("http_" + std::to_string(reply.status),
              "HTTP " + std::to_string(reply.status) + (snippet.empty() ? "" : ": " + snippet),
              retryable, static_cast<int>(reply.status));
}

json::value ParseBody(const Reply& reply) {
  json::error_code ec;
  json::value v = json::parse(reply.body, ec);
  if (ec) throw Error(errc::kBadResponse, "response body is not JSON: " + ec.message());
  return v;
}

Reply Post(std::string_view server_url, std::string_view endpoint, const json::object& body,
           std::string_view bearer, const HttpOptions& options) {
  Call call;
  call.url = HttpUrl(ParseUrl(server_url), endpoint);
  call.verb = http::verb::post;
  call.body = body.empty() ? std::string() : json::serialize(body);
  call.bearer = std::string(bearer);
  call.user_agent = options.user_agent;
  Reply reply = Run(std::move(call), options);
  if (reply.status < 200 || reply.status > 299) ThrowHttpError(reply);
  return reply;
}

}  // namespace

std::string Register(std::string_view server_url, std::string_view username,
                     std::string_view password, const HttpOptions& options) {
  json::object body;
  body["username"] = username;
  body["password"] = password;
  return wire::DecodeRegisterResult(ParseBody(Post(server_url, "/v1/register", body, {}, options)));
}

LoginResult Login(std::string_view server_url, std::string_view username, std::string_view password,
                  std::string_view device_name, const HttpOptions& options) {
  json::object body;
  body["username"] = username;
  body["password"] = password;
  if (!device_name.empty()) body["device_name"] = device_name;
  return wire::DecodeLoginResult(ParseBody(Post(server_url, "/v1/login", body, {}, options)));
}

void Logout(std::string_view server_url, std::string_view token, const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "logout needs a token");
  Post(server_url, "/v1/logout", json::object(), token, options);
}

bool Healthy(std::string_view server_url, const HttpOptions& options) {
  Call call;
  call.url = HttpUrl(ParseUrl(server_url), "/healthz");  // a bad URL throws
  call.user_agent = options.user_agent;
  try {
    return Run(std::move(call), options).status == 200;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace parley
