#include "parley/wire.h"

#include <random>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "parley/error.h"

namespace parley::wire {
namespace {

namespace json = boost::json;

const char kMessage[] =
    R"({"chat_id":12,"seq":5,"message_id":"7313459286409216001","sender":"alice","to":"bob",)"
    R"("kind":"text","body":"hi bob","ts":1732771200123,"client_msg_id":"c-1700000000-1"})";

json::object Parse(const std::string& text) { return json::parse(text).as_object(); }

template <class T>
T As(std::string_view text) {
  ServerFrame f = DecodeServerFrame(text);
  EXPECT_TRUE(std::holds_alternative<T>(f)) << text << " -> index " << f.index();
  return std::holds_alternative<T>(f) ? std::get<T>(f) : T{};
}

std::string BadResponse(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return "no error";
}

// ---- requests

TEST(WireEncodeTest, Auth) {
  EXPECT_EQ(Parse(EncodeAuth(1, "pt_x")),
            Parse(R"({"type":"auth","id":1,"token":"pt_x","batch":true})"));
}

TEST(WireEncodeTest, SendToUserAndChat) {
  EXPECT_EQ(
      Parse(EncodeSend(2, Target::User("bob"), "c-1", "hi \"bob\"\n")),
      Parse(R"({"type":"send","id":2,"to":"bob","client_msg_id":"c-1","body":"hi \"bob\"\n"})"));
  EXPECT_EQ(Parse(EncodeSend(3, Target::Chat(12), "c-2", "x")),
            Parse(R"({"type":"send","id":3,"chat_id":12,"client_msg_id":"c-2","body":"x"})"));
}

TEST(WireEncodeTest, SyncWithAndWithoutPts) {
  EXPECT_EQ(Parse(EncodeSync(3, 40, 100)), Parse(R"({"type":"sync","id":3,"pts":40,"limit":100})"));
  EXPECT_EQ(Parse(EncodeSync(4, std::nullopt, 10)), Parse(R"({"type":"sync","id":4,"limit":10})"));
}

TEST(WireEncodeTest, HistoryAfterAndRawRequest) {
  EXPECT_EQ(Parse(EncodeHistoryAfter(7, Target::Chat(31), 56, 200)),
            Parse(R"({"type":"history","id":7,"chat_id":31,"after_seq":56,"limit":200})"));
  EXPECT_EQ(Parse(EncodeRequest(8, "group_create",
                                json::object{{"name", "team"}, {"members", json::array{"bob"}}})),
            Parse(R"({"type":"group_create","id":8,"name":"team","members":["bob"]})"));
}

TEST(WireEncodeTest, HistoryChatsPing) {
  EXPECT_EQ(Parse(EncodeHistory(4, Target::User("bob"), 30, 50)),
            Parse(R"({"type":"history","id":4,"with":"bob","before_seq":30,"limit":50})"));
  EXPECT_EQ(Parse(EncodeHistory(5, Target::Chat(12), std::nullopt, 20)),
            Parse(R"({"type":"history","id":5,"chat_id":12,"limit":20})"));
  EXPECT_EQ(Parse(EncodeChats(5, 100)), Parse(R"({"type":"chats","id":5,"limit":100})"));
  EXPECT_EQ(Parse(EncodePing(6)), Parse(R"({"type":"ping","id":6})"));
}

TEST(WireEncodeTest, ReceiptsTypingPresenceSettings) {
  EXPECT_EQ(Parse(EncodeMarkDelivered(11, Target::Chat(12), 5)),
            Parse(R"({"type":"mark_delivered","id":11,"chat_id":12,"seq":5})"));
  EXPECT_EQ(Parse(EncodeMarkRead(12, Target::Chat(12), 5)),
            Parse(R"({"type":"mark_read","id":12,"chat_id":12,"seq":5})"));
  EXPECT_EQ(Parse(EncodeMarkRead(13, Target::User("bob"), std::nullopt)),
            Parse(R"({"type":"mark_read","id":13,"with":"bob"})"));
  EXPECT_EQ(Parse(EncodeTyping(14, Target::Chat(12), TypingState::kStart)),
            Parse(R"({"type":"typing","id":14,"chat_id":12,"state":"start"})"));
  EXPECT_EQ(Parse(EncodeTyping(15, Target::User("bob"), TypingState::kStop)),
            Parse(R"({"type":"typing","id":15,"with":"bob","state":"stop"})"));
  EXPECT_EQ(Parse(EncodePresenceSubscribe(16, {"bob", "carol"})),
            Parse(R"({"type":"presence_subscribe","id":16,"users":["bob","carol"]})"));
  EXPECT_EQ(Parse(EncodePresenceUnsubscribe(17, {"bob"}, false)),
            Parse(R"({"type":"presence_unsubscribe","id":17,"users":["bob"]})"));
  EXPECT_EQ(Parse(EncodePresenceUnsubscribe(18, {}, true)),
            Parse(R"({"type":"presence_unsubscribe","id":18,"all":true})"));
  EXPECT_EQ(Parse(EncodeSettings(19, std::string("contacts"))),
            Parse(R"({"type":"settings","id":19,"presence":"contacts"})"));
  EXPECT_EQ(Parse(EncodeSettings(20, std::nullopt)), Parse(R"({"type":"settings","id":20})"));
}

// ---- server frames

TEST(WireDecodeTest, Ok) {
  auto ok = As<OkFrame>(R"({"type":"ok","id":7,"result":{"ts":1}})");
  EXPECT_EQ(ok.id, 7);
  EXPECT_EQ(DecodePingResult(ok.result), 1);
  auto no_result = As<OkFrame>(R"({"type":"ok","id":8})");
  EXPECT_TRUE(no_result.result.is_null());
}

TEST(WireDecodeTest, Error) {
  auto e = As<ErrorFrame>(
      R"({"type":"error","id":7,"code":"not_found","message":"no such user: carol","retryable":false})");
  EXPECT_EQ(e.id, 7);
  EXPECT_EQ(e.code, "not_found");
  EXPECT_EQ(e.message, "no such user: carol");
  EXPECT_FALSE(e.retryable);
  auto r = As<ErrorFrame>(
      R"({"type":"error","id":9,"code":"rate_limited","message":"slow down","retryable":true,"retry_after_ms":250})");
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.retry_after_ms, 250);
  auto null_id = As<ErrorFrame>(R"({"type":"error","id":null,"code":"bad_request","message":"x"})");
  EXPECT_FALSE(null_id.id.has_value());
  // Sloppy error frames still come through as errors.
  auto sloppy = As<ErrorFrame>(R"({"type":"error","id":"x","code":5,"retryable":"yes"})");
  EXPECT_FALSE(sloppy.id.has_value());
  EXPECT_EQ(sloppy.code, "unknown");
  EXPECT_FALSE(sloppy.retryable);
}

TEST(WireDecodeTest, MessagePush) {
  auto p = As<MessagePush>(std::string(R"({"type":"message","pts":43,"message":)") + kMessage +
                           R"(,"extra":[1,2]})");
  EXPECT_EQ(p.update.pts, 43);
  EXPECT_EQ(p.update.kind, "message");
  ASSERT_TRUE(p.update.message);
  const Message& m = *p.update.message;
  EXPECT_EQ(m.chat_id, 12);
  EXPECT_EQ(m.seq, 5);
  EXPECT_EQ(m.message_id, "7313459286409216001");
  EXPECT_EQ(m.sender, "alice");
  EXPECT_EQ(m.to, "bob");
  EXPECT_EQ(m.kind, "text");
  EXPECT_EQ(m.body, "hi bob");
  EXPECT_EQ(m.ts, 1732771200123);
  EXPECT_EQ(m.client_msg_id, "c-1700000000-1");
}

TEST(WireDecodeTest, EventMessageAndLargeGroupPush) {
  auto e = As<MessagePush>(
      R"({"type":"message","pts":44,"message":{"chat_id":31,"seq":3,"message_id":"7313459286409216042","sender":"alice","kind":"event","event":{"event":"members_added","by":"alice","users":["carol"]},"ts":1732771201000}})");
  EXPECT_EQ(e.update.pts, 44);
  ASSERT_TRUE(e.update.message);
  EXPECT_EQ(e.update.message->kind, "event");
  EXPECT_EQ(e.update.message->body, "");
  EXPECT_EQ(e.update.message->to, "");
  EXPECT_EQ(json::parse(e.update.message->event),
            json::parse(R"({"event":"members_added","by":"alice","users":["carol"]})"));
  json::object back = ToJson(*e.update.message);
  EXPECT_FALSE(back.contains("body"));
  EXPECT_FALSE(back.contains("to"));
  EXPECT_EQ(back["event"].as_object()["event"], "members_added");

  // Large groups: pushed without pts.
  auto big = As<MessagePush>(
      R"({"type":"message","message":{"chat_id":31,"seq":57,"message_id":"7313459286409216100","sender":"bob","kind":"text","body":"hi all","ts":1732771202000,"client_msg_id":"b-17"}})");
  EXPECT_EQ(big.update.pts, 0);
  ASSERT_TRUE(big.update.message);
  EXPECT_EQ(big.update.message->body, "hi all");

  for (
      const char* bad :
      {R"({"type":"message","pts":1,"message":{"chat_id":1,"seq":1,"message_id":"1","sender":"a","kind":"event"}})",
       R"({"type":"message","pts":1,"message":{"chat_id":1,"seq":1,"message_id":"1","sender":"a","kind":"event","event":"x"}})",
       R"({"type":"message","pts":1,"message":{"chat_id":1,"seq":1,"message_id":"1","sender":"a","kind":"text"}})"}) {
    EXPECT_TRUE(std::holds_alternative<MalformedFrame>(DecodeServerFrame(bad))) << bad;
  }
  // A later kind without body is accepted.
  auto later = As<MessagePush>(
      R"({"type":"message","pts":2,"message":{"chat_id":1,"seq":2,"message_id":"2","sender":"a","kind":"image","media":{}}})");
  EXPECT_EQ(later.update.message->kind, "image");
}

TEST(WireDecodeTest, UnknownPushIsNotAnError) {
  auto u = As<UnknownPush>(R"({"type":"reaction","chat_id":12})");
  EXPECT_EQ(u.type, "reaction");
}

TEST(WireDecodeTest, ReceiptPush) {
  auto p = As<ReceiptPush>(
      R"({"type":"receipt","pts":47,"receipt":{"chat_id":12,"user":"bob","kind":"read","seq":5,"ts":1732771203000},"extra":1})");
  EXPECT_EQ(p.update.pts, 47);
  EXPECT_EQ(p.update.kind, "read");
  EXPECT_FALSE(p.update.message);
  ASSERT_TRUE(p.update.receipt);
  EXPECT_EQ(*p.update.receipt, (Receipt{12, "bob", "read", 5, 1732771203000}));
  EXPECT_EQ(json::value(ToJson(*p.update.receipt)),
            json::parse(R"({"chat_id":12,"user":"bob","kind":"read","seq":5,"ts":1732771203000})"));

  // Large groups: without pts.
  auto big = As<ReceiptPush>(
      R"({"type":"receipt","receipt":{"chat_id":31,"user":"carol","kind":"delivered","seq":57}})");
  EXPECT_EQ(big.update.pts, 0);
  EXPECT_EQ(big.update.kind, "delivered");
  EXPECT_EQ(big.update.receipt->ts, 0);

  for (
      const char* bad : {
          R"({"type":"receipt","pts":47})",
          R"({"type":"receipt","pts":47,"receipt":[]})",
          R"({"type":"receipt","pts":0,"receipt":{"chat_id":12,"user":"bob","kind":"read","seq":5}})",
          R"({"type":"receipt","pts":47,"receipt":{"user":"bob","kind":"read","seq":5}})",
          R"({"type":"receipt","pts":47,"receipt":{"chat_id":12,"kind":"read","seq":5}})",
          R"({"type":"receipt","pts":47,"receipt":{"chat_id":12,"user":"bob","seq":5}})",
          R"({"type":"receipt","pts":47,"receipt":{"chat_id":12,"user":"bob","kind":"read"}})",
          R"({"type":"receipt","pts":"47","receipt":{"chat_id":12,"user":"bob","kind":"read","seq":5}})",
      }) {
    EXPECT_TRUE(std::holds_alternative<MalformedFrame>(DecodeServerFrame(bad))) << bad;
  }
}

TEST(WireDecodeTest, TypingPush) {
  auto t = As<TypingPush>(
      R"({"type":"typing","chat_id":12,"user":"alice","state":"start","expires_ms":6000})");
  EXPECT_EQ(t.event, (TypingEvent{12, "alice", TypingState::kStart, 6000}));
  auto stop = As<TypingPush>(R"({"type":"typing","chat_id":12,"user":"alice","state":"stop"})");
  EXPECT_EQ(stop.event.state, TypingState::kStop);
  EXPECT_EQ(stop.event.expires_ms, 0);
  EXPECT_EQ(json::value(ToJson(stop.event)),
            json::parse(R"({"chat_id":12,"user":"alice","state":"stop"})"));
  for (const char* bad : {
           R"({"type":"typing","chat_id":12})",
           R"({"type":"typing","chat_id":12,"user":"alice","state":"dancing"})",
           R"({"type":"typing","user":"alice","state":"start"})",
           R"({"type":"typing","chat_id":12,"user":"alice","state":"start","expires_ms":-1})",
       }) {
    EXPECT_TRUE(std::holds_alternative<MalformedFrame>(DecodeServerFrame(bad))) << bad;
  }
}

TEST(WireDecodeTest, PresencePush) {
  auto p = As<PresencePush>(
      R"({"type":"presence","presence":[{"user":"bob","online":false,"last_seen":1732771204000},{"user":"dave","hidden":true},{"user":"carol","online":true}]})");
  ASSERT_EQ(p.presence.size(), 3u);
  EXPECT_EQ(p.presence[0], (PresenceStatus{"bob", false, 1732771204000, false}));
  EXPECT_EQ(p.presence[1], (PresenceStatus{"dave", false, 0, true}));
  EXPECT_EQ(p.presence[2], (PresenceStatus{"carol", true, 0, false}));
  EXPECT_EQ(json::value(ToJson(p.presence[0])),
            json::parse(R"({"user":"bob","online":false,"last_seen":1732771204000})"));
  EXPECT_EQ(json::value(ToJson(p.presence[1])), json::parse(R"({"user":"dave","hidden":true})"));
  for (const char* bad : {
           R"({"type":"presence","user":"alice"})",
           R"({"type":"presence","presence":{}})",
           R"({"type":"presence","presence":[{"online":true}]})",
           R"({"type":"presence","presence":[{"user":"bob","online":"yes"}]})",
       }) {
    EXPECT_TRUE(std::holds_alternative<MalformedFrame>(DecodeServerFrame(bad))) << bad;
  }
}

TEST(WireDecodeTest, MalformedFramesNeverThrow) {
  for (
      const char* bad :
      {"",
       "not json",
       "[1,2]",
       "42",
       "\"ok\"",
       "null",
       "{}",
       R"({"type":7})",
       R"({"type":"ok"})",
       R"({"type":"ok","id":"7"})",
       R"({"type":"ok","id":1.5})",
       R"({"type":"ok","id":-1e400})",
       R"({"type":"message"})",
       R"({"type":"message","pts":"43","message":{}})",
       R"({"type":"message","pts":43})",
       R"({"type":"message","pts":43,"message":[]})",
       R"({"type":"message","pts":43,"message":{"chat_id":1}})",
       R"({"type":"message","pts":0,"message":{"chat_id":1,"seq":1,"message_id":"1","sender":"a","body":"b"}})",
       R"({"type":"message","pts":1,"message":{"chat_id":1,"seq":0,"message_id":"1","sender":"a","body":"b"}})",
       R"({"type":"message","pts":1,"message":{"chat_id":1,"seq":1,"message_id":1,"sender":"a","body":"b"}})",
       R"({"type":"message","pts":18446744073709551615,"message":{}})",
       "{\"type\":\"ok\",\"id\":1",
       "{\"type\":\"\xff\xfe\"}",
       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]"}) {
    ServerFrame f = DecodeServerFrame(bad);
    EXPECT_TRUE(std::holds_alternative<MalformedFrame>(f)) << bad << " -> index " << f.index();
  }
}

TEST(WireDecodeTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,0123456789.-eEtruefalsnl \\typeokidresultmessagepts";
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    int n = static_cast<int>(rng() % 80);
    for (int k = 0; k < n; ++k) {
      s += rng() % 8 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    (void)DecodeServerFrame(s);
  }
  SUCCEED();
}

// ---- results

TEST(WireResultTest, Auth) {
  AuthInfo a = DecodeAuthResult(json::parse(R"({"user":"alice","device_id":"d1","pts":42})"));
  EXPECT_EQ(a.user, "alice");
  EXPECT_EQ(a.device_id, "d1");
  EXPECT_EQ(a.pts, 42);
  EXPECT_EQ(BadResponse([] { DecodeAuthResult(json::parse(R"({"user":"alice"})")); }),
            errc::kBadResponse);
  EXPECT_EQ(BadResponse([] { DecodeAuthResult(json::parse("null")); }), errc::kBadResponse);
}

TEST(WireResultTest, SendAck) {
  SendAck a = DecodeSendAck(json::parse(
      R"({"chat_id":12,"seq":5,"message_id":"7313459286409216001","ts":1732771200123,"pts":43,"duplicate":true})"));
  EXPECT_EQ(a.chat_id, 12);
  EXPECT_EQ(a.seq, 5);
  EXPECT_EQ(a.message_id, "7313459286409216001");
  EXPECT_EQ(a.ts, 1732771200123);
  EXPECT_EQ(a.pts, 43);
  EXPECT_TRUE(a.duplicate);
  EXPECT_EQ(BadResponse([] { DecodeSendAck(json::parse(R"({"chat_id":12,"seq":5})")); }),
            errc::kBadResponse);
}

TEST(WireResultTest, SyncUpdates) {
  SyncResult r = DecodeSyncResult(json::parse(
      std::string(R"({"updates":[{"pts":41,"kind":"message","message":)") + kMessage +
      R"(},{"pts":42,"kind":"receipt","chat_id":12}],"pts":42,"has_more":false,"limited":false})"));
  EXPECT_FALSE(r.snapshot);
  EXPECT_EQ(r.pts, 42);
  ASSERT_EQ(r.updates.size(), 2u);
  EXPECT_EQ(r.updates[0].pts, 41);
  ASSERT_TRUE(r.updates[0].message);
  EXPECT_EQ(r.updates[0].message->body, "hi bob");
  EXPECT_EQ(r.updates[1].kind, "receipt");
  EXPECT_FALSE(r.updates[1].message);
}

TEST(WireResultTest, SyncReceiptUpdates) {
  SyncResult r = DecodeSyncResult(json::parse(
      R"({"updates":[{"pts":47,"kind":"read","receipt":{"chat_id":12,"user":"bob","kind":"read","seq":5,"ts":9}},)"
      R"({"pts":48,"kind":"delivered","receipt":{"chat_id":12,"user":"bob","seq":6}},)"
      R"({"pts":49,"kind":"reaction","reaction":{"x":1}}],"pts":49,"has_more":false})"));
  ASSERT_EQ(r.updates.size(), 3u);
  EXPECT_EQ(r.updates[0].kind, "read");
  ASSERT_TRUE(r.updates[0].receipt);
  EXPECT_EQ(*r.updates[0].receipt, (Receipt{12, "bob", "read", 5, 9}));
  EXPECT_FALSE(r.updates[0].message);
  ASSERT_TRUE(r.updates[1].receipt);
  EXPECT_EQ(r.updates[1].receipt->kind, "delivered");  // from the update's kind
  EXPECT_EQ(r.updates[2].kind, "reaction");            // unknown: advances the cursor only
  EXPECT_FALSE(r.updates[2].receipt);
  EXPECT_FALSE(r.updates[2].message);
  for (const char* bad : {
           R"({"pts":2,"updates":[{"pts":2,"kind":"read"}]})",
           R"({"pts":2,"updates":[{"pts":2,"kind":"delivered","receipt":{"chat_id":12}}]})",
           R"({"pts":2,"updates":[{"pts":2,"kind":"read","receipt":"x"}]})",
       }) {
    EXPECT_EQ(BadResponse([&] { DecodeSyncResult(json::parse(bad)); }), errc::kBadResponse) << bad;
  }
}

TEST(WireResultTest, MarkTypingPresenceSettings) {
  MarkResult m = DecodeMarkResult(
      json::parse(R"({"chat_id":12,"kind":"read","seq":5,"advanced":true,"unread":0,"pts":46})"));
  EXPECT_EQ(m.chat_id, 12);
  EXPECT_EQ(m.kind, "read");
  EXPECT_EQ(m.seq, 5);
  EXPECT_TRUE(m.advanced);
  EXPECT_EQ(m.unread, 0);
  EXPECT_EQ(m.pts, 46);
  EXPECT_EQ(
      json::value(ToJson(m)),
      json::parse(R"({"chat_id":12,"kind":"read","seq":5,"advanced":true,"unread":0,"pts":46})"));
  MarkResult not_moved = DecodeMarkResult(
      json::parse(R"({"chat_id":12,"kind":"delivered","seq":9,"advanced":false})"));
  EXPECT_FALSE(not_moved.advanced);
  EXPECT_EQ(not_moved.pts, 0);
  for (const char* bad : {R"({})", R"({"chat_id":12})", R"({"chat_id":12,"seq":"5"})",
                          R"({"chat_id":12,"seq":5,"advanced":1})", R"([])"}) {
    EXPECT_EQ(BadResponse([&] { DecodeMarkResult(json::parse(bad)); }), errc::kBadResponse) << bad;
  }

  EXPECT_TRUE(DecodeTypingResult(json::parse(R"({"forwarded":true})")));
  EXPECT_FALSE(DecodeTypingResult(json::parse(R"({"forwarded":false})")));
  EXPECT_EQ(BadResponse([] { DecodeTypingResult(json::parse(R"({"forwarded":"no"})")); }),
            errc::kBadResponse);

  auto statuses = DecodePresenceResult(json::parse(
      R"({"presence":[{"user":"bob","online":true},{"user":"carol","online":false,"last_seen":1732771100000},{"user":"dave","hidden":true}]})"));
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].online);
  EXPECT_EQ(statuses[1].last_seen, 1732771100000);
  EXPECT_TRUE(statuses[2].hidden);
  EXPECT_EQ(BadResponse([] { DecodePresenceResult(json::parse(R"({})")); }), errc::kBadResponse);

  EXPECT_EQ(DecodeSettings(json::parse(R"({"presence":"contacts"})")).presence, "contacts");
  EXPECT_EQ(BadResponse([] { DecodeSettings(json::parse(R"({"presence":1})")); }),
            errc::kBadResponse);
}

TEST(WireResultTest, ChatsWithReadState) {
  ChatList l = DecodeChatList(json::parse(R"({"chats":[
    {"chat_id":31,"kind":"group","name":"team","large":false,"member":true,"last_seq":9,"last_message":null,
     "unread":2,"read_seq":7,"delivered_seq":9,
     "reads":[{"user":"bob","read_seq":9,"delivered_seq":9},{"user":"carol","read_seq":4,"delivered_seq":8}]},
    {"chat_id":12,"kind":"direct","peer":"bob","last_seq":5,"last_message":null,
     "unread":0,"read_seq":5,"delivered_seq":5,"peer_read_seq":4,"peer_delivered_seq":5}],
    "has_more":false,"pts":43,"unread_total":2,"unread_chats":1})"));
  ASSERT_EQ(l.chats.size(), 2u);
  EXPECT_EQ(l.unread_total, 2);
  EXPECT_EQ(l.unread_chats, 1);
  const ChatSummary& g = l.chats[0];
  EXPECT_EQ(g.unread, 2);
  EXPECT_EQ(g.read_seq, 7);
  EXPECT_EQ(g.delivered_seq, 9);
  EXPECT_EQ(g.reads, (std::vector<ReadPosition>{{"bob", 9, 9}, {"carol", 4, 8}}));
  const ChatSummary& d = l.chats[1];
  EXPECT_EQ(d.peer_read_seq, 4);
  EXPECT_EQ(d.peer_delivered_seq, 5);
  EXPECT_TRUE(d.reads.empty());

  json::object back = ToJson(l);
  EXPECT_EQ(back["unread_total"], 2);
  EXPECT_EQ(back["unread_chats"], 1);
  json::object gj = back["chats"].as_array()[0].as_object();
  EXPECT_EQ(gj["unread"], 2);
  EXPECT_EQ(gj["reads"].as_array().size(), 2u);
  EXPECT_FALSE(gj.contains("peer_read_seq"));
  json::object dj = back["chats"].as_array()[1].as_object();
  EXPECT_EQ(dj["peer_read_seq"], 4);
  EXPECT_EQ(dj["peer_delivered_seq"], 5);
  EXPECT_FALSE(dj.contains("reads"));

  // A server without read state: zeros.
  ChatList old = DecodeChatList(json::parse(
      R"({"chats":[{"chat_id":12,"kind":"direct","peer":"bob","last_seq":5}],"pts":1})"));
  EXPECT_EQ(old.chats[0].unread, 0);
  EXPECT_EQ(old.unread_total, 0);
  for (const char* bad :
       {R"({"chats":[{"chat_id":12,"unread":-1}]})",
        R"({"chats":[{"chat_id":12,"reads":[{"read_seq":1}]}]})",
        R"({"chats":[{"chat_id":12,"reads":{}}]})", R"({"chats":[],"unavailable":[0]})",
        R"({"chats":[],"unavailable":["31"]})", R"({"chats":[],"unavailable":31})"}) {
    EXPECT_EQ(BadResponse([&] { DecodeChatList(json::parse(bad)); }), errc::kBadResponse) << bad;
  }
  // Chats whose storage server is down (a cluster): named, and kept in the CLI's JSON.
  EXPECT_TRUE(old.unavailable.empty());
  EXPECT_FALSE(ToJson(old).contains("unavailable"));
  ChatList part = DecodeChatList(json::parse(R"({"chats":[],"unavailable":[31,57]})"));
  EXPECT_EQ(part.unavailable, (std::vector<int64_t>{31, 57}));
  EXPECT_EQ(ToJson(part).at("unavailable"), json::parse("[31,57]"));
}

TEST(WireResultTest, SyncSnapshot) {
  SyncResult r = DecodeSyncResult(json::parse(
      std::string(R"({"snapshot":true,"limited":true,"pts":42,"updates":[],"has_more":false,)") +
      R"("chats":[{"chat_id":12,"kind":"direct","peer":"bob","last_seq":5,"messages":[)" +
      kMessage + R"(],"has_more":true}]})"));
  EXPECT_TRUE(r.snapshot);
  EXPECT_TRUE(r.limited);
  EXPECT_EQ(r.pts, 42);
  ASSERT_EQ(r.chats.size(), 1u);
  EXPECT_EQ(r.chats[0].chat_id, 12);
  EXPECT_EQ(r.chats[0].peer, "bob");
  EXPECT_EQ(r.chats[0].last_seq, 5);
  ASSERT_EQ(r.chats[0].messages.size(), 1u);
  EXPECT_TRUE(r.chats[0].has_more);
  EXPECT_TRUE(r.unavailable.empty());
  SyncResult part =
      DecodeSyncResult(json::parse(R"({"snapshot":true,"pts":42,"chats":[],"unavailable":[31]})"));
  EXPECT_EQ(part.unavailable, (std::vector<int64_t>{31}));
}

TEST(WireResultTest, SyncRejectsBadShapes) {
  for (const char* bad :
       {R"({})", R"({"pts":-1})", R"({"pts":1,"updates":{}})", R"({"pts":1,"updates":[{"pts":2}]})",
        R"({"pts":1,"updates":[{"pts":0,"kind":"receipt"}]})", R"({"pts":1,"chats":[{}]})",
        R"({"pts":1,"snapshot":"yes"})", R"({"pts":1,"unavailable":[-4]})"}) {
    EXPECT_EQ(BadResponse([&] { DecodeSyncResult(json::parse(bad)); }), errc::kBadResponse) << bad;
  }
}

TEST(WireResultTest, HistoryAndChats) {
  HistoryPage h = DecodeHistoryPage(json::parse(std::string(R"({"chat_id":12,"messages":[)") +
                                                kMessage + R"(],"has_more":true})"));
  EXPECT_EQ(h.chat_id, 12);
  ASSERT_EQ(h.messages.size(), 1u);
  EXPECT_TRUE(h.has_more);
  HistoryPage none =
      DecodeHistoryPage(json::parse(R"({"chat_id":0,"messages":[],"has_more":false})"));
  EXPECT_EQ(none.chat_id, 0);

  ChatList l = DecodeChatList(json::parse(
      std::string(
          R"({"chats":[{"chat_id":12,"kind":"direct","peer":"bob","last_seq":5,"last_message":)") +
      kMessage +
      R"(},{"chat_id":13,"kind":"direct","peer":"carol","last_seq":0,"last_message":null}],"has_more":false,"pts":43})"));
  ASSERT_EQ(l.chats.size(), 2u);
  EXPECT_EQ(l.chats[0].peer, "bob");
  EXPECT_TRUE(l.chats[0].member);
  EXPECT_FALSE(l.chats[0].large);
  ASSERT_TRUE(l.chats[0].last_message);
  EXPECT_FALSE(l.chats[1].last_message);
  EXPECT_EQ(l.pts, 43);
}

TEST(WireResultTest, GroupChats) {
  ChatList l = DecodeChatList(json::parse(
      R"({"chats":[{"chat_id":31,"kind":"group","name":"team","large":true,"member":false,"last_seq":9,"last_message":null}],"has_more":false,"pts":43})"));
  ASSERT_EQ(l.chats.size(), 1u);
  EXPECT_EQ(l.chats[0].kind, "group");
  EXPECT_EQ(l.chats[0].name, "team");
  EXPECT_TRUE(l.chats[0].large);
  EXPECT_FALSE(l.chats[0].member);
  json::object back = ToJson(l.chats[0]);
  EXPECT_EQ(back["name"], "team");
  EXPECT_EQ(back["large"], true);
  EXPECT_FALSE(back.contains("peer"));
}

TEST(WireResultTest, HttpBodies) {
  LoginResult l = DecodeLoginResult(
      json::parse(R"({"user":"alice","device_id":"d3f9a0c1b2e4d5f60","token":"pt_x"})"));
  EXPECT_EQ(l.token, "pt_x");
  EXPECT_EQ(DecodeRegisterResult(json::parse(R"({"user":"alice"})")), "alice");
  auto e = DecodeHttpError(R"({"error":{"code":"username_taken","message":"taken"}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->first, "username_taken");
  EXPECT_EQ(e->second, "taken");
  EXPECT_FALSE(DecodeHttpError("<html>502</html>"));
  EXPECT_FALSE(DecodeHttpError(R"({"error":"x"})"));
}

TEST(WireToJsonTest, MessageRoundTrip) {
  Message m = DecodeMessage(json::parse(kMessage));
  EXPECT_EQ(DecodeMessage(json::value(ToJson(m))), m);
  EXPECT_EQ(json::value(ToJson(m)), json::parse(kMessage));
}

// ---- media (docs/MEDIA.md "Media messages", "HTTP API")

// The example of MEDIA.md, with full-length ids.
const std::string kMediaId(64, 'a');
const std::string kThumbId(64, 'b');

std::string MediaPush() {
  return R"({"type":"message","pts":51,"message":{"chat_id":12,"seq":9,"message_id":"73134",)"
         R"("sender":"alice","to":"bob","kind":"media","ts":1732771200123,"client_msg_id":"c-42",)"
         R"("media":{"id":")" +
         kMediaId +
         R"(","type":"image/jpeg","kind":"image","size":48213,)"
         R"("name":"cat.jpg","width":1024,"height":768,"caption":"our cat",)"
         R"("thumbnail":{"id":")" +
         kThumbId + R"(","width":320,"height":240}}}})";
}

TEST(WireMediaTest, EncodeSendMedia) {
  EXPECT_EQ(Parse(EncodeSendMedia(7, Target::User("bob"), "c-42",
                                  MediaSend{kMediaId, "cat.jpg", "our cat"})),
            Parse(R"({"type":"send","id":7,"to":"bob","client_msg_id":"c-42",)"
                  R"("media":{"id":")" +
                  kMediaId + R"(","name":"cat.jpg","caption":"our cat"}})"));
  // No name, no caption: only the id; to a chat by id; never a body.
  json::object o = Parse(EncodeSendMedia(8, Target::Chat(31), "c-43", MediaSend{kMediaId, {}, {}}));
  EXPECT_EQ(o, Parse(R"({"type":"send","id":8,"chat_id":31,"client_msg_id":"c-43",)"
                     R"("media":{"id":")" +
                     kMediaId + R"("}})"));
  EXPECT_FALSE(o.contains("body"));
}

TEST(WireMediaTest, MediaMessagePush) {
  auto push = As<MessagePush>(MediaPush());
  ASSERT_TRUE(push.update.message);
  const Message& m = *push.update.message;
  EXPECT_EQ(push.update.pts, 51);
  EXPECT_EQ(m.kind, "media");
  EXPECT_EQ(m.body, "");
  ASSERT_TRUE(m.media);
  EXPECT_EQ(m.media->id, kMediaId);
  EXPECT_EQ(m.media->type, "image/jpeg");
  EXPECT_EQ(m.media->kind, "image");
  EXPECT_EQ(m.media->size, 48213);
  EXPECT_EQ(m.media->name, "cat.jpg");
  EXPECT_EQ(m.media->width, 1024);
  EXPECT_EQ(m.media->height, 768);
  EXPECT_EQ(m.media->caption, "our cat");
  ASSERT_TRUE(m.media->thumbnail);
  EXPECT_EQ(m.media->thumbnail->id, kThumbId);
  EXPECT_EQ(m.media->thumbnail->width, 320);
  EXPECT_EQ(m.media->thumbnail->height, 240);
  EXPECT_EQ(m.media->thumbnail->type, "");
}

TEST(WireMediaTest, MinimalMediaMessageAndInHistory) {
  // A file: no name, caption, dimensions or thumbnail.
  std::string msg = R"({"chat_id":12,"seq":3,"message_id":"1","sender":"alice","kind":"media",)"
                    R"("media":{"id":")" +
                    kMediaId +
                    R"(","type":"application/pdf","kind":"file",)"
                    R"("size":10}})";
  Message m = DecodeMessage(json::parse(msg));
  ASSERT_TRUE(m.media);
  EXPECT_EQ(m.media->kind, "file");
  EXPECT_EQ(m.media->name, "");
  EXPECT_EQ(m.media->width, 0);
  EXPECT_FALSE(m.media->thumbnail);
  HistoryPage page = DecodeHistoryPage(json::parse(R"({"chat_id":12,"messages":[)" + msg + "," +
                                                   kMessage + R"(],"has_more":false})"));
  ASSERT_EQ(page.messages.size(), 2u);
  EXPECT_TRUE(page.messages[0].media);
  EXPECT_FALSE(page.messages[1].media);
}

TEST(WireMediaTest, BadMediaMessages) {
  auto message = [](const std::string& extra) {
    return R"({"type":"message","pts":1,"message":{"chat_id":12,"seq":1,"message_id":"1",)"
           R"("sender":"alice","kind":"media")" +
           extra + "}}";
  };
  As<MalformedFrame>(message(""));                                       // kind media, no media
  As<MalformedFrame>(message(R"(,"media":"x")"));                        // not an object
  As<MalformedFrame>(message(R"(,"media":{"type":"image/png"})"));       // no id
  As<MalformedFrame>(message(R"(,"media":{"id":""})"));                  // empty id
  As<MalformedFrame>(message(R"(,"media":{"id":"x","size":-1})"));       // negative size
  As<MalformedFrame>(message(R"(,"media":{"id":"x","thumbnail":{}})"));  // thumbnail without id
  auto ok = As<MessagePush>(message(R"(,"media":{"id":"x","future":{"field":1}})"));
  ASSERT_TRUE(ok.update.message && ok.update.message->media);
  EXPECT_EQ(ok.update.message->media->kind, "file");  // default when not given
}

TEST(WireMediaTest, MediaMessageToJsonRoundTrip) {
  json::object push = Parse(MediaPush());
  const json::value& original = push["message"];
  Message m = DecodeMessage(original);
  json::object out = ToJson(m);
  EXPECT_FALSE(out.contains("body"));  // media messages have no body
  EXPECT_EQ(DecodeMessage(json::value(out)), m);
  EXPECT_EQ(json::value(out), original);
  // A caption-less media message with a body (a later version) keeps the body.
  m.body = "x";
  EXPECT_EQ(ToJson(m)["body"], "x");
}

TEST(WireMediaTest, UploadResultAndSignedUrl) {
  MediaInfo info = DecodeMediaInfo(json::parse(
      R"({"id":")" + kMediaId +
      R"(","type":"image/jpeg","kind":"image","size":48213,)"
      R"("width":1024,"height":768,"thumbnail":{"id":")" +
      kThumbId + R"(","type":"image/jpeg","kind":"image","size":9120,"width":320,"height":240}})"));
  EXPECT_EQ(info.id, kMediaId);
  EXPECT_EQ(info.size, 48213);
  EXPECT_EQ(info.width, 1024);
  ASSERT_TRUE(info.thumbnail);
  EXPECT_EQ(info.thumbnail->type, "image/jpeg");
  EXPECT_EQ(info.thumbnail->size, 9120);
  EXPECT_EQ(info.thumbnail->height, 240);
  EXPECT_EQ(DecodeMediaInfo(json::value(ToJson(info))), info);

  MediaInfo file = DecodeMediaInfo(
      json::parse(R"({"id":")" + kMediaId + R"(","type":"text/plain","kind":"file","size":5})"));
  EXPECT_FALSE(file.thumbnail);
  EXPECT_EQ(file.width, 0);
  json::object file_json = ToJson(file);
  EXPECT_FALSE(file_json.contains("width"));
  EXPECT_FALSE(file_json.contains("thumbnail"));
  EXPECT_EQ(BadResponse([] { DecodeMediaInfo(json::parse(R"({"type":"text/plain"})")); }),
            "bad_response");
  EXPECT_EQ(BadResponse([] { DecodeMediaInfo(json::parse(R"([1])")); }), "bad_response");

  SignedMediaUrl url =
      DecodeSignedMediaUrl(json::parse(R"({"url":"/v1/media/)" + kMediaId +
                                       R"(?exp=1764343200&sig=4c1f","expires_at":1764343200})"));
  EXPECT_EQ(url.url, "/v1/media/" + kMediaId + "?exp=1764343200&sig=4c1f");
  EXPECT_EQ(url.expires_at, 1764343200);
  EXPECT_EQ(BadResponse([] { DecodeSignedMediaUrl(json::parse(R"({"expires_at":1})")); }),
            "bad_response");
}

}  // namespace
}  // namespace parley::wire
