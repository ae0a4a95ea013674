// Assertions and request builders for the parley.v1 chat frames (PROTOCOL.md §3).
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "support/ws_client.h"

namespace parley::test {

// A fresh client_msg_id, unique within the test process.
std::string next_client_msg_id();

boost::json::object send_frame(std::string_view to, std::string_view body,
                               std::string_view client_msg_id);
boost::json::object send_to_chat_frame(std::int64_t chat_id, std::string_view body,
                                       std::string_view client_msg_id);

// Sends and expects `ok`; returns `result` (an empty object after adding a failure).
boost::json::object send_ok(WsClient& c, std::string_view to, std::string_view body,
                            std::optional<std::string> client_msg_id = std::nullopt);
boost::json::object send_to_chat_ok(WsClient& c, std::int64_t chat_id, std::string_view body,
                                    std::optional<std::string> client_msg_id = std::nullopt);
// Sends `request` and expects `ok`; returns `result`.
boost::json::object request_ok(WsClient& c, boost::json::object request);

// Checks the shape of an error frame: type "error", `code`, a string `message`, a boolean
// `retryable` equal to `retryable`; and, if `id` is given, the echoed id (a null value
// expects "id":null).
::testing::AssertionResult is_error(const WsClient::Frame& f, std::string_view code,
                                    std::optional<boost::json::value> id = std::nullopt,
                                    bool retryable = false);

// Checks a message object (PROTOCOL.md §3.4).
::testing::AssertionResult is_message(const boost::json::object& m, std::int64_t chat_id,
                                      std::int64_t seq, std::string_view sender,
                                      std::string_view to, std::string_view body);

// Collects every message of a chat with `history`, paging backwards with `page` (oldest
// first in the result). Adds a failure if a page is not `ok`.
boost::json::array full_history(WsClient& c, std::int64_t chat_id, std::int64_t page = 200);

// Collects `sync` updates after `pts` until has_more is false; returns them oldest first.
// Adds a failure on a snapshot answer or a non-ok page.
boost::json::array sync_all(WsClient& c, std::int64_t pts, std::int64_t limit = 100);

// The server still serves a fresh client: GET /healthz is 200 and a new connection
// authenticated with `token` answers a ping. Adds failures otherwise.
void expect_server_healthy(std::uint16_t port, const std::string& token);

}  // namespace parley::test
