#include "http/responses.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "net/http_session.h"

namespace bhttp = boost::beast::http;

namespace parley::http {

bhttp::status status_of(Errc code) {
  switch (code) {
    case Errc::bad_request:
    case Errc::invalid_utf8:
      return bhttp::status::bad_request;
    case Errc::unauthorized:
    case Errc::token_expired:
    case Errc::invalid_credentials:
      return bhttp::status::unauthorized;
    case Errc::forbidden:
    case Errc::registration_closed:
      return bhttp::status::forbidden;
    case Errc::not_found:
      return bhttp::status::not_found;
    case Errc::username_taken:
    case Errc::too_many_devices:
      return bhttp::status::conflict;
    case Errc::invalid_username:
    case Errc::weak_password:
      return bhttp::status::unprocessable_entity;
    case Errc::too_large:
      return bhttp::status::payload_too_large;
    case Errc::unsupported_type:
      return bhttp::status::unsupported_media_type;
    case Errc::rate_limited:
      return bhttp::status::too_many_requests;
    case Errc::unavailable:
      return bhttp::status::service_unavailable;
    case Errc::method_not_allowed:
      return bhttp::status::method_not_allowed;
    default:
      return bhttp::status::internal_server_error;
  }
}

net::HttpResponse error_response(const Error& e) {
  return net::json_error(11, status_of(e.code), errc_name(e.code), e.message);
}

net::HttpResponse json_response(bhttp::status status, std::string body) {
  net::HttpResponse res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

net::HttpResponse json_response(bhttp::status status, const boost::json::object& body) {
  return json_response(status, boost::json::serialize(body));
}

std::string bearer_token(const net::HttpRequestHeader& req) {
  std::string_view h = req[bhttp::field::authorization];
  if (h.size() > 7 && (h.substr(0, 7) == "Bearer " || h.substr(0, 7) == "bearer "))
    return std::string(h.substr(7));
  return {};
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace parley::http
