#include "proto/frames.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace parley::proto {
namespace {

ParseLimits limits;

Request ok(std::string_view text) {
  auto r = parse_request(text, limits);
  if (auto* e = std::get_if<RequestError>(&r)) ADD_FAILURE() << text << ": " << e->error.message;
  return std::get<Request>(r);
}

RequestError err(std::string_view text) {
  auto r = parse_request(text, limits);
  if (std::holds_alternative<Request>(r)) {
    ADD_FAILURE() << "accepted: " << text;
    return {};
  }
  return std::get<RequestError>(r);
}

TEST(Frames, ParsesEveryRequestType) {
  auto a = ok(R"({"type":"auth","id":1,"token":"t"})");
  EXPECT_EQ(a.type, RequestType::auth);
  EXPECT_EQ(std::get<AuthRequest>(a.body).token, "t");
  auto s = ok(R"({"type":"send","id":2,"to":"bob","client_msg_id":"c","body":"hi","extra":1})");
  EXPECT_EQ(std::get<SendRequest>(s.body).to, "bob");
  auto s2 =
      ok(R"({"type":"send","id":2,"chat_id":7,"client_msg_id":"c","body":"hi","kind":"text"})");
  EXPECT_EQ(std::get<SendRequest>(s2.body).chat_id, 7u);
  auto y = ok(R"({"type":"sync","id":3})");
  EXPECT_FALSE(std::get<SyncRequest>(y.body).pts.has_value());
  auto y2 = ok(R"({"type":"sync","id":3,"pts":0,"limit":5})");
  EXPECT_EQ(*std::get<SyncRequest>(y2.body).pts, 0u);
  EXPECT_EQ(std::get<SyncRequest>(y2.body).limit, 5u);
  auto h = ok(R"({"type":"history","id":4,"with":"bob","before_seq":9,"limit":3})");
  EXPECT_EQ(std::get<HistoryRequest>(h.body).before_seq, 9u);
  EXPECT_EQ(ok(R"({"type":"chats","id":5})").type, RequestType::chats);
  EXPECT_EQ(ok(R"({"type":"ping","id":6})").id, 6u);
}

TEST(Frames, RejectsBadInputWithCodes) {
  EXPECT_EQ(err("{not json").error.code, Errc::bad_request);
  EXPECT_EQ(err("[1,2]").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"ping"})").error.code, Errc::bad_request);  // no id
  EXPECT_FALSE(err(R"({"type":"ping"})").id.has_value());
  auto u = err(R"({"type":"teleport","id":9})");
  EXPECT_EQ(u.error.code, Errc::unknown_type);
  EXPECT_EQ(*u.id, 9u);
  EXPECT_EQ(err(R"({"type":"send","id":1,"to":"bob","body":"x"})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"send","id":1,"to":"bob","chat_id":3,"client_msg_id":"c","body":"x"})")
                .error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"send","id":1,"to":5,"client_msg_id":"c","body":"x"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"send","id":1,"to":"bob","client_msg_id":"c","body":""})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"send","id":-1})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"sync","id":1,"limit":0})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"sync","id":1,"limit":100000})").error.code, Errc::bad_request);
  std::string big = R"({"type":"send","id":1,"to":"bob","client_msg_id":"c","body":")" +
                    std::string(5000, 'a') + "\"}";
  EXPECT_EQ(err(big).error.code, Errc::too_large);
  EXPECT_EQ(
      err(R"({"type":"send","id":1,"to":"bob","client_msg_id":"c","body":"\ud800"})").error.code,
      Errc::invalid_utf8);
  EXPECT_EQ(
      err("{\"type\":\"send\",\"id\":1,\"to\":\"bob\",\"client_msg_id\":\"c\",\"body\":\"\xff\"}")
          .error.code,
      Errc::bad_request);
  std::string deep(100, '[');
  EXPECT_EQ(err(deep).error.code, Errc::bad_request);
}

TEST(Frames, SerializesValidJson) {
  store::Message m;
  m.chat_id = 3;
  m.seq = 4;
  m.message_id = 7313459286409216001ull;
  m.ts = 1700000000000;
  m.sender = "alice";
  m.to = "bob";
  m.body = "quote \" and <b> \n";
  m.client_msg_id = "c1";
  auto push = boost::json::parse(message_push(9, message_json(m))).as_object();
  EXPECT_EQ(push.at("pts").as_int64(), 9);
  EXPECT_EQ(push.at("message").at("body").as_string(), m.body);
  EXPECT_EQ(push.at("message").at("message_id").as_string(), "7313459286409216001");
  auto e = boost::json::parse(error_frame(std::nullopt, {Errc::rate_limited, "slow down"}, 250))
               .as_object();
  EXPECT_TRUE(e.at("id").is_null());
  EXPECT_EQ(e.at("code").as_string(), "rate_limited");
  EXPECT_TRUE(e.at("retryable").as_bool());
  EXPECT_EQ(e.at("retry_after_ms").as_int64(), 250);
  store::Snapshot snap;
  snap.pts = 5;
  snap.chats.push_back({store::ChatSummary{3, store::ChatKind::direct, "bob", 4, 5, m}, {m}, true});
  auto s = boost::json::parse(snapshot_json(snap, true)).as_object();
  EXPECT_TRUE(s.at("limited").as_bool());
  EXPECT_EQ(s.at("chats").as_array().size(), 1u);
  store::ChatList list;
  list.chats.push_back(snap.chats[0].chat);
  EXPECT_NO_THROW(boost::json::parse(chats_json(list)));
  store::UpdatesPage page;
  page.updates.push_back({1, store::UpdateKind::message, m});
  EXPECT_NO_THROW(boost::json::parse(updates_json(page)));
  EXPECT_NO_THROW(boost::json::parse(history_json({3, {m}, false})));
}

}  // namespace
}  // namespace parley::proto
