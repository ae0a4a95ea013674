#include "parley/url.h"

#include <gtest/gtest.h>

#include "parley/error.h"

namespace parley {
namespace {

std::string CodeOf(std::string_view text) {
  try {
    ParseUrl(text);
  } catch (const Error& e) {
    return e.code();
  }
  return "ok";
}

TEST(UrlTest, ParsesHttpWithPort) {
  Url u = ParseUrl("http://127.0.0.1:8080");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.path, "/");
  EXPECT_EQ(u.HostPort(), "127.0.0.1:8080");
  EXPECT_EQ(u.ToString(), "http://127.0.0.1:8080/");
}

TEST(UrlTest, DefaultPortAndCaseFolding) {
  Url u = ParseUrl("HTTP://Chat.Example.COM/prefix/");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "chat.example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path, "/prefix/");
}

TEST(UrlTest, Ipv6Literal) {
  Url u = ParseUrl("ws://[::1]:9000/v1/ws");
  EXPECT_EQ(u.scheme, "ws");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.path, "/v1/ws");
  EXPECT_EQ(u.HostPort(), "[::1]:9000");
}

TEST(UrlTest, RejectsTlsSchemesClearly) {
  EXPECT_EQ(CodeOf("https://example.com"), errc::kUnsupportedScheme);
  EXPECT_EQ(CodeOf("wss://example.com/v1/ws"), errc::kUnsupportedScheme);
  try {
    ParseUrl("wss://example.com");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.message()).find("TLS"), std::string::npos) << e.what();
  }
}

TEST(UrlTest, RejectsOtherSchemes) {
  EXPECT_EQ(CodeOf("ftp://example.com"), errc::kUnsupportedScheme);
}

TEST(UrlTest, RejectsMalformed) {
  for (const char* bad :
       {"", "127.0.0.1:8080", "://x", "http://", "http://:80", "http://host:", "http://host:0",
        "http://host:65536", "http://host:8x", "http://host:-1", "http://user@host",
        "http://host/a?b=c", "http://host#frag", "http://[::1", "http://[::1]x", "http://::1:80",
        "http://ho st/", "http://host/a b", "http://[zz]:80"}) {
    EXPECT_EQ(CodeOf(bad), errc::kBadUrl) << bad;
  }
}

TEST(UrlTest, WebSocketUrlFromHttp) {
  EXPECT_EQ(WebSocketUrl(ParseUrl("http://h:1")).ToString(), "ws://h:1/v1/ws");
  EXPECT_EQ(WebSocketUrl(ParseUrl("http://h:1/chat/")).ToString(), "ws://h:1/chat/v1/ws");
  EXPECT_EQ(WebSocketUrl(ParseUrl("ws://h:1")).ToString(), "ws://h:1/v1/ws");
  EXPECT_EQ(WebSocketUrl(ParseUrl("ws://h:1/custom")).ToString(), "ws://h:1/custom");
}

TEST(UrlTest, HttpUrlBelowServer) {
  EXPECT_EQ(HttpUrl(ParseUrl("http://h:1"), "/v1/login").ToString(), "http://h:1/v1/login");
  EXPECT_EQ(HttpUrl(ParseUrl("http://h:1/p/"), "/v1/login").ToString(), "http://h:1/p/v1/login");
  EXPECT_EQ(HttpUrl(ParseUrl("ws://h:1/v1/ws"), "/v1/login").ToString(), "http://h:1/v1/login");
}

}  // namespace
}  // namespace parley
