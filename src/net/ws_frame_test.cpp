// The WebSocket pieces without sockets: frame reader, frame encoder, handshake, timing wheel.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "common/utf8.h"
#include "net/ws_frame.h"
#include "net/ws_handshake.h"
#include "net/ws_loop.h"
#include "net/ws_test_frames.h"

namespace parley::net::ws {
namespace {

struct Recorder : FrameReader::Events {
  std::vector<std::string> messages;
  std::vector<bool> binary;
  std::vector<std::string> pings;
  std::vector<std::pair<uint16_t, std::string>> closes;
  bool stop_after_first = false;
  bool on_message(std::string_view payload, bool is_binary) override {
    messages.emplace_back(payload);
    binary.push_back(is_binary);
    return !stop_after_first;
  }
  void on_ping(std::string_view payload) override { pings.emplace_back(payload); }
  void on_close_frame(uint16_t code, std::string_view reason) override {
    closes.emplace_back(code, reason);
  }
};

// Feeds `wire` in chunks of `chunk` bytes; returns the first error.
uint16_t feed(FrameReader& reader, std::string wire, Recorder& events, size_t chunk = 0) {
  if (chunk == 0) chunk = wire.size();
  uint16_t first = 0;
  for (size_t at = 0; at < wire.size(); at += chunk) {
    uint16_t e = reader.feed(wire.data() + at, std::min(chunk, wire.size() - at), events);
    if (first == 0) first = e;
  }
  return first;
}

TEST(WsFrameReader, MessagesArriveWholeHoweverTheBytesAreCut) {
  std::string wire = client_frame(kText, "hello") + client_frame(kBinary, std::string(300, 'b')) +
                     client_frame(kText, std::string(70000, 'x')) + client_frame(kText, "") +
                     client_frame(kText, "frag", false) + client_frame(kPing, "p?") +
                     client_frame(kContinuation, "ment", false) +
                     client_frame(kContinuation, "ed \xe2\x82\xac");
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{13},
                       size_t{1000}, size_t{65536}}) {
    SCOPED_TRACE(chunk);
    FrameReader reader(100000);
    Recorder events;
    EXPECT_EQ(feed(reader, wire, events, chunk), 0);
    ASSERT_EQ(events.messages.size(), 5u);
    EXPECT_EQ(events.messages[0], "hello");
    EXPECT_EQ(events.messages[1], std::string(300, 'b'));
    EXPECT_TRUE(events.binary[1]);
    EXPECT_EQ(events.messages[2], std::string(70000, 'x'));
    EXPECT_EQ(events.messages[3], "");
    EXPECT_EQ(events.messages[4], "fragmented \xe2\x82\xac");
    EXPECT_FALSE(events.binary[4]);
    EXPECT_EQ(events.pings, std::vector<std::string>{"p?"});
    EXPECT_TRUE(reader.idle());
    EXPECT_FALSE(reader.stopped());
  }
}

TEST(WsFrameReader, CloseFrameEndsTheStream) {
  FrameReader reader(1000);
  Recorder events;
  std::string wire = client_frame(kClose, close_payload(1000, "bye")) + client_frame(kText, "late");
  EXPECT_EQ(feed(reader, wire, events), 0);
  ASSERT_EQ(events.closes.size(), 1u);
  EXPECT_EQ(events.closes[0], std::make_pair(uint16_t{1000}, std::string("bye")));
  EXPECT_TRUE(events.messages.empty());
  EXPECT_TRUE(reader.stopped());

  FrameReader empty(1000);
  Recorder e2;
  EXPECT_EQ(feed(empty, client_frame(kClose, ""), e2), 0);
  ASSERT_EQ(e2.closes.size(), 1u);
  EXPECT_EQ(e2.closes[0].first, kCloseNoStatus);
}

TEST(WsFrameReader, ProtocolErrorsClose1002AndStopReading) {
  auto unmasked = std::string("\x81\x02hi", 4);
  std::string non_minimal = client_frame(kText, "abc");
  non_minimal[1] = static_cast<char>(0x80 | 126);
  non_minimal.insert(2, std::string("\x00\x03", 2));
  std::string huge_length("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x00mask", 14);
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"unmasked", unmasked},
      {"rsv bit", client_frame(kText, "x", true, 1, 0x40)},
      {"reserved opcode", client_frame(0x3, "x")},
      {"reserved control opcode", client_frame(0xB, "x")},
      {"long control frame", client_frame(kPing, std::string(126, 'p'))},
      {"fragmented control frame", client_frame(kPing, "p", false)},
      {"continuation without a message", client_frame(kContinuation, "x")},
      {"new message inside a fragmented one",
       client_frame(kText, "a", false) + client_frame(kText, "b")},
      {"non-minimal length", non_minimal},
      {"64-bit length with the top bit", huge_length},
      {"close with one byte", client_frame(kClose, "x")},
      {"close code 1005", client_frame(kClose, close_payload(1005))},
      {"close code 999", client_frame(kClose, close_payload(999))},
      {"close code 2000", client_frame(kClose, close_payload(2000))},
  };
  for (const auto& [name, wire] : cases) {
    SCOPED_TRACE(name);
    FrameReader reader(1000);
    Recorder events;
    EXPECT_EQ(feed(reader, wire + client_frame(kText, "after"), events), kCloseProtocolError);
    EXPECT_TRUE(events.messages.empty());
    EXPECT_TRUE(events.closes.empty());
    EXPECT_TRUE(reader.stopped());
  }
}

TEST(WsFrameReader, OversizedMessageCloses1009AndTheCloseFrameIsStillSeen) {
  for (std::string wire : {client_frame(kText, std::string(1001, 'a')),
                           client_frame(kText, std::string(600, 'a'), false) +
                               client_frame(kContinuation, std::string(401, 'a'), false) +
                               client_frame(kContinuation, "z")}) {
    FrameReader reader(1000);
    Recorder events;
    wire += client_frame(kText, "dropped") + client_frame(kClose, close_payload(1000));
    EXPECT_EQ(feed(reader, wire, events, 97), kCloseTooBig);
    EXPECT_TRUE(events.messages.empty());
    ASSERT_EQ(events.closes.size(), 1u);  // the framing stayed intact
    EXPECT_EQ(events.closes[0].first, 1000);
  }
  FrameReader exact(1000);
  Recorder events;
  EXPECT_EQ(feed(exact, client_frame(kText, std::string(1000, 'a')), events), 0);
  EXPECT_EQ(events.messages.size(), 1u);
}

TEST(WsFrameReader, InvalidUtf8Closes1007) {
  for (std::string wire :
       {client_frame(kText, "ok\xff"),
        client_frame(kText, "\xe2\x82", false) + client_frame(kContinuation, "x"),
        client_frame(kClose, close_payload(1000, "\xc0\xaf"))}) {
    FrameReader reader(1000);
    Recorder events;
    EXPECT_EQ(feed(reader, wire, events, 3), kCloseInvalidPayload);
    EXPECT_TRUE(events.messages.empty());
    EXPECT_TRUE(events.closes.empty());
  }
  // Binary messages are not text: any bytes.
  FrameReader reader(1000);
  Recorder events;
  EXPECT_EQ(feed(reader, client_frame(kBinary, "\xff\xfe"), events), 0);
  EXPECT_EQ(events.messages.size(), 1u);
}

TEST(WsFrameReader, AHandlerThatStopsGetsNoMoreMessagesButTheClose) {
  FrameReader reader(1000);
  Recorder events;
  events.stop_after_first = true;
  EXPECT_EQ(feed(reader,
                 client_frame(kText, "one") + client_frame(kText, "two") + client_frame(kPing, "") +
                     client_frame(kClose, close_payload(4000)),
                 events),
            0);
  EXPECT_EQ(events.messages, std::vector<std::string>{"one"});
  EXPECT_TRUE(events.pings.empty());
  ASSERT_EQ(events.closes.size(), 1u);
  EXPECT_EQ(events.closes[0].first, 4000);
}

// Arbitrary bytes, cut anywhere: the reader never reads out of bounds (run under ASan), never
// reports a message over the limit or invalid text, and any error is one of its three codes.
TEST(WsFrameReader, ArbitraryBytesNeverBreakTheReader) {
  std::mt19937 rng(20261204);
  const std::vector<std::string> pieces = {client_frame(kText, "hello"),
                                           client_frame(kText, "frag", false),
                                           client_frame(kContinuation, "ment"),
                                           client_frame(kContinuation, "x", false),
                                           client_frame(kPing, "p"),
                                           client_frame(kBinary, std::string(200, 'b')),
                                           client_frame(kText, std::string(3000, 't')),
                                           client_frame(kClose, close_payload(1000)),
                                           std::string("\x81\xfe\x01", 3),
                                           std::string("\xff", 1),
                                           std::string("\x80", 1)};
  for (int round = 0; round < 2000; ++round) {
    std::string wire;
    const int parts = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < parts; ++i) {
      if (rng() % 3 == 0) {
        std::string junk(rng() % 40, '\0');
        for (auto& c : junk) c = static_cast<char>(rng());
        wire += junk;
      } else {
        wire += pieces[rng() % pieces.size()];
      }
    }
    FrameReader reader(2048);
    Recorder events;
    const uint16_t error = feed(reader, wire, events, 1 + rng() % 64);
    EXPECT_TRUE(error == 0 || error == kCloseProtocolError || error == kCloseInvalidPayload ||
                error == kCloseTooBig)
        << error;
    for (size_t i = 0; i < events.messages.size(); ++i) {
      EXPECT_LE(events.messages[i].size(), 2048u);
      if (!events.binary[i]) {
        EXPECT_TRUE(parley::valid_utf8(events.messages[i]));
      }
    }
  }
}

TEST(WsFrameEncoder, HeadersUseTheShortestLength) {
  char h[kMaxServerHeaderBytes];
  EXPECT_EQ(encode_header(h, kText, 0), 2u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x81);
  EXPECT_EQ(h[1], 0);
  EXPECT_EQ(encode_header(h, kText, 125), 2u);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(encode_header(h, kBinary, 126), 4u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x82);
  EXPECT_EQ(std::string(h + 1, 3), std::string("\x7e\x00\x7e", 3));
  EXPECT_EQ(encode_header(h, kText, 65535), 4u);
  EXPECT_EQ(encode_header(h, kText, 65536), 10u);
  EXPECT_EQ(std::string(h + 1, 9), std::string("\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 9));
}

TEST(WsFrameEncoder, CloseReasonIsCutAtACharacterBoundary) {
  std::string out;
  append_close(out, 1001, std::string(122, 'a') + "\xe2\x82\xac");  // 125 bytes: 2 too many
  ASSERT_EQ(out.size(), 2u + 2u + 122u);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 0x88);
  EXPECT_EQ(out.substr(2, 2), std::string("\x03\xe9", 2));
  EXPECT_EQ(out.substr(4), std::string(122, 'a'));
  out.clear();
  append_close(out, kCloseNoStatus, "ignored");
  EXPECT_EQ(out, std::string("\x88\x00", 2));
}

TEST(WsHandshake, AcceptKeyIsTheRfcExample) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  auto answer = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", "parley.v1");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
  EXPECT_NE(answer.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_NE(answer.find("Sec-WebSocket-Protocol: parley.v1\r\n"), std::string::npos);
  EXPECT_TRUE(answer.ends_with("\r\n\r\n"));
}

TEST(WsHandshake, ChecksVersionAndKey) {
  HttpRequest req{boost::beast::http::verb::get, "/v1/ws", 11};
  req.set(boost::beast::http::field::sec_websocket_version, "13");
  req.set(boost::beast::http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_FALSE(check_upgrade(req));
  req.set(boost::beast::http::field::sec_websocket_version, "8");
  ASSERT_TRUE(check_upgrade(req));
  EXPECT_EQ(check_upgrade(req)->status, boost::beast::http::status::upgrade_required);
  req.set(boost::beast::http::field::sec_websocket_version, "13");
  for (const char* key : {"", "short==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZ===",
                          "dGhlIHNhbXBsZSBub25j*Q=="}) {
    req.set(boost::beast::http::field::sec_websocket_key, key);
    ASSERT_TRUE(check_upgrade(req)) << key;
    EXPECT_EQ(check_upgrade(req)->status, boost::beast::http::status::bad_request);
  }
}

struct Probe final : WsTimed {
  std::vector<WsClock::time_point> fired;
  void on_due(WsClock::time_point now) override { fired.push_back(now); }
};

TEST(WsLoop, WakesEntriesAtTheirTimeAndStopsWhenNothingIsLeft) {
  boost::asio::io_context ioc;
  auto& loop = WsLoop::of(ioc.get_executor());
  EXPECT_EQ(&loop, &WsLoop::of(ioc.get_executor()));  // one per io_context
  Probe soon, later, cancelled;
  const auto start = WsClock::now();
  boost::asio::post(ioc, [&] {
    loop.schedule(soon, start + std::chrono::milliseconds(100));
    loop.schedule(later, start + std::chrono::milliseconds(600));
    loop.schedule(cancelled, start + std::chrono::milliseconds(300));
    loop.cancel(cancelled);
  });
  ioc.run();  // returns once the wheel is empty: it keeps no timer armed for nothing
  ASSERT_EQ(soon.fired.size(), 1u);
  ASSERT_EQ(later.fired.size(), 1u);
  EXPECT_TRUE(cancelled.fired.empty());
  EXPECT_GE(soon.fired[0], start + std::chrono::milliseconds(100));
  EXPECT_GE(later.fired[0], start + std::chrono::milliseconds(600));
  EXPECT_LT(soon.fired[0], later.fired[0]);
  EXPECT_FALSE(soon.scheduled());
}

TEST(WsLoop, AnEntryCanRescheduleItselfAndBeCancelled) {
  boost::asio::io_context ioc;
  auto& loop = WsLoop::of(ioc.get_executor());
  struct Again final : WsTimed {
    WsLoop* loop = nullptr;
    int wakes = 0;
    void on_due(WsClock::time_point now) override {
      if (++wakes < 3) loop->schedule(*this, now);  // "now": the next tick, never this one
    }
  } again;
  again.loop = &loop;
  Probe far;
  boost::asio::post(ioc, [&] {
    loop.schedule(again, WsClock::now());
    loop.schedule(far, WsClock::now() + std::chrono::hours(1));
    EXPECT_TRUE(far.scheduled());
    loop.cancel(far);
  });
  ioc.run();
  EXPECT_EQ(again.wakes, 3);
}

}  // namespace
}  // namespace parley::net::ws
