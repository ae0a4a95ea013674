// Helpers for the media end-to-end tests (docs/MEDIA.md): test images, hashes, uploads,
// downloads and media messages against a running parleyd.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "support/http_client.h"
#include "support/ws_client.h"

namespace parley::test {

// A registered user and the token of its first login.
struct Account {
  std::string name;
  std::string token;
};

// Registers a fresh user named after `prefix` and logs it in (adds failures otherwise).
Account new_account(std::uint16_t port, std::string_view prefix);

// A valid RGB PNG of w x h with a pattern that depends on `seed`, written with stored
// (uncompressed) deflate blocks so that the tests need no zlib. 640 x 480 is ~900 KiB: many
// chunks on the way in and out.
std::string make_png(std::uint32_t w, std::uint32_t h, std::uint8_t seed = 0);

// Lowercase hex SHA-256 of `bytes`: a media id.
std::string sha256_hex(const std::string& bytes);

// Regular files under `dir`, recursively; 0 when it does not exist.
std::size_t count_files(const std::filesystem::path& dir);

// POST /v1/media with `bytes` (and `content_type` unless empty).
HttpResponse upload(std::uint16_t port, const std::string& token, const std::string& bytes,
                    const std::string& content_type = "");
// The same, expecting 201; returns the id ("" after adding a failure).
std::string upload_ok(std::uint16_t port, const std::string& token, const std::string& bytes,
                      const std::string& content_type = "");

// `method` (GET or HEAD) of `target` (e.g. "/v1/media/<id>"), with a Bearer token if given.
HttpResponse download(std::uint16_t port, const std::optional<std::string>& token,
                      const std::string& target, std::map<std::string, std::string> headers = {},
                      const std::string& method = "GET");

// A `send` frame of media `id` to user `to`, with `name` and `caption` unless empty.
boost::json::object media_send(std::string_view to, std::string_view id, std::string_view name = "",
                               std::string_view caption = "");

// Checks the 201 answer `o` to the upload of PNG `png` of w x h: the id is its hash, type,
// kind, size and dimensions, and a JPEG thumbnail of thumb_w x thumb_h. Adds failures.
void expect_png_upload(const boost::json::object& o, const std::string& png, std::int64_t w,
                       std::int64_t h, std::int64_t thumb_w, std::int64_t thumb_h);

// Waits for the next `message` push on `c` and returns the `media` of that message (an empty
// object after adding a failure, when none comes or it is not a media message).
boost::json::object receive_media_message(WsClient& c);

// POSTs /v1/media chunked (no Content-Length) with at least `bytes` bytes of text on a raw
// connection and returns the raw answer.
std::string chunked_upload(std::uint16_t port, const std::string& token, std::uint64_t bytes);

// Sends raw bytes on a fresh connection to 127.0.0.1:port and returns what the server answered
// (until it closes or `wait` passes); with `close_after_send`, closes at once and returns "".
std::string raw_exchange(std::uint16_t port, const std::string& bytes, bool close_after_send,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(3000));

}  // namespace parley::test
