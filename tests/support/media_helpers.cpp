#include "support/media_helpers.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <system_error>
#include <thread>
#include <utility>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/json_util.h"

namespace parley::test {
namespace {

namespace fs = std::filesystem;

std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void png_chunk(std::string& out, const char* type, const std::string& data) {
  put_be32(out, static_cast<std::uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  put_be32(out, crc32(body));
}

// One chunk of a chunked transfer encoding.
std::string fmt_chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

}  // namespace

Account new_account(std::uint16_t port, std::string_view prefix) {
  Account a{unique_username(prefix), {}};
  register_user(port, a.name);
  a.token = login(port, a.name).token;
  return a;
}

std::string make_png(std::uint32_t w, std::uint32_t h, std::uint8_t seed) {
  std::string raw;
  for (std::uint32_t y = 0; y < h; ++y) {
    raw += '\0';  // filter: none
    for (std::uint32_t x = 0; x < w; ++x) {
      raw += static_cast<char>((x * 255 / w + seed) & 0xff);
      raw += static_cast<char>((y * 255 / h) & 0xff);
      raw += static_cast<char>(((x / 40 + y / 40) % 2) * 200);
    }
  }
  std::string z = "\x78\x01";
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + n == raw.size();
    z += static_cast<char>(last ? 1 : 0);
    z += static_cast<char>(n & 0xff);
    z += static_cast<char>(n >> 8);
    z += static_cast<char>(~n & 0xff);
    z += static_cast<char>((~n >> 8) & 0xff);
    z += raw.substr(pos, n);
    pos += n;
    if (last) break;
  }
  std::uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(z, (b << 16) | a);
  std::string ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  std::string png = "\x89PNG\r\n\x1a\n";
  png_chunk(png, "IHDR", ihdr);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", "");
  return png;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  std::string out;
  for (unsigned char c : d) {
    static const char* hex = "0123456789abcdef";
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) ++n;
  return n;
}

HttpResponse upload(std::uint16_t port, const std::string& token, const std::string& bytes,
                    const std::string& content_type) {
  HttpRequestOptions o;
  o.method = "POST";
  o.target = "/v1/media";
  o.body = bytes;
  o.content_type = content_type;
  o.bearer = token;
  o.timeout = std::chrono::seconds(30);
  return http_request(port, o);
}

std::string upload_ok(std::uint16_t port, const std::string& token, const std::string& bytes,
                      const std::string& content_type) {
  auto r = upload(port, token, bytes, content_type);
  EXPECT_EQ(r.status, 201u) << r.body << r.transport_error;
  if (r.status != 201) return "";
  return str_field(r.object(), "id");
}

HttpResponse download(std::uint16_t port, const std::optional<std::string>& token,
                      const std::string& target, std::map<std::string, std::string> headers,
                      const std::string& method) {
  HttpRequestOptions o;
  o.method = method;
  o.target = target;
  o.bearer = token;
  o.extra_headers = std::move(headers);
  return http_request(port, o);
}

boost::json::object media_send(std::string_view to, std::string_view id, std::string_view name,
                               std::string_view caption) {
  boost::json::object media{{"id", id}};
  if (!name.empty()) media["name"] = name;
  if (!caption.empty()) media["caption"] = caption;
  return boost::json::object{
      {"type", "send"}, {"to", to}, {"client_msg_id", next_client_msg_id()}, {"media", media}};
}

void expect_png_upload(const boost::json::object& o, const std::string& png, std::int64_t w,
                       std::int64_t h, std::int64_t thumb_w, std::int64_t thumb_h) {
  EXPECT_EQ(str_field(o, "id"), sha256_hex(png));
  EXPECT_EQ(str_field(o, "type"), "image/png");
  EXPECT_EQ(str_field(o, "kind"), "image");
  EXPECT_EQ(int_field(o, "size"), static_cast<std::int64_t>(png.size()));
  EXPECT_EQ(int_field(o, "width"), w);
  EXPECT_EQ(int_field(o, "height"), h);
  const auto& thumb = obj_field(o, "thumbnail");
  EXPECT_EQ(str_field(thumb, "type"), "image/jpeg");
  EXPECT_EQ(int_field(thumb, "width"), thumb_w);
  EXPECT_EQ(int_field(thumb, "height"), thumb_h);
}

boost::json::object receive_media_message(WsClient& c) {
  auto push =
      c.wait_for([](const WsClient::Frame& f) { return str_field(f, "type") == "message"; });
  if (!push) {
    ADD_FAILURE() << "no message arrived";
    return {};
  }
  const auto& m = obj_field(*push, "message");
  if (str_field(m, "kind") != "media") {
    ADD_FAILURE() << "not a media message: " << to_string(m);
    return {};
  }
  return obj_field(m, "media");
}

std::string chunked_upload(std::uint16_t port, const std::string& token, std::uint64_t bytes) {
  std::string request = "POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string piece(256 * 1024, 'b');
  for (std::uint64_t sent = 0; sent < bytes; sent += piece.size()) request += fmt_chunk(piece);
  request += "0\r\n\r\n";
  return raw_exchange(port, request, false);
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes, bool close_after_send,
                         std::chrono::milliseconds wait) {
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  boost::asio::write(s, boost::asio::buffer(bytes));
  if (close_after_send) {
    s.close();
    return "";
  }
  std::string out;
  s.non_blocking(true);
  auto until = std::chrono::steady_clock::now() + wait;
  char buf[4096];
  while (std::chrono::steady_clock::now() < until) {
    boost::system::error_code ec;
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (n) out.append(buf, n);
    if (ec == boost::asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (ec) break;
  }
  return out;
}

}  // namespace parley::test
