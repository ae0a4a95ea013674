#include "proto/frames.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <random>

#include "common/utf8.h"

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
  EXPECT_EQ(*err(R"({"type":"send","id":77,"to":"bob","client_msg_id":"c","body":"a\udc00b"})").id,
            77u);
  EXPECT_EQ(
      err("{\"type\":\"send\",\"id\":1,\"to\":\"bob\",\"client_msg_id\":\"c\",\"body\":\"\xff\"}")
          .error.code,
      Errc::bad_request);
  std::string deep(100, '[');
  EXPECT_EQ(err(deep).error.code, Errc::bad_request);
}

constexpr size_t kBig = 64 << 20;  // a byte budget no test page reaches

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
  snap.chats.push_back(
      {store::ChatSummary{
           3, store::ChatKind::direct, "bob", 4, 5, m, "", false, true, 0, 0, 0, 0, {}},
       {m},
       true});
  auto s = boost::json::parse(snapshot_json(snap, true, kBig)).as_object();
  EXPECT_TRUE(s.at("limited").as_bool());
  EXPECT_EQ(s.at("chats").as_array().size(), 1u);
  EXPECT_FALSE(s.contains("unavailable"));  // only when some chats could not be read
  store::ChatList list;
  list.chats.push_back(snap.chats[0].chat);
  auto l = boost::json::parse(chats_json(list, kBig)).as_object();
  EXPECT_FALSE(l.contains("unavailable"));
  // Chats whose storage server is down: named, so that the client asks for them later.
  snap.unavailable = list.unavailable = {12, 31};
  s = boost::json::parse(snapshot_json(snap, false, kBig)).as_object();
  EXPECT_EQ(s.at("unavailable"), boost::json::parse("[12,31]"));
  EXPECT_EQ(s.at("chats").as_array().size(), 1u);
  l = boost::json::parse(chats_json(list, kBig)).as_object();
  EXPECT_EQ(l.at("unavailable"), boost::json::parse("[12,31]"));
  EXPECT_EQ(l.at("chats").as_array().size(), 1u);
  store::UpdatesPage page;
  page.updates.push_back({1, store::UpdateKind::message, m, {}});
  EXPECT_NO_THROW(boost::json::parse(updates_json(page, kBig)));
  EXPECT_NO_THROW(boost::json::parse(history_json({3, {m}, false}, false, kBig)));
}

TEST(Frames, ParsesGroupRequests) {
  auto c = ok(R"({"type":"group_create","id":1,"name":"team","members":["bob","carol"]})");
  EXPECT_EQ(c.type, RequestType::group);
  auto& g = std::get<GroupRequest>(c.body);
  EXPECT_EQ(g.op, store::GroupOp::create);
  EXPECT_EQ(g.users, (std::vector<std::string>{"bob", "carol"}));
  auto empty = ok(R"({"type":"group_create","id":1,"name":"solo"})");
  EXPECT_TRUE(std::get<GroupRequest>(empty.body).users.empty());
  auto rm = ok(R"({"type":"group_remove","id":2,"chat_id":5,"user":"bob"})");
  EXPECT_EQ(std::get<GroupRequest>(rm.body).op, store::GroupOp::remove);
  EXPECT_EQ(std::get<GroupRequest>(rm.body).users[0], "bob");
  auto set = ok(R"({"type":"group_settings","id":3,"chat_id":5,"full_history":true})");
  EXPECT_TRUE(std::get<GroupRequest>(set.body).full_history);
  EXPECT_EQ(ok(R"({"type":"group_info","id":4,"chat_id":5})").type, RequestType::group_info);
  EXPECT_EQ(ok(R"({"type":"group_delete","id":4,"chat_id":5})").type, RequestType::group);
  auto h = ok(R"({"type":"history","id":4,"chat_id":5,"after_seq":9})");
  EXPECT_EQ(std::get<HistoryRequest>(h.body).after_seq, 9u);
  EXPECT_EQ(
      std::get<HistoryRequest>(ok(R"({"type":"history","id":4,"chat_id":5,"after_seq":0})").body)
          .after_seq,
      0u);
  EXPECT_EQ(err(R"({"type":"history","id":4,"chat_id":5,"after_seq":0,"before_seq":3})").error.code,
            Errc::bad_request);

  EXPECT_EQ(err(R"({"type":"group_create","id":1,"members":["bob"]})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_create","id":1,"name":"x","members":"bob"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_create","id":1,"name":"x","members":[1]})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_add","id":1,"chat_id":5,"users":[]})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_remove","id":1,"chat_id":5})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_rename","id":1,"name":"x"})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_settings","id":1,"chat_id":5,"full_history":1})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"group_explode","id":1,"chat_id":5})").error.code, Errc::unknown_type);
  std::string long_name =
      R"({"type":"group_create","id":1,"name":")" + std::string(200, 'n') + "\"}";
  EXPECT_EQ(err(long_name).error.code, Errc::too_large);
  EXPECT_EQ(err(R"({"type":"history","id":4,"chat_id":5,"after_seq":9,"before_seq":3})").error.code,
            Errc::bad_request);
}

TEST(Frames, SerializesGroupResults) {
  store::Message ev;
  ev.chat_id = 7;
  ev.seq = 1;
  ev.sender = "alice";
  ev.kind = store::MessageKind::event;
  ev.body = R"({"event":"created","by":"alice"})";
  auto m = boost::json::parse(chat_push(message_json(ev))).as_object();
  EXPECT_FALSE(m.contains("pts"));
  EXPECT_EQ(m.at("message").at("event").at("event").as_string(), "created");
  store::GroupResult r;
  r.chat.chat_id = 7;
  r.chat.name = "team \"x\"";
  r.chat.member_count = 3;
  r.event.message = ev;
  auto g = boost::json::parse(group_result_json(r)).as_object();
  EXPECT_EQ(g.at("chat").at("name").as_string(), "team \"x\"");
  store::ChatInfo info = r.chat;
  info.members.push_back({"alice", store::Role::owner, 1, 0});
  auto i = boost::json::parse(group_info_json(info)).as_object();
  EXPECT_EQ(i.at("chat").at("members").as_array().size(), 1u);
  EXPECT_TRUE(i.at("chat").at("members_truncated").as_bool());
}

TEST(Frames, ParsesReceiptTypingPresenceAndSettings) {
  auto r = ok(R"({"type":"mark_read","id":1,"chat_id":12})");
  EXPECT_EQ(r.type, RequestType::mark);
  EXPECT_EQ(std::get<MarkRequest>(r.body).kind, store::UpdateKind::read);
  EXPECT_FALSE(std::get<MarkRequest>(r.body).seq.has_value());
  auto d = ok(R"({"type":"mark_delivered","id":2,"with":"bob","seq":5})");
  EXPECT_EQ(std::get<MarkRequest>(d.body).kind, store::UpdateKind::delivered);
  EXPECT_EQ(*std::get<MarkRequest>(d.body).seq, 5u);
  EXPECT_EQ(std::get<MarkRequest>(d.body).with, "bob");
  EXPECT_EQ(err(R"({"type":"mark_delivered","id":3,"chat_id":12})").error.code,
            Errc::bad_request);  // delivered needs a seq
  EXPECT_EQ(err(R"({"type":"mark_read","id":3,"chat_id":12,"seq":0})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"mark_read","id":3})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"mark_read","id":3,"chat_id":1,"with":"bob"})").error.code,
            Errc::bad_request);

  auto t = ok(R"({"type":"typing","id":4,"chat_id":12,"state":"stop"})");
  EXPECT_FALSE(std::get<TypingRequest>(t.body).start);
  EXPECT_EQ(err(R"({"type":"typing","id":4,"chat_id":12,"state":"dancing"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"typing","id":4,"chat_id":12})").error.code, Errc::bad_request);

  auto ps = ok(R"({"type":"presence_subscribe","id":5,"users":["bob","carol"]})");
  EXPECT_TRUE(std::get<PresenceRequest>(ps.body).subscribe);
  EXPECT_EQ(std::get<PresenceRequest>(ps.body).users.size(), 2u);
  auto pu = ok(R"({"type":"presence_unsubscribe","id":6,"all":true})");
  EXPECT_TRUE(std::get<PresenceRequest>(pu.body).all);
  EXPECT_EQ(err(R"({"type":"presence_subscribe","id":7,"users":[]})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"presence_subscribe","id":7,"users":"bob"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"presence_unsubscribe","id":7,"all":"yes"})").error.code,
            Errc::bad_request);

  auto st = ok(R"({"type":"settings","id":8,"presence":"contacts"})");
  EXPECT_EQ(*std::get<SettingsRequest>(st.body).presence, store::PresenceVisibility::contacts);
  EXPECT_FALSE(std::get<SettingsRequest>(ok(R"({"type":"settings","id":9})").body).presence);
  EXPECT_EQ(err(R"({"type":"settings","id":9,"presence":"friends"})").error.code,
            Errc::bad_request);
}

TEST(Frames, SerializesReceiptsAndReadState) {
  store::Receipt rc{12, "bo\"b", store::UpdateKind::read, 5, 1700000000000};
  auto push = boost::json::parse(receipt_push(47, receipt_json(rc))).as_object();
  EXPECT_EQ(push.at("type").as_string(), "receipt");
  EXPECT_EQ(push.at("pts").as_int64(), 47);
  EXPECT_EQ(push.at("receipt").at("user").as_string(), "bo\"b");
  EXPECT_EQ(push.at("receipt").at("kind").as_string(), "read");
  auto large = boost::json::parse(receipt_push(0, receipt_json(rc))).as_object();
  EXPECT_FALSE(large.contains("pts"));

  store::UpdatesPage page;
  store::Update u;
  u.pts = 3;
  u.kind = store::UpdateKind::delivered;
  u.receipt = rc;
  u.receipt.kind = store::UpdateKind::delivered;
  page.updates.push_back(u);
  auto up = boost::json::parse(updates_json(page, kBig)).as_object();
  auto first = up.at("updates").as_array()[0].as_object();
  EXPECT_EQ(first.at("kind").as_string(), "delivered");
  EXPECT_EQ(first.at("receipt").at("seq").as_int64(), 5);

  store::ChatList list;
  store::ChatSummary direct;
  direct.chat_id = 12;
  direct.peer = "bob";
  direct.last_seq = 9;
  direct.read_seq = 7;
  direct.unread = 2;
  direct.reads.push_back(store::Member{"bob", store::Role::member, 0, 0, 8, 9});
  store::ChatSummary group;
  group.chat_id = 31;
  group.kind = store::ChatKind::group;
  group.name = "team";
  group.reads.push_back(store::Member{"carol", store::Role::member, 0, 0, 1, 2});
  list.chats = {direct, group};
  list.unread_total = 2;
  list.unread_chats = 1;
  auto cj = boost::json::parse(chats_json(list, kBig)).as_object();
  EXPECT_EQ(cj.at("unread_total").as_int64(), 2);
  auto c0 = cj.at("chats").as_array()[0].as_object();
  EXPECT_EQ(c0.at("unread").as_int64(), 2);
  EXPECT_EQ(c0.at("peer_read_seq").as_int64(), 8);
  EXPECT_EQ(c0.at("peer_delivered_seq").as_int64(), 9);
  auto c1 = cj.at("chats").as_array()[1].as_object();
  EXPECT_EQ(c1.at("reads").as_array()[0].at("user").as_string(), "carol");

  store::ReceiptResult rr;
  rr.receipt = rc;
  rr.advanced = true;
  rr.unread = 0;
  rr.user_pts = 46;
  auto mr = boost::json::parse(mark_result_json(rr)).as_object();
  EXPECT_EQ(mr.at("seq").as_int64(), 5);
  EXPECT_TRUE(mr.at("advanced").as_bool());
  EXPECT_EQ(mr.at("pts").as_int64(), 46);

  auto ty = boost::json::parse(typing_push(12, "alice", true, 6000)).as_object();
  EXPECT_EQ(ty.at("expires_ms").as_int64(), 6000);
  auto stop = boost::json::parse(typing_push(12, "alice", false, 6000)).as_object();
  EXPECT_EQ(stop.at("state").as_string(), "stop");
  EXPECT_FALSE(stop.contains("expires_ms"));
  EXPECT_EQ(boost::json::parse(settings_json({store::PresenceVisibility::nobody, 0}))
                .at("presence")
                .as_string(),
            "nobody");
}

TEST(Frames, ParsesMediaSends) {
  const std::string id(64, 'a');
  auto m = ok(R"({"type":"send","id":1,"to":"bob","client_msg_id":"c","media":{"id":")" + id +
              R"(","name":"cat.jpg","caption":"hi"}})");
  const auto& s = std::get<SendRequest>(m.body);
  ASSERT_TRUE(s.media);
  EXPECT_EQ(s.media->id, id);
  EXPECT_EQ(s.media->name, "cat.jpg");
  EXPECT_EQ(s.media->caption, "hi");
  EXPECT_TRUE(s.body.empty());
  auto bare =
      ok(R"({"type":"send","id":1,"chat_id":3,"client_msg_id":"c","kind":"media","media":{"id":")" +
         id + R"("}})");
  EXPECT_TRUE(std::get<SendRequest>(bare.body).media->name.empty());

  auto head = std::string(R"({"type":"send","id":1,"to":"bob","client_msg_id":"c",)");
  EXPECT_EQ(err(head + R"("media":{"id":"../x"}})").error.code, Errc::bad_request);
  EXPECT_EQ(err(head + R"("media":{"id":")" + std::string(64, 'A') + R"("}})").error.code,
            Errc::bad_request);  // upper case is not an id
  EXPECT_EQ(err(head + R"("media":{"name":"x"}})").error.code, Errc::bad_request);
  EXPECT_EQ(err(head + R"("media":"x"})").error.code, Errc::bad_request);
  EXPECT_EQ(err(head + R"("body":"x","media":{"id":")" + id + R"("}})").error.code,
            Errc::bad_request);
  // Unknown fields of media are ignored like any other unknown field.
  auto extra = ok(head + R"("media":{"id":")" + id + R"(","size":5,"type":"image/heic","x":{}}})");
  EXPECT_EQ(std::get<SendRequest>(extra.body).media->id, id);
  EXPECT_EQ(err(head + R"("kind":"text","media":{"id":")" + id + R"("}})").error.code,
            Errc::bad_request);
  EXPECT_EQ(
      err(head + R"("media":{"id":")" + id + R"(","caption":")" + std::string(5000, 'c') + R"("}})")
          .error.code,
      Errc::too_large);
  EXPECT_EQ(err(head + R"("media":{"id":")" + id + R"(","name":"\ud800"}})").error.code,
            Errc::invalid_utf8);
}

TEST(Frames, SerializesMediaMessages) {
  store::Message m;
  m.chat_id = 4;
  m.seq = 2;
  m.message_id = 9;
  m.sender = "alice";
  m.to = "bob";
  m.kind = store::MessageKind::media;
  m.body = R"({"id":"ab","type":"image/png","kind":"image","size":3})";
  m.client_msg_id = "c";
  auto v = boost::json::parse(message_json(m)).as_object();
  EXPECT_EQ(v.at("kind").as_string(), "media");
  EXPECT_EQ(v.at("media").as_object().at("type").as_string(), "image/png");
  EXPECT_EQ(v.at("client_msg_id").as_string(), "c");
  EXPECT_FALSE(v.contains("body"));
}

TEST(Frames, ParsesPushMuteAndPushSettings) {
  auto r =
      ok(R"({"type":"push_register","id":1,"provider":"apns","token":"abc","app_id":"com.x"})");
  EXPECT_EQ(r.type, RequestType::push);
  const auto& p = std::get<PushRequest>(r.body);
  EXPECT_TRUE(p.register_target);
  EXPECT_EQ(p.provider, store::PushProvider::apns);
  EXPECT_EQ(p.token, "abc");
  EXPECT_EQ(p.app_id, "com.x");
  auto u = ok(R"({"type":"push_unregister","id":2})");
  EXPECT_FALSE(std::get<PushRequest>(u.body).register_target);
  EXPECT_EQ(err(R"({"type":"push_register","id":1,"provider":"sms","token":"a"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"push_register","id":1,"provider":"fcm","token":""})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"push_register","id":1,"provider":"fcm"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"push_register","id":1,"provider":"fcm","token":")" +
                std::string(5000, 't') + R"("})")
                .error.code,
            Errc::too_large);

  auto m = ok(R"({"type":"mute","id":3,"chat_id":7,"until":-1})");
  EXPECT_EQ(std::get<MuteRequest>(m.body).until, -1);
  auto m2 = ok(R"({"type":"mute","id":3,"with":"bob","until":0})");
  EXPECT_EQ(std::get<MuteRequest>(m2.body).with, "bob");
  EXPECT_EQ(err(R"({"type":"mute","id":3,"chat_id":7})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"mute","id":3,"chat_id":7,"until":-2})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"mute","id":3,"until":5})").error.code, Errc::bad_request);

  auto s = ok(R"({"type":"settings","id":4,"dnd_until":1000,"push_preview":true})");
  const auto& st = std::get<SettingsRequest>(s.body);
  EXPECT_EQ(st.dnd_until, 1000);
  EXPECT_EQ(st.push_preview, true);
  EXPECT_FALSE(st.presence);
  EXPECT_TRUE(st.changes());
  EXPECT_FALSE(std::get<SettingsRequest>(ok(R"({"type":"settings","id":4})").body).changes());
  EXPECT_EQ(err(R"({"type":"settings","id":4,"push_preview":"yes"})").error.code,
            Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"settings","id":4,"dnd_until":-5})").error.code, Errc::bad_request);
}

}  // namespace
}  // namespace parley::proto

namespace parley::proto {
namespace {

std::vector<std::string> split(std::string_view message) {
  std::vector<std::string> out;
  split_requests(message, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

TEST(Frames, SplitsAMessageIntoOneRequestPerLine) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split(R"({"a":1})"), V{R"({"a":1})"});
  EXPECT_EQ(split("{\"a\":1}\n{\"b\":2}\n"), (V{R"({"a":1})", R"({"b":2})"}));
  EXPECT_EQ(split("{\"a\":1}\r\n\n  \n{\"b\":2}"), (V{"{\"a\":1}\r", R"({"b":2})"}));
  // Newlines inside an object (pretty-printed) or escaped in a string do not split.
  EXPECT_EQ(split("{\n  \"type\": \"ping\",\n  \"id\": 1\n}"),
            V{"{\n  \"type\": \"ping\",\n  \"id\": 1\n}"});
  EXPECT_EQ(split("{\"body\":\"a\\\\\"}\n{\"body\":\"}\\n{\"}"),
            (V{"{\"body\":\"a\\\\\"}", "{\"body\":\"}\\n{\"}"}));
  EXPECT_EQ(split("[{\"a\":[1,\n2]}]\n{}"), (V{"[{\"a\":[1,\n2]}]", "{}"}));
  // Malformed text stays one piece per line; whitespace alone is one (malformed) piece.
  EXPECT_EQ(split("{\"a\":\n{not json"), V{"{\"a\":\n{not json"});
  EXPECT_EQ(split("}}\n{\"a\":1}"), (V{"}}", R"({"a":1})"}));
  EXPECT_EQ(split(""), V{""});
  EXPECT_EQ(split(" \n "), V{" \n "});
  // Each piece parses on its own.
  auto pieces = split("{\"type\":\"ping\",\"id\":1}\n{\"type\":\"ping\",\"id\":2}");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(ok(pieces[1]).id, 2u);
}

TEST(Frames, AuthMayAskForBatches) {
  EXPECT_FALSE(std::get<AuthRequest>(ok(R"({"type":"auth","id":1,"token":"t"})").body).batch);
  EXPECT_TRUE(
      std::get<AuthRequest>(ok(R"({"type":"auth","id":1,"token":"t","batch":true})").body).batch);
  EXPECT_EQ(err(R"({"type":"auth","id":1,"token":"t","batch":"yes"})").error.code,
            Errc::bad_request);
}

}  // namespace
}  // namespace parley::proto

namespace parley::proto {
namespace {

store::Message text_message(uint64_t chat, uint64_t seq, std::string body) {
  store::Message m;
  m.chat_id = chat;
  m.seq = seq;
  m.message_id = 1000 + seq;
  m.ts = 1700000000000 + static_cast<int64_t>(seq);
  m.sender = "alice";
  m.to = "bob";
  m.body = std::move(body);
  m.client_msg_id = fmt::format("c{}", seq);
  return m;
}

std::vector<uint64_t> seqs_of(const boost::json::array& messages) {
  std::vector<uint64_t> out;
  for (const auto& m : messages) out.push_back(m.at("seq").to_number<uint64_t>());
  return out;
}

// Findings of 2026-12-05: one answer larger than what a connection may queue closed the
// connection that asked. Pages now stop at a byte budget and say has_more.
TEST(Frames, PagesStopAtTheByteBudgetAndSayHasMore) {
  const size_t budget = 64 * 1024;
  const std::string body(4000, 'x');

  store::UpdatesPage page;
  for (uint64_t i = 1; i <= 100; ++i)
    page.updates.push_back({i, store::UpdateKind::message, text_message(3, i, body), {}});
  page.pts = 100;
  auto up = boost::json::parse(updates_json(page, budget)).as_object();
  EXPECT_LE(boost::json::serialize(up).size(), budget);
  const auto& ups = up.at("updates").as_array();
  ASSERT_GT(ups.size(), 5u);
  ASSERT_LT(ups.size(), 100u);
  EXPECT_TRUE(up.at("has_more").as_bool());
  // The cursor is the last update returned: asking again from it loses nothing.
  EXPECT_EQ(up.at("pts").to_number<uint64_t>(), ups.back().at("pts").to_number<uint64_t>());
  // A budget below one item still returns that item.
  auto one = boost::json::parse(updates_json(page, 100)).as_object();
  EXPECT_EQ(one.at("updates").as_array().size(), 1u);
  EXPECT_EQ(one.at("pts").to_number<uint64_t>(), 1u);
  EXPECT_TRUE(one.at("has_more").as_bool());
  // Everything fits: the page is as the store gave it.
  auto all = boost::json::parse(updates_json(page, kBig)).as_object();
  EXPECT_EQ(all.at("updates").as_array().size(), 100u);
  EXPECT_FALSE(all.at("has_more").as_bool());

  store::HistoryPage hist{3, {}, false};
  for (uint64_t i = 51; i <= 250; ++i) hist.messages.push_back(text_message(3, i, body));
  // Backwards (before_seq): the newest messages stay, older ones are for the next page.
  auto back = boost::json::parse(history_json(hist, false, budget)).as_object();
  auto back_seqs = seqs_of(back.at("messages").as_array());
  ASSERT_FALSE(back_seqs.empty());
  EXPECT_EQ(back_seqs.back(), 250u);
  EXPECT_TRUE(std::is_sorted(back_seqs.begin(), back_seqs.end()));
  EXPECT_TRUE(back.at("has_more").as_bool());
  EXPECT_LE(boost::json::serialize(back).size(), budget);
  // Forwards (after_seq): the oldest stay.
  auto fwd = boost::json::parse(history_json(hist, true, budget)).as_object();
  auto fwd_seqs = seqs_of(fwd.at("messages").as_array());
  ASSERT_FALSE(fwd_seqs.empty());
  EXPECT_EQ(fwd_seqs.front(), 51u);
  EXPECT_EQ(fwd_seqs.back(), 50u + fwd_seqs.size());
  EXPECT_TRUE(fwd.at("has_more").as_bool());

  // A snapshot of 60 chats of 20 large messages: every chat is in it, each with its newest
  // messages, and `older` counts the rest.
  store::Snapshot snap;
  snap.pts = 1200;
  for (uint64_t c = 1; c <= 60; ++c) {
    store::ChatWindow w;
    w.chat.chat_id = c;
    w.chat.kind = store::ChatKind::group;
    w.chat.name = "g" + std::to_string(c);
    w.chat.last_seq = 30;
    for (uint64_t q = 11; q <= 30; ++q) w.messages.push_back(text_message(c, q, body));
    w.has_more = true;
    w.older = 10;
    snap.chats.push_back(std::move(w));
  }
  const size_t snap_budget = 512 * 1024;
  auto sj = snapshot_json(snap, false, snap_budget);
  EXPECT_LE(sj.size(), snap_budget);
  auto so = boost::json::parse(sj).as_object();
  const auto& chats = so.at("chats").as_array();
  ASSERT_EQ(chats.size(), 60u);
  for (const auto& c : chats) {
    auto seqs = seqs_of(c.at("messages").as_array());
    ASSERT_FALSE(seqs.empty());
    EXPECT_EQ(seqs.back(), 30u);  // the newest of each chat
    EXPECT_EQ(c.at("older").to_number<uint64_t>(), 10u + (20u - seqs.size()));
    EXPECT_EQ(seqs.front(), c.at("older").to_number<uint64_t>() + 1);
    EXPECT_TRUE(c.at("has_more").as_bool());
  }
}

TEST(Frames, ChatListPagesByCursor) {
  store::ChatList list;
  for (uint64_t c = 1; c <= 50; ++c) {
    store::ChatSummary s;
    s.chat_id = 100 + c;
    s.peer = "bob";
    s.last_seq = 1;
    s.last_ts = 1700000000000 - static_cast<int64_t>(c);
    s.last_message = text_message(100 + c, 1, std::string(4000, 'y'));
    list.chats.push_back(std::move(s));
  }
  auto all = boost::json::parse(chats_json(list, kBig)).as_object();
  EXPECT_FALSE(all.at("has_more").as_bool());
  EXPECT_FALSE(all.contains("next_cursor"));
  auto cut = boost::json::parse(chats_json(list, 32 * 1024)).as_object();
  EXPECT_TRUE(cut.at("has_more").as_bool());
  const auto& shown = cut.at("chats").as_array();
  ASSERT_LT(shown.size(), 50u);
  auto cursor = parse_chat_cursor(std::string(cut.at("next_cursor").as_string()));
  ASSERT_TRUE(cursor);
  EXPECT_EQ(cursor->chat_id, shown.back().at("chat_id").to_number<uint64_t>());
  EXPECT_EQ(chat_cursor(*cursor), cut.at("next_cursor").as_string());

  for (std::string bad : {"", "1", "a.b", "1.", ".1", "-5.3", "1.2.3", "99999999999999999999.1"})
    EXPECT_FALSE(parse_chat_cursor(bad)) << bad;
  auto req = ok(R"({"type":"chats","id":1,"limit":10,"cursor":"1700000000000.31"})");
  EXPECT_EQ(std::get<ChatsRequest>(req.body).cursor.chat_id, 31u);
  EXPECT_EQ(err(R"({"type":"chats","id":1,"cursor":"x"})").error.code, Errc::bad_request);
  EXPECT_EQ(err(R"({"type":"chats","id":1,"cursor":5})").error.code, Errc::bad_request);
}

// Every string a user or a client controls, made as hostile as can be, in every frame the
// server builds by hand: the frame still parses, holds exactly one object and gives the
// strings back (invalid UTF-8 as U+FFFD), and has no raw newline (PROTOCOL.md §3.1).
TEST(Frames, HostileStringsNeverBreakAFrame) {
  std::mt19937 rng(15);
  std::string alphabet = "\"\\\n\r\t{}[],:";
  alphabet += '\0';
  alphabet += "\x7f\x80\xc3\xe2\x80\xa8\xed\xa0\x80\xff abc";
  auto hostile = [&] {
    std::string s(1 + rng() % 24, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  auto as_sent = [](const std::string& s) { return utf8_replace_invalid(s); };
  for (int round = 0; round < 2000; ++round) {
    store::Message m = text_message(7, 1 + round, hostile());
    m.sender = hostile();
    m.to = hostile();
    m.client_msg_id = hostile();
    store::Receipt r{7, hostile(), store::UpdateKind::read, 3, 5};
    store::ChatSummary c;
    c.chat_id = 7;
    c.kind = round % 2 ? store::ChatKind::group : store::ChatKind::direct;
    c.peer = hostile();
    c.name = hostile();
    c.last_message = m;
    c.reads.push_back(store::Member{hostile(), store::Role::member, 0, 0, 1, 1});
    store::ChatInfo info;
    info.chat_id = 7;
    info.name = hostile();
    info.created_by = hostile();
    info.members.push_back(store::Member{hostile(), store::Role::admin, 1, 0, 0, 0});
    store::Snapshot snap{3, {store::ChatWindow{c, {m}, false, 0}}, {}};
    store::ChatList list{{c}, false, 3, 0, 0, {}};
    store::UpdatesPage page{
        {{1, store::UpdateKind::message, m, {}}, {2, store::UpdateKind::read, {}, r}},
        2,
        false,
        false};
    const std::string message = hostile();
    const std::vector<std::string> frames = {
        message_push(1, message_json(m)),
        chat_push(message_json(m)),
        receipt_push(4, receipt_json(r)),
        typing_push(7, r.user, true, 100),
        error_frame(1, Error{Errc::bad_request, message}),
        ok_frame(1, updates_json(page, kBig)),
        ok_frame(2, snapshot_json(snap, false, kBig)),
        ok_frame(3, history_json({7, {m}, false}, false, kBig)),
        ok_frame(4, chats_json(list, kBig)),
        ok_frame(5, group_info_json(info)),
    };
    for (const auto& f : frames) {
      ASSERT_EQ(f.find('\n'), std::string::npos) << f;
      boost::json::error_code ec;
      auto v = boost::json::parse(f, ec);
      ASSERT_FALSE(ec) << "round " << round << ": " << f;
      ASSERT_TRUE(v.is_object());
    }
    auto push = boost::json::parse(frames[0]).as_object();
    EXPECT_EQ(push.at("message").at("body").as_string(), as_sent(m.body));
    EXPECT_EQ(push.at("message").at("sender").as_string(), as_sent(m.sender));
    EXPECT_EQ(push.at("message").at("client_msg_id").as_string(), as_sent(m.client_msg_id));
    auto err_frame = boost::json::parse(frames[4]).as_object();
    EXPECT_EQ(err_frame.at("message").as_string(), as_sent(message));
    auto info_frame = boost::json::parse(frames[9]).as_object();
    EXPECT_EQ(info_frame.at("result").at("chat").at("name").as_string(), as_sent(info.name));
  }
}

}  // namespace
}  // namespace parley::proto
