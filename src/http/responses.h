// JSON answers and request helpers shared by the HTTP routes (docs/PROTOCOL.md §2, §4).
#pragma once

#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "common/errc.h"
#include "net/transport.h"

namespace parley::http {

boost::beast::http::status status_of(Errc code);
// {"error":{"code","message"}} with the status that goes with the code.
net::HttpResponse error_response(const Error& e);
// A JSON body, not cacheable.
net::HttpResponse json_response(boost::beast::http::status status, std::string body);
net::HttpResponse json_response(boost::beast::http::status status, const boost::json::object& body);
// The token of "Authorization: Bearer <token>", or "".
std::string bearer_token(const net::HttpRequestHeader& req);
// The value of `key` in the query string of `target`, percent-decoded; nullopt if absent.
std::optional<std::string> query_param(std::string_view target, std::string_view key);

}  // namespace parley::http
