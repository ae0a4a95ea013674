#include "support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace parley::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string HttpResponse::error_code() const {
  if (!json || !json->is_object()) return "";
  const auto* err = json->as_object().if_contains("error");
  if (err == nullptr || !err->is_object()) return "";
  const auto* code = err->as_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return "";
  return std::string(code->as_string());
}

const json::object& HttpResponse::object() const {
  static const json::object kEmpty;
  if (json && json->is_object()) return json->as_object();
  return kEmpty;
}

HttpResponse http_request(std::uint16_t port, const HttpRequestOptions& options) {
  HttpResponse out;
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req;
  req.method_string(options.method);
  req.target(options.target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "parley-integration-test");
  req.set(http::field::connection, "close");
  if (options.bearer) req.set(http::field::authorization, "Bearer " + *options.bearer);
  for (const auto& [name, value] : options.extra_headers) req.set(name, value);
  if (!options.body.empty() || options.method == "POST" || options.method == "PUT") {
    req.set(http::field::content_type, options.content_type);
    req.body() = options.body;
    req.prepare_payload();
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (options.method == "HEAD") parser.skip(true);  // a HEAD answer has no body
  beast::flat_buffer buffer;
  beast::error_code write_ec;
  beast::error_code read_ec;
  bool connected = false;

  stream.expires_after(options.timeout);
  stream.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
        if (ec) {
          out.transport_error = "connect: " + ec.message();
          return;
        }
        connected = true;
        http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
          // The server may answer (413) and close before reading the whole
          // body; a failed write still lets us read its response.
          write_ec = wec;
          http::async_read(stream, buffer, parser,
                           [&](beast::error_code rec, std::size_t) { read_ec = rec; });
        });
      });
  ioc.run();
  if (!connected) return out;
  if (read_ec && !parser.is_done()) {
    out.transport_error = "read: " + read_ec.message() +
                          (write_ec ? " (write: " + write_ec.message() + ")" : std::string());
    if (!parser.is_header_done()) return out;
  }
  auto& res = parser.get();
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) out.headers[lower(field.name_string())] = field.value();
  json::error_code jec;
  auto parsed = json::parse(out.body, jec);
  if (!jec) out.json = std::move(parsed);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

HttpResponse http_get(std::uint16_t port, const std::string& target) {
  HttpRequestOptions o;
  o.method = "GET";
  o.target = target;
  return http_request(port, o);
}

HttpResponse http_post_json(std::uint16_t port, const std::string& target, const json::value& body,
                            std::optional<std::string> bearer) {
  return http_post_raw(port, target, json::serialize(body), std::move(bearer));
}

HttpResponse http_post_raw(std::uint16_t port, const std::string& target, std::string body,
                           std::optional<std::string> bearer) {
  HttpRequestOptions o;
  o.method = "POST";
  o.target = target;
  o.body = std::move(body);
  o.bearer = std::move(bearer);
  return http_request(port, o);
}

}  // namespace parley::test
