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
  EXPECT_EQ(*err(R"({"type":"send","id":77,"to":"bob","client_msg_id":"c","body":"a\udc00b"})").id,
            77u);
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
  snap.chats.push_back(
      {store::ChatSummary{
           3, store::ChatKind::direct, "bob", 4, 5, m, "", false, true, 0, 0, 0, 0, {}},
       {m},
       true});
  auto s = boost::json::parse(snapshot_json(snap, true)).as_object();
  EXPECT_TRUE(s.at("limited").as_bool());
  EXPECT_EQ(s.at("chats").as_array().size(), 1u);
  store::ChatList list;
  list.chats.push_back(snap.chats[0].chat);
  EXPECT_NO_THROW(boost::json::parse(chats_json(list)));
  store::UpdatesPage page;
  page.updates.push_back({1, store::UpdateKind::message, m, {}});
  EXPECT_NO_THROW(boost::json::parse(updates_json(page)));
  EXPECT_NO_THROW(boost::json::parse(history_json({3, {m}, false})));
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
  auto up = boost::json::parse(updates_json(page)).as_object();
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
  auto cj = boost::json::parse(chats_json(list)).as_object();
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
  EXPECT_EQ(err(head + R"("media":{"id":")" + id + R"(","size":5}})").error.code,
            Errc::bad_request);
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
