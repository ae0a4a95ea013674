#include "fake_server.h"

#include <openssl/evp.h>

#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "parley/wire.h"

namespace parley::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

// "a%20b" -> "a b" (enough for ?name=).
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The value of `key` in a query string "a=1&b=2"; empty when absent.
std::string QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key && eq != std::string_view::npos) {
      return PercentDecode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

struct Conn : std::enable_shared_from_this<Conn> {
  struct Item {
    bool close = false;
    uint16_t code = 0;
    std::string text;
  };
  explicit Conn(beast::tcp_stream&& s) : ws(std::move(s)) {}

  void Write(std::string text) {
    if (closing) return;
    queue.push_back(Item{false, 0, std::move(text)});
    if (!writing) Next();
  }
  void Close(uint16_t code) {
    if (closing) return;
    closing = true;
    queue.push_back(Item{true, code, {}});
    if (!writing) Next();
  }
  void Kill() {
    closing = true;
    beast::get_lowest_layer(ws).close();
  }
  void Next() {
    if (queue.empty()) {
      writing = false;
      return;
    }
    writing = true;
    auto self = shared_from_this();
    if (queue.front().close) {
      ws.async_close(websocket::close_reason(queue.front().code),
                     [self](beast::error_code) { self->writing = false; });
      return;
    }
    ws.async_write(net::buffer(queue.front().text), [self](beast::error_code ec, size_t) {
      self->queue.pop_front();
      if (ec) {
        self->writing = false;
        return;
      }
      self->Next();
    });
  }

  websocket::stream<beast::tcp_stream> ws;
  std::deque<Item> queue;
  bool writing = false;
  bool closing = false;
  std::string user;
  std::string token;
  std::set<std::string> presence_subs;
};
using ConnPtr = std::shared_ptr<Conn>;

struct UserRec {
  std::string password;
  std::vector<Update> log;
  std::string presence = "everyone";  // settings
  int64_t last_seen = 0;
};
struct Positions {
  int64_t read = 0;
  int64_t delivered = 0;
};
struct MediaRec {
  std::string bytes;
  std::string type;
  std::string kind;
  int64_t width = 0;
  int64_t height = 0;
  std::string owner;
  std::string thumb_id;  // PNG uploads get a (fake) thumbnail object
};
struct ChatRec {
  std::string a, b;
  std::vector<Message> messages;
  int64_t last_activity = 0;
  bool large = false;  // messages skip the update logs, pushes carry no pts
};

}  // namespace

struct FakeServer::State {
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  bool pushes = true;
  int drop_send = 0;
  bool accepting = true;
  std::map<std::string, UserRec> users;
  std::map<std::string, std::string> tokens;  // token -> user
  std::map<int64_t, ChatRec> chats;
  std::map<std::pair<std::string, std::string>, int64_t> direct;
  std::map<std::pair<std::string, std::string>, SendAck> idem;
  std::map<std::string, int> send_requests;
  std::map<std::string, int> requests;
  std::map<std::string, std::vector<std::string>> frames;          // type -> request frames seen
  std::set<std::string> disabled;                                  // answered unknown_type
  std::map<std::pair<std::string, int64_t>, Positions> positions;  // (user, chat)
  int connections = 0;
  std::vector<int> close_codes;
  std::set<ConnPtr> conns;
  int64_t next_mid = 7313459286409216001;
  int64_t next_chat = 12;
  int next_token = 1;
  int64_t activity = 0;
  // Media (docs/MEDIA.md "HTTP API"), in memory.
  std::map<std::string, MediaRec> media;
  std::set<std::pair<std::string, int64_t>> media_chats;  // (id, chat) of media messages
  std::set<std::string> deleted_users;
  uint64_t max_upload = 1 << 20;
  bool ignore_expect = false;
  bool cut_downloads = false;
  std::vector<FakeServer::HttpRequestSeen> http_seen;

  // ---- model
  int64_t ChatFor(const std::string& a, const std::string& b) {
    auto key = a < b ? std::make_pair(a, b) : std::make_pair(b, a);
    auto it = direct.find(key);
    if (it != direct.end()) return it->second;
    int64_t id = next_chat++;
    direct[key] = id;
    chats[id] = ChatRec{key.first, key.second, {}, 0};
    return id;
  }

  struct Committed {
    Message m;
    int64_t pts_sender = 0;
    int64_t pts_peer = 0;
  };

  Committed Commit(const std::string& from, const std::string& to, const std::string& body,
                   const std::string& cmid, const std::optional<MediaRef>& media_ref = {}) {
    int64_t chat_id = ChatFor(from, to);
    ChatRec& chat = chats[chat_id];
    chat.last_activity = ++activity;
    Message m;
    m.chat_id = chat_id;
    m.seq = static_cast<int64_t>(chat.messages.size()) + 1;
    m.message_id = std::to_string(next_mid++);
    m.sender = from;
    m.to = to;
    m.body = body;
    m.ts = NowMs();
    m.client_msg_id = cmid;
    if (media_ref) {
      m.kind = "media";
      m.media = media_ref;
      media_chats.insert({media_ref->id, chat_id});
      if (media_ref->thumbnail) media_chats.insert({media_ref->thumbnail->id, chat_id});
    }
    chat.messages.push_back(m);
    Positions& own = positions[{from, chat_id}];
    own.read = own.delivered = m.seq;  // sending moves your positions silently
    Committed c{m, 0, 0};
    if (chat.large) {
      c.m.to.clear();  // a group message
      chat.messages.back().to.clear();
      return c;
    }
    for (const std::string& u : {from, to}) {
      auto& log = users[u].log;
      Update up;
      up.pts = static_cast<int64_t>(log.size()) + 1;
      up.message = m;
      log.push_back(up);
      (u == from ? c.pts_sender : c.pts_peer) = up.pts;
    }
    return c;
  }

  void Push(const Committed& c, const Conn* except) {
    if (!pushes) return;
    const ChatRec& chat = chats[c.m.chat_id];
    for (const ConnPtr& conn : conns) {
      if (conn.get() == except || conn->user.empty()) continue;
      json::object o;
      o["type"] = "message";
      if (chat.large) {
        if (conn->user != chat.a && conn->user != chat.b) continue;
      } else {
        int64_t pts = conn->user == c.m.to       ? c.pts_peer
                      : conn->user == c.m.sender ? c.pts_sender
                                                 : 0;
        if (pts == 0) continue;
        o["pts"] = pts;
      }
      o["message"] = wire::ToJson(c.m);
      conn->Write(json::serialize(o));
    }
  }

  // ---- receipts (§3.11)
  void Append(const std::string& user, Update up, const Conn* except) {
    auto& log = users[user].log;
    up.pts = static_cast<int64_t>(log.size()) + 1;
    log.push_back(up);
    if (!pushes) return;
    json::object o{{"type", "receipt"}, {"pts", up.pts}, {"receipt", wire::ToJson(*up.receipt)}};
    std::string text = json::serialize(o);
    for (const ConnPtr& conn : conns) {
      if (conn.get() != except && conn->user == user) conn->Write(text);
    }
  }

  void PushWithoutPts(const std::string& user, const Receipt& r) {
    if (!pushes) return;
    std::string text =
        json::serialize(json::object{{"type", "receipt"}, {"receipt", wire::ToJson(r)}});
    for (const ConnPtr& conn : conns) {
      if (conn->user == user) conn->Write(text);
    }
  }

  // Moves `user`'s position; returns the result object of mark_read / mark_delivered.
  json::object Mark(const std::string& user, int64_t chat_id, const std::string& kind,
                    std::optional<int64_t> want, const Conn* except) {
    ChatRec& chat = chats[chat_id];
    int64_t last = static_cast<int64_t>(chat.messages.size());
    int64_t seq = std::min(want.value_or(last), last);
    Positions& pos = positions[{user, chat_id}];
    int64_t& cur = kind == "read" ? pos.read : pos.delivered;
    bool advanced = seq > cur;
    int64_t pts = 0;
    if (advanced) {
      cur = seq;
      if (kind == "read") pos.delivered = std::max(pos.delivered, seq);
      Receipt r{chat_id, user, kind, seq, NowMs()};
      Update up;
      up.kind = kind;
      up.receipt = r;
      const std::string& peer = chat.a == user ? chat.b : chat.a;
      if (chat.large) {  // read: own log; both: pushed without pts to the others online
        if (kind == "read") {
          Append(user, up, except);
          pts = static_cast<int64_t>(users[user].log.size());
        }
        PushWithoutPts(peer, r);
      } else {
        if (kind == "read") {
          Append(user, up, except);
          pts = static_cast<int64_t>(users[user].log.size());
        }
        Append(peer, up, nullptr);
      }
    }
    return json::object{
        {"chat_id", chat_id},        {"kind", kind}, {"seq", cur}, {"advanced", advanced},
        {"unread", last - pos.read}, {"pts", pts}};
  }

  // The chat of a request's chat_id / with; sends the error and returns 0 when there is none.
  int64_t TargetChat(Conn& conn, const json::value& id, json::object& o) {
    if (o.contains("chat_id") && o["chat_id"].is_int64()) {
      auto it = chats.find(o["chat_id"].as_int64());
      if (it == chats.end()) return Err(conn, id, "not_found", "no such chat"), 0;
      if (it->second.a != conn.user && it->second.b != conn.user) {
        return Err(conn, id, "forbidden", "not a member"), 0;
      }
      return it->first;
    }
    if (o.contains("with") && o["with"].is_string()) {
      std::string with(o["with"].as_string());
      auto key =
          conn.user < with ? std::make_pair(conn.user, with) : std::make_pair(with, conn.user);
      auto it = direct.find(key);
      if (it == direct.end()) return Err(conn, id, "not_found", "no chat with " + with), 0;
      return it->second;
    }
    return Err(conn, id, "bad_request", "missing chat"), 0;
  }

  void MarkRequest(const ConnPtr& conn, const json::value& id, json::object& o,
                   const std::string& kind) {
    std::optional<int64_t> seq;
    if (o.contains("seq")) {
      if (!o["seq"].is_int64() || o["seq"].as_int64() < 1) {
        return Err(*conn, id, "bad_request", "bad seq");
      }
      seq = o["seq"].as_int64();
    } else if (kind == "delivered") {
      return Err(*conn, id, "bad_request", "missing seq");
    }
    int64_t chat_id = TargetChat(*conn, id, o);
    if (chat_id == 0) return;
    Ok(*conn, id, Mark(conn->user, chat_id, kind, seq, conn.get()));
  }

  // ---- typing (§3.12), presence (§3.13), settings (§3.14)
  void Typing(const ConnPtr& conn, const json::value& id, json::object& o) {
    std::string state =
        o.contains("state") && o["state"].is_string() ? std::string(o["state"].as_string()) : "";
    if (state != "start" && state != "stop") return Err(*conn, id, "bad_request", "bad state");
    int64_t chat_id = TargetChat(*conn, id, o);
    if (chat_id == 0) return;
    Ok(*conn, id, json::object{{"forwarded", true}});
    const ChatRec& chat = chats[chat_id];
    json::object push{
        {"type", "typing"}, {"chat_id", chat_id}, {"user", conn->user}, {"state", state}};
    if (state == "start") push["expires_ms"] = 6000;
    std::string text = json::serialize(push);
    for (const ConnPtr& c : conns) {
      if (c != conn && (c->user == chat.a || c->user == chat.b)) c->Write(text);
    }
  }

  bool Online(const std::string& user) {
    for (const ConnPtr& c : conns) {
      if (c->user == user) return true;
    }
    return false;
  }

  json::object PresenceOf(const std::string& viewer, const std::string& user) {
    auto it = users.find(user);
    if (it == users.end() || (it->second.presence == "nobody" && viewer != user)) {
      return json::object{{"user", user}, {"hidden", true}};
    }
    json::object o{{"user", user}, {"online", Online(user)}};
    if (!Online(user) && it->second.last_seen > 0) o["last_seen"] = it->second.last_seen;
    return o;
  }

  // A user went online or offline: tell the subscribers at once (no batching here).
  void PresenceChanged(const std::string& user) {
    for (const ConnPtr& c : conns) {
      if (c->presence_subs.count(user) == 0) continue;
      json::object status = PresenceOf(c->user, user);
      if (status.contains("hidden")) continue;
      c->Write(json::serialize(
          json::object{{"type", "presence"}, {"presence", json::array{std::move(status)}}}));
    }
  }

  void PresenceSubscribe(Conn& conn, const json::value& id, json::object& o) {
    if (!o.contains("users") || !o["users"].is_array()) {
      return Err(conn, id, "bad_request", "missing users");
    }
    json::array out;
    for (const json::value& u : o["users"].as_array()) {
      if (!u.is_string()) return Err(conn, id, "bad_request", "bad user");
      std::string user(u.as_string());
      conn.presence_subs.insert(user);
      out.push_back(PresenceOf(conn.user, user));
    }
    Ok(conn, id, json::object{{"presence", std::move(out)}});
  }

  void PresenceUnsubscribe(Conn& conn, const json::value& id, json::object& o) {
    if (o.contains("all") && o["all"].is_bool() && o["all"].as_bool()) {
      conn.presence_subs.clear();
    } else if (o.contains("users") && o["users"].is_array()) {
      for (const json::value& u : o["users"].as_array()) {
        if (u.is_string()) conn.presence_subs.erase(std::string(u.as_string()));
      }
    } else {
      return Err(conn, id, "bad_request", "missing users");
    }
    Ok(conn, id, json::object());
  }

  void Settings(Conn& conn, const json::value& id, json::object& o) {
    UserRec& rec = users[conn.user];
    if (o.contains("presence")) {
      const json::value& p = o["presence"];
      if (!p.is_string() || (p.as_string() != "everyone" && p.as_string() != "contacts" &&
                             p.as_string() != "nobody")) {
        return Err(conn, id, "bad_request", "presence must be everyone, contacts or nobody");
      }
      bool changed = rec.presence != p.as_string();
      rec.presence = std::string(p.as_string());
      if (changed) {  // subscribers learn the state they may see now (maybe "hidden")
        for (const ConnPtr& c : conns) {
          if (c->presence_subs.count(conn.user) == 0 || c->user == conn.user) continue;
          c->Write(json::serialize(json::object{
              {"type", "presence"}, {"presence", json::array{PresenceOf(c->user, conn.user)}}}));
        }
      }
    }
    Ok(conn, id, json::object{{"presence", rec.presence}});
  }

  // ---- WebSocket frames
  static void Ok(Conn& c, const json::value& id, json::object result) {
    json::object o;
    o["type"] = "ok";
    o["id"] = id;
    o["result"] = std::move(result);
    c.Write(json::serialize(o));
  }
  static void Err(Conn& c, const json::value& id, const std::string& code,
                  const std::string& message, bool retryable = false) {
    json::object o;
    o["type"] = "error";
    o["id"] = id;
    o["code"] = code;
    o["message"] = message;
    o["retryable"] = retryable;
    c.Write(json::serialize(o));
  }

  void Handle(const ConnPtr& conn, const std::string& text) {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return Err(*conn, nullptr, "bad_request", "not a JSON object");
    json::object& o = v.as_object();
    json::value id = o.contains("id") ? o["id"] : json::value();
    std::string type = o.contains("type") && o["type"].is_string()
                           ? std::string(o["type"].as_string())
                           : std::string();
    requests[type]++;
    frames[type].push_back(text);
    if (disabled.count(type)) return Err(*conn, id, "unknown_type", "unknown type " + type);
    if (type == "auth") return Auth(conn, id, o);
    if (conn->user.empty()) return Err(*conn, id, "unauthorized", "auth first");
    if (type == "send") return Send(conn, id, o);
    if (type == "sync") return Sync(*conn, id, o);
    if (type == "history") return History(*conn, id, o);
    if (type == "chats") return Chats(*conn, id);
    if (type == "ping") return Ok(*conn, id, json::object{{"ts", NowMs()}});
    if (type == "mark_read") return MarkRequest(conn, id, o, "read");
    if (type == "mark_delivered") return MarkRequest(conn, id, o, "delivered");
    if (type == "typing") return Typing(conn, id, o);
    if (type == "presence_subscribe") return PresenceSubscribe(*conn, id, o);
    if (type == "presence_unsubscribe") return PresenceUnsubscribe(*conn, id, o);
    if (type == "settings") return Settings(*conn, id, o);
    Err(*conn, id, "unknown_type", "unknown type " + type);
  }

  void Auth(const ConnPtr& conn, const json::value& id, json::object& o) {
    std::string token = o.contains("token") && o["token"].is_string()
                            ? std::string(o["token"].as_string())
                            : std::string();
    auto it = tokens.find(token);
    if (it == tokens.end()) {
      Err(*conn, id, "unauthorized", "bad token");
      conn->Close(4001);
      return;
    }
    bool was_online = Online(it->second);
    conn->user = it->second;
    conn->token = token;
    if (!was_online) PresenceChanged(conn->user);
    Ok(*conn, id,
       json::object{{"user", conn->user},
                    {"device_id", "d0000000000000001"},
                    {"pts", static_cast<int64_t>(users[conn->user].log.size())}});
  }

  void Send(const ConnPtr& conn, const json::value& id, json::object& o) {
    std::string cmid = o.contains("client_msg_id") && o["client_msg_id"].is_string()
                           ? std::string(o["client_msg_id"].as_string())
                           : std::string();
    std::string body =
        o.contains("body") && o["body"].is_string() ? std::string(o["body"].as_string()) : "";
    send_requests[cmid]++;
    std::optional<MediaRef> media_ref;
    if (o.contains("media")) {
      const json::value& mv = o["media"];
      if (!body.empty() || !mv.is_object() || !mv.as_object().contains("id") ||
          !mv.as_object().at("id").is_string()) {
        return Err(*conn, id, "bad_request", "media needs an id, and no body");
      }
      const json::object& mo = mv.as_object();
      std::string media_id(mo.at("id").as_string());
      auto rec = media.find(media_id);
      if (rec == media.end() || !Readable(conn->user, media_id)) {
        return Err(*conn, id, "not_found", "no such media: " + media_id);
      }
      MediaRef ref;
      ref.id = media_id;
      ref.type = rec->second.type;
      ref.kind = rec->second.kind;
      ref.size = static_cast<int64_t>(rec->second.bytes.size());
      ref.width = rec->second.width;
      ref.height = rec->second.height;
      auto str = [&](const char* key) {
        return mo.contains(key) && mo.at(key).is_string() ? std::string(mo.at(key).as_string())
                                                          : std::string();
      };
      ref.name = str("name");
      if (size_t slash = ref.name.find_last_of("/\\"); slash != std::string::npos) {
        ref.name = ref.name.substr(slash + 1);  // the server keeps the last component only
      }
      ref.caption = str("caption");
      if (!rec->second.thumb_id.empty()) {
        ref.thumbnail =
            MediaThumbnail{rec->second.thumb_id, {}, 0, rec->second.width, rec->second.height};
      }
      media_ref = std::move(ref);
    }
    if (cmid.empty() || (body.empty() && !media_ref)) {
      return Err(*conn, id, "bad_request", "missing field");
    }
    const std::string& me = conn->user;
    auto answer = [&](SendAck ack) {
      if (drop_send > 0) {
        --drop_send;
        return;
      }
      Ok(*conn, id,
         json::object{{"chat_id", ack.chat_id},
                      {"seq", ack.seq},
                      {"message_id", ack.message_id},
                      {"ts", ack.ts},
                      {"pts", ack.pts},
                      {"duplicate", ack.duplicate}});
    };
    auto key = std::make_pair(me, cmid);
    if (auto it = idem.find(key); it != idem.end()) {
      SendAck dup = it->second;
      dup.duplicate = true;
      return answer(dup);
    }
    std::string to;
    if (o.contains("chat_id")) {
      auto chat = chats.find(o["chat_id"].to_number<int64_t>());
      if (chat == chats.end()) return Err(*conn, id, "not_found", "no such chat");
      if (chat->second.a != me && chat->second.b != me) {
        return Err(*conn, id, "forbidden", "not a member");
      }
      to = chat->second.a == me ? chat->second.b : chat->second.a;
    } else {
      to = o.contains("to") && o["to"].is_string() ? std::string(o["to"].as_string()) : "";
      if (to == me) return Err(*conn, id, "bad_request", "cannot send to yourself");
      if (!users.count(to)) return Err(*conn, id, "not_found", "no such user: " + to);
    }
    Committed c = Commit(me, to, body, cmid, media_ref);
    SendAck ack{c.m.chat_id, c.m.seq, c.m.message_id, c.m.ts, c.pts_sender, false, cmid};
    idem[key] = ack;
    answer(ack);
    Push(c, conn.get());
  }

  void Sync(Conn& conn, const json::value& id, json::object& o) {
    const auto& log = users[conn.user].log;
    int64_t size = static_cast<int64_t>(log.size());
    int64_t limit = o.contains("limit") ? o["limit"].to_number<int64_t>() : 100;
    if (!o.contains("pts")) {
      json::array list;
      std::vector<std::pair<int64_t, int64_t>> order;  // (activity, chat)
      for (auto& [cid, chat] : chats) {
        if (chat.a == conn.user || chat.b == conn.user) order.emplace_back(chat.last_activity, cid);
      }
      std::sort(order.rbegin(), order.rend());
      for (auto& [act, cid] : order) {
        ChatRec& chat = chats[cid];
        json::array messages;
        size_t from = chat.messages.size() > 20 ? chat.messages.size() - 20 : 0;
        for (size_t i = from; i < chat.messages.size(); ++i) {
          messages.push_back(wire::ToJson(chat.messages[i]));
        }
        list.push_back(json::object{{"chat_id", cid},
                                    {"kind", "direct"},
                                    {"peer", chat.a == conn.user ? chat.b : chat.a},
                                    {"last_seq", static_cast<int64_t>(chat.messages.size())},
                                    {"messages", std::move(messages)},
                                    {"has_more", from > 0},
                                    {"older", static_cast<int64_t>(from)}});
      }
      return Ok(conn, id,
                json::object{{"snapshot", true},
                             {"limited", false},
                             {"pts", size},
                             {"updates", json::array()},
                             {"has_more", false},
                             {"chats", std::move(list)}});
    }
    int64_t pts = o["pts"].to_number<int64_t>();
    json::array updates;
    int64_t last = pts;
    for (int64_t p = pts + 1; p <= size && p <= pts + limit; ++p) {
      const Update& u = log[p - 1];
      json::object entry{{"pts", u.pts}, {"kind", u.kind}};
      if (u.message) entry["message"] = wire::ToJson(*u.message);
      if (u.receipt) entry["receipt"] = wire::ToJson(*u.receipt);
      updates.push_back(std::move(entry));
      last = p;
    }
    Ok(conn, id,
       json::object{{"updates", std::move(updates)},
                    {"pts", last},
                    {"has_more", last < size},
                    {"limited", false}});
  }

  void History(Conn& conn, const json::value& id, json::object& o) {
    int64_t chat_id = 0;
    if (o.contains("chat_id")) {
      chat_id = o["chat_id"].to_number<int64_t>();
      auto it = chats.find(chat_id);
      if (it == chats.end()) return Err(conn, id, "not_found", "no such chat");
      if (it->second.a != conn.user && it->second.b != conn.user) {
        return Err(conn, id, "forbidden", "not a member");
      }
    } else {
      std::string with = std::string(o["with"].as_string());
      auto key =
          conn.user < with ? std::make_pair(conn.user, with) : std::make_pair(with, conn.user);
      auto it = direct.find(key);
      if (it == direct.end()) {
        return Ok(conn, id,
                  json::object{{"chat_id", 0}, {"messages", json::array()}, {"has_more", false}});
      }
      chat_id = it->second;
    }
    int64_t limit = o.contains("limit") ? o["limit"].to_number<int64_t>() : 50;
    if (o.contains("after_seq")) {
      int64_t after = o["after_seq"].to_number<int64_t>();
      json::array newer;
      const auto& all = chats[chat_id].messages;
      for (const Message& m : all) {
        if (m.seq > after && static_cast<int64_t>(newer.size()) < limit) {
          newer.push_back(wire::ToJson(m));
        }
      }
      bool more = !newer.empty() && newer.back().as_object().at("seq").to_number<int64_t>() <
                                        static_cast<int64_t>(all.size());
      return Ok(
          conn, id,
          json::object{{"chat_id", chat_id}, {"messages", std::move(newer)}, {"has_more", more}});
    }
    int64_t before = o.contains("before_seq") ? o["before_seq"].to_number<int64_t>() : INT64_MAX;
    std::vector<Message> older;
    for (const Message& m : chats[chat_id].messages) {
      if (m.seq < before) older.push_back(m);
    }
    size_t from = older.size() > static_cast<size_t>(limit) ? older.size() - limit : 0;
    json::array messages;
    for (size_t i = from; i < older.size(); ++i) messages.push_back(wire::ToJson(older[i]));
    Ok(conn, id,
       json::object{
           {"chat_id", chat_id}, {"messages", std::move(messages)}, {"has_more", from > 0}});
  }

  void Chats(Conn& conn, const json::value& id) {
    json::array list;
    int64_t unread_total = 0;
    int64_t unread_chats = 0;
    for (auto& [cid, chat] : chats) {
      if (chat.a != conn.user && chat.b != conn.user) continue;
      json::value last;
      if (!chat.messages.empty()) last = wire::ToJson(chat.messages.back());
      int64_t last_seq = static_cast<int64_t>(chat.messages.size());
      const std::string& peer = chat.a == conn.user ? chat.b : chat.a;
      Positions own = positions[{conn.user, cid}];
      Positions theirs = positions[{peer, cid}];
      json::object entry{{"chat_id", cid},       {"last_seq", last_seq},
                         {"last_message", last}, {"unread", last_seq - own.read},
                         {"read_seq", own.read}, {"delivered_seq", own.delivered}};
      unread_total += last_seq - own.read;
      unread_chats += last_seq > own.read ? 1 : 0;
      if (!chat.large) {
        entry["peer_read_seq"] = theirs.read;
        entry["peer_delivered_seq"] = theirs.delivered;
      }
      if (chat.large) {
        entry["kind"] = "group";
        entry["name"] = "big";
        entry["large"] = true;
        entry["member"] = true;
      } else {
        entry["kind"] = "direct";
        entry["peer"] = chat.a == conn.user ? chat.b : chat.a;
      }
      list.push_back(std::move(entry));
    }
    Ok(conn, id,
       json::object{{"chats", std::move(list)},
                    {"has_more", false},
                    {"pts", static_cast<int64_t>(users[conn.user].log.size())},
                    {"unread_total", unread_total},
                    {"unread_chats", unread_chats}});
  }

  // ---- media (docs/MEDIA.md "HTTP API")
  bool Readable(const std::string& user, const std::string& media_id) {
    auto it = media.find(media_id);
    if (it == media.end()) return false;
    if (it->second.owner == user) return true;
    for (const auto& [id, chat_id] : media_chats) {
      if (id != media_id) continue;
      const ChatRec& chat = chats[chat_id];
      if (chat.a == user || chat.b == user) return true;
    }
    return false;
  }

  static std::string Sign(const std::string& id, int64_t exp) {
    return Sha256Hex("fake-signing-key\n" + id + "\n" + std::to_string(exp));
  }

  std::string BearerUser(const http::request<http::string_body>& req) {
    std::string auth(req[http::field::authorization]);
    std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
    auto it = tokens.find(token);
    return it == tokens.end() ? std::string() : it->second;
  }

  // Stores bytes as a media object; returns its id.
  std::string Store(const std::string& bytes, const std::string& owner, std::string type,
                    std::string kind, int64_t w, int64_t h) {
    std::string id = Sha256Hex(bytes);
    MediaRec& rec = media[id];
    if (rec.bytes.empty()) {
      rec.bytes = bytes;
      rec.type = std::move(type);
      rec.kind = std::move(kind);
      rec.width = w;
      rec.height = h;
    }
    if (rec.owner.empty()) rec.owner = owner;
    return id;
  }

  struct HttpOut {
    http::response<http::string_body> res;
    bool cut = false;  // send only half of the body, then close (fault injection)
  };

  static http::response<http::string_body> JsonReply(unsigned version, http::status status,
                                                     json::value body) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "application/json");
    res.body() = json::serialize(body);
    res.keep_alive(false);
    res.prepare_payload();
    return res;
  }
  static http::response<http::string_body> JsonError(unsigned version, http::status status,
                                                     const std::string& code,
                                                     const std::string& message) {
    return JsonReply(version, status,
                     json::object{{"error", json::object{{"code", code}, {"message", message}}}});
  }

  // Before the body of an upload is read (and before "100 Continue"): the token and the
  // declared size.
  std::optional<http::response<http::string_body>> EarlyHttp(
      const http::request<http::string_body>& req, boost::optional<uint64_t> len) {
    if (req.method() != http::verb::post || req.target() != "/v1/media") return std::nullopt;
    if (BearerUser(req).empty()) {
      return JsonError(req.version(), http::status::unauthorized, "unauthorized", "bad token");
    }
    if (len && *len > max_upload) {
      return JsonError(req.version(), http::status::payload_too_large, "too_large",
                       "upload over media.max_upload_bytes");
    }
    return std::nullopt;
  }

  HttpOut Upload(const http::request<http::string_body>& req) {
    unsigned v = req.version();
    std::string user = BearerUser(req);
    if (user.empty())
      return {JsonError(v, http::status::unauthorized, "unauthorized", "bad token")};
    const std::string& bytes = req.body();
    if (bytes.size() > max_upload) {
      return {JsonError(v, http::status::payload_too_large, "too_large", "upload too large")};
    }
    std::string declared(req[http::field::content_type]);
    std::string type = "text/plain";
    std::string kind = "file";
    int64_t w = 0;
    int64_t h = 0;
    static const std::string kPng("\x89PNG\r\n\x1a\n", 8);
    if (bytes.empty() || bytes.rfind("\x7f"
                                     "ELF",
                                     0) == 0) {
      return {
          JsonError(v, http::status::unsupported_media_type, "unsupported_type",
                    bytes.empty() ? "empty file" : "type application/x-executable is not allowed")};
    }
    if (bytes.rfind(kPng, 0) == 0 && bytes.size() >= 24) {
      type = "image/png";
      kind = "image";
      w = BigEndian32(bytes, 16);
      h = BigEndian32(bytes, 20);
    }
    if (!declared.empty() && declared != "application/octet-stream" &&
        declared.substr(0, declared.find('/')) != type.substr(0, type.find('/'))) {
      return {JsonError(v, http::status::unsupported_media_type, "unsupported_type",
                        "declared " + declared + " but the bytes are " + type)};
    }
    std::string id = Store(bytes, user, type, kind, w, h);
    json::object out{
        {"id", id}, {"type", type}, {"kind", kind}, {"size", static_cast<int64_t>(bytes.size())}};
    if (kind == "image") {
      out["width"] = w;
      out["height"] = h;
      std::string thumb = Store("thumbnail of " + id, user, "image/jpeg", "image", w, h);
      media[id].thumb_id = thumb;
      out["thumbnail"] = json::object{{"id", thumb},
                                      {"type", "image/jpeg"},
                                      {"size", static_cast<int64_t>(media[thumb].bytes.size())},
                                      {"width", w},
                                      {"height", h}};
    }
    return {JsonReply(v, http::status::created, std::move(out))};
  }

  HttpOut Download(const http::request<http::string_body>& req, const std::string& id,
                   std::string_view query) {
    unsigned v = req.version();
    std::string sig = QueryParam(query, "sig");
    if (!sig.empty()) {
      std::string exp = QueryParam(query, "exp");
      int64_t e = exp.empty() ? 0 : std::stoll(exp);
      if (sig != Sign(id, e) || e * 1000 < NowMs()) {
        return {JsonError(v, http::status::forbidden, "forbidden", "bad signature")};
      }
    } else if (!Readable(BearerUser(req), id)) {
      return {JsonError(v, http::status::not_found, "not_found", "no such media")};
    }
    auto it = media.find(id);
    if (it == media.end()) return {JsonError(v, http::status::not_found, "not_found", "gone")};
    const std::string& bytes = it->second.bytes;
    uint64_t size = bytes.size();
    http::response<http::string_body> res{http::status::ok, v};
    res.set(http::field::content_type, it->second.type);
    res.set(http::field::etag, "\"" + id + "\"");
    res.set(http::field::accept_ranges, "bytes");
    res.keep_alive(false);
    std::string range(req[http::field::range]);
    uint64_t first = 0;
    if (range.rfind("bytes=", 0) == 0 && range.back() == '-') {
      first = std::stoull(range.substr(6, range.size() - 7));
      if (first >= size) {
        http::response<http::string_body> bad{http::status::range_not_satisfiable, v};
        bad.set(http::field::content_range, "bytes */" + std::to_string(size));
        bad.keep_alive(false);
        bad.prepare_payload();
        return {std::move(bad)};
      }
      res.result(http::status::partial_content);
      res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                              std::to_string(size - 1) + "/" +
                                              std::to_string(size));
    }
    res.body() = bytes.substr(first);
    res.prepare_payload();
    return {std::move(res), cut_downloads};
  }

  HttpOut SignUrl(const http::request<http::string_body>& req, const std::string& id) {
    unsigned v = req.version();
    if (!Readable(BearerUser(req), id)) {
      return {JsonError(v, http::status::not_found, "not_found", "no such media")};
    }
    int64_t exp = NowMs() / 1000 + 3600;
    return {JsonReply(v, http::status::ok,
                      json::object{{"url", "/v1/media/" + id + "?exp=" + std::to_string(exp) +
                                               "&sig=" + Sign(id, exp)},
                                   {"expires_at", exp}})};
  }

  HttpOut DeleteAccount(const http::request<http::string_body>& req) {
    unsigned v = req.version();
    std::string user = BearerUser(req);
    if (user.empty())
      return {JsonError(v, http::status::unauthorized, "unauthorized", "bad token")};
    json::error_code ec;
    json::value body = json::parse(req.body(), ec);
    const json::value* pw =
        !ec && body.is_object() ? body.as_object().if_contains("password") : nullptr;
    if (!pw || !pw->is_string() || pw->as_string() != users[user].password) {
      return {JsonError(v, http::status::unauthorized, "invalid_credentials", "wrong password")};
    }
    deleted_users.insert(user);
    users[user].password.clear();
    std::vector<std::string> revoke;
    for (const auto& [token, owner] : tokens) {
      if (owner == user) revoke.push_back(token);
    }
    for (const std::string& t : revoke) RevokeToken(t);
    for (auto it = media.begin(); it != media.end();) {
      it = it->second.owner == user ? media.erase(it) : std::next(it);
    }
    return {JsonReply(v, http::status::ok, json::object())};
  }

  // ---- HTTP
  HttpOut HandleHttp(const http::request<http::string_body>& req) {
    auto reply = [&](http::status status, json::value body) {
      return HttpOut{JsonReply(req.version(), status, std::move(body))};
    };
    auto error = [&](http::status status, const char* code, const char* message) {
      return HttpOut{JsonError(req.version(), status, code, message)};
    };
    FakeServer::HttpRequestSeen seen;
    seen.method = std::string(req.method_string());
    seen.target = std::string(req.target());
    seen.content_type = std::string(req[http::field::content_type]);
    seen.expect = std::string(req[http::field::expect]);
    seen.range = std::string(req[http::field::range]);
    seen.content_length = std::string(req[http::field::content_length]);
    seen.body_size = req.body().size();
    http_seen.push_back(seen);

    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
    if (target == "/healthz") return reply(http::status::ok, json::object{{"status", "ok"}});
    if (path == "/v1/media" && req.method() == http::verb::post) return Upload(req);
    if (path.rfind("/v1/media/", 0) == 0) {
      std::string rest = path.substr(10);
      if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, "/url") == 0 &&
          req.method() == http::verb::post) {
        return SignUrl(req, rest.substr(0, rest.size() - 4));
      }
      if (req.method() == http::verb::get && rest.find('/') == std::string::npos) {
        return Download(req, rest, query);
      }
      return error(http::status::not_found, "not_found", "no such path");
    }
    if (target == "/v1/account" && req.method() == http::verb::delete_) return DeleteAccount(req);
    if (req.method() != http::verb::post) return error(http::status::not_found, "not_found", "no");
    if (target == "/v1/logout") {
      std::string auth(req[http::field::authorization]);
      std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
      if (!tokens.count(token))
        return error(http::status::unauthorized, "unauthorized", "bad token");
      RevokeToken(token);
      return reply(http::status::ok, json::object());
    }
    json::error_code ec;
    json::value v = json::parse(req.body(), ec);
    if (ec || !v.is_object() || !v.as_object().contains("username") ||
        !v.as_object().contains("password")) {
      return error(http::status::bad_request, "bad_request", "body");
    }
    std::string user(v.as_object()["username"].as_string());
    std::string password(v.as_object()["password"].as_string());
    if (target == "/v1/register") {
      if (users.count(user)) return error(http::status::conflict, "username_taken", "taken");
      if (password.size() < 8) {
        return error(http::status::unprocessable_entity, "weak_password", "too short");
      }
      users[user].password = password;
      return reply(http::status::created, json::object{{"user", user}});
    }
    if (target == "/v1/login") {
      auto it = users.find(user);
      if (it == users.end() || it->second.password.empty() || it->second.password != password ||
          deleted_users.count(user)) {
        return error(http::status::unauthorized, "invalid_credentials", "wrong user or password");
      }
      std::string token = "pt_fake" + std::to_string(next_token++);
      tokens[token] = user;
      return reply(http::status::ok,
                   json::object{{"user", user},
                                {"device_id", "d00000000000000" + std::to_string(next_token % 10)},
                                {"token", token},
                                {"pts", static_cast<int64_t>(it->second.log.size())}});
    }
    return error(http::status::not_found, "not_found", "no such path");
  }

  void RevokeToken(const std::string& token) {
    tokens.erase(token);
    for (const ConnPtr& c : conns) {
      if (c->token == token) c->Close(4003);
    }
  }

  // ---- sessions
  net::awaitable<void> AcceptLoop() {
    for (;;) {
      beast::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      if (!accepting) {
        socket.close(ec);
        continue;
      }
      net::co_spawn(ioc, Session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    beast::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    co_await http::async_read_header(stream, buffer, parser,
                                     net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    if (!websocket::is_upgrade(parser.get())) {
      if (auto early = EarlyHttp(parser.get(),
                                 parser.content_length())) {  // refused before the body is read
        co_await http::async_write(stream, *early, net::redirect_error(net::use_awaitable, ec));
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        co_return;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue") && !ignore_expect) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        co_await http::async_write(stream, cont, net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return;
      }
      co_await http::async_read(stream, buffer, parser,
                                net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      HttpOut out = HandleHttp(parser.get());
      if (out.cut) {  // promise the whole body, send half of it, close
        std::string full = out.res.body();
        out.res.body() = full.substr(0, full.size() / 2);
        http::response_serializer<http::string_body> sr{out.res};
        co_await http::async_write_header(stream, sr, net::redirect_error(net::use_awaitable, ec));
        co_await net::async_write(stream, net::buffer(out.res.body()),
                                  net::redirect_error(net::use_awaitable, ec));
        stream.socket().close(ec);
        co_return;
      }
      co_await http::async_write(stream, out.res, net::redirect_error(net::use_awaitable, ec));
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }
    http::request<http::string_body> req = parser.release();
    if (req[http::field::sec_websocket_protocol] != "parley.v1") {
      http::response<http::string_body> res{http::status::bad_request, req.version()};
      res.body() = R"({"error":{"code":"subprotocol_required","message":"parley.v1"}})";
      res.prepare_payload();
      co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
      co_return;
    }
    auto conn = std::make_shared<Conn>(std::move(stream));
    conn->ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, "parley.v1");
    }));
    co_await conn->ws.async_accept(req, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    ++connections;
    conns.insert(conn);
    beast::flat_buffer frames;
    for (;;) {
      co_await conn->ws.async_read(frames, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (ec == websocket::error::closed) close_codes.push_back(conn->ws.reason().code);
        break;
      }
      Handle(conn, beast::buffers_to_string(frames.data()));
      frames.consume(frames.size());
    }
    conns.erase(conn);
    if (!conn->user.empty() && !Online(conn->user)) {
      users[conn->user].last_seen = NowMs();
      PresenceChanged(conn->user);
    }
  }
};

FakeServer::FakeServer() : state_(std::make_shared<State>()) {
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(ep.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(ep);
  state_->acceptor.listen();
  State* st = state_.get();
  net::co_spawn(st->ioc, st->AcceptLoop(), net::detached);
  st->thread = std::thread([st] { st->ioc.run(); });
}

FakeServer::~FakeServer() {
  Run([st = state_.get()] {
    beast::error_code ec;
    st->acceptor.close(ec);
    for (const ConnPtr& c : st->conns) c->Kill();
  });
  state_->ioc.stop();
  state_->thread.join();
}

void FakeServer::Run(std::function<void()> fn) {
  std::promise<void> done;
  net::post(state_->ioc, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

uint16_t FakeServer::port() const { return state_->acceptor.local_endpoint().port(); }

std::string FakeServer::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

void FakeServer::AddUser(const std::string& user, const std::string& token) {
  Run([&] {
    state_->users[user].password = "password";
    state_->tokens[token] = user;
  });
}

SendAck FakeServer::Inject(const std::string& from, const std::string& to,
                           const std::string& body) {
  SendAck ack;
  Run([&] {
    auto c = state_->Commit(from, to, body, "injected-" + std::to_string(state_->next_mid));
    ack = SendAck{c.m.chat_id,  c.m.seq, c.m.message_id,   c.m.ts,
                  c.pts_sender, false,   c.m.client_msg_id};
    state_->Push(c, nullptr);
  });
  return ack;
}

void FakeServer::Mark(const std::string& user, int64_t chat_id, const std::string& kind,
                      int64_t seq) {
  Run([&] { state_->Mark(user, chat_id, kind, seq, nullptr); });
}

std::vector<std::string> FakeServer::Frames(const std::string& type) {
  std::vector<std::string> out;
  Run([&] { out = state_->frames[type]; });
  return out;
}

void FakeServer::MarkLarge(int64_t chat_id) {
  Run([&] { state_->chats[chat_id].large = true; });
}

std::string FakeServer::AddMedia(const std::string& owner, const std::string& bytes,
                                 const std::string& type) {
  std::string id;
  Run([&] { id = state_->Store(bytes, owner, type, "file", 0, 0); });
  return id;
}
void FakeServer::SetMaxUpload(uint64_t bytes) {
  Run([&] { state_->max_upload = bytes; });
}
void FakeServer::IgnoreExpect(bool on) {
  Run([&] { state_->ignore_expect = on; });
}
void FakeServer::CutDownloads(bool on) {
  Run([&] { state_->cut_downloads = on; });
}
std::vector<FakeServer::HttpRequestSeen> FakeServer::HttpRequests() {
  std::vector<HttpRequestSeen> out;
  Run([&] { out = state_->http_seen; });
  return out;
}
bool FakeServer::HasMedia(const std::string& id) {
  bool has = false;
  Run([&] { has = state_->media.count(id) > 0; });
  return has;
}

void FakeServer::SetPushes(bool on) {
  Run([&] { state_->pushes = on; });
}
void FakeServer::Disable(const std::string& type) {
  Run([&] { state_->disabled.insert(type); });
}
void FakeServer::DropSendResponses(int n) {
  Run([&] { state_->drop_send = n; });
}
void FakeServer::SetAccepting(bool on) {
  Run([&] { state_->accepting = on; });
}
void FakeServer::KillConnections() {
  Run([&] {
    for (const ConnPtr& c : state_->conns) c->Kill();
  });
}
void FakeServer::CloseConnections(uint16_t code) {
  Run([&] {
    for (const ConnPtr& c : state_->conns) c->Close(code);
  });
}
void FakeServer::SendRaw(const std::string& user, const std::string& frame) {
  Run([&] {
    for (const ConnPtr& c : state_->conns) {
      if (c->user == user) c->Write(frame);
    }
  });
}
void FakeServer::Revoke(const std::string& token) {
  Run([&] { state_->RevokeToken(token); });
}
int FakeServer::SendRequests(const std::string& client_msg_id) {
  int n = 0;
  Run([&] { n = state_->send_requests[client_msg_id]; });
  return n;
}
int FakeServer::Requests(const std::string& type) {
  int n = 0;
  Run([&] { n = state_->requests[type]; });
  return n;
}
int FakeServer::Connections() {
  int n = 0;
  Run([&] { n = state_->connections; });
  return n;
}
int FakeServer::ChatMessages(const std::string& a, const std::string& b) {
  int n = 0;
  Run([&] {
    auto key = a < b ? std::make_pair(a, b) : std::make_pair(b, a);
    auto it = state_->direct.find(key);
    if (it != state_->direct.end()) n = static_cast<int>(state_->chats[it->second].messages.size());
  });
  return n;
}
int64_t FakeServer::Pts(const std::string& user) {
  int64_t n = 0;
  Run([&] { n = static_cast<int64_t>(state_->users[user].log.size()); });
  return n;
}
std::vector<int> FakeServer::CloseCodesReceived() {
  std::vector<int> out;
  Run([&] { out = state_->close_codes; });
  return out;
}

}  // namespace parley::testing
