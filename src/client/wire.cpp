#include "parley/wire.h"

#include <limits>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "parley/error.h"

namespace parley::wire {
namespace json = boost::json;
namespace {

[[noreturn]] void Bad(std::string_view what, std::string_view why) {
  throw Error(errc::kBadResponse, std::string(what) + ": " + std::string(why));
}

const json::object& AsObject(const json::value& v, std::string_view what) {
  const json::object* o = v.if_object();
  if (!o) Bad(what, "expected a JSON object");
  return *o;
}

// An integer from int64 or uint64 storage (Boost.JSON picks by magnitude); doubles are rejected.
std::optional<int64_t> AsInt(const json::value& v) {
  if (const int64_t* i = v.if_int64()) return *i;
  if (const uint64_t* u = v.if_uint64()) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  return std::nullopt;
}

const json::value* Field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && !v->is_null() ? v : nullptr;
}

int64_t Int(const json::object& o, std::string_view key, std::string_view what,
            int64_t min = std::numeric_limits<int64_t>::min()) {
  const json::value* v = Field(o, key);
  if (!v) Bad(what, "missing '" + std::string(key) + "'");
  std::optional<int64_t> i = AsInt(*v);
  if (!i) Bad(what, "'" + std::string(key) + "' is not an integer");
  if (*i < min) Bad(what, "'" + std::string(key) + "' is out of range");
  return *i;
}

int64_t OptInt(const json::object& o, std::string_view key, std::string_view what, int64_t fallback,
               int64_t min = std::numeric_limits<int64_t>::min()) {
  return Field(o, key) ? Int(o, key, what, min) : fallback;
}

std::string Str(const json::object& o, std::string_view key, std::string_view what) {
  const json::value* v = Field(o, key);
  if (!v) Bad(what, "missing '" + std::string(key) + "'");
  const json::string* s = v->if_string();
  if (!s) Bad(what, "'" + std::string(key) + "' is not a string");
  return std::string(*s);
}

std::string OptStr(const json::object& o, std::string_view key, std::string_view what,
                   std::string fallback = {}) {
  return Field(o, key) ? Str(o, key, what) : std::move(fallback);
}

bool OptBool(const json::object& o, std::string_view key, std::string_view what,
             bool fallback = false) {
  const json::value* v = Field(o, key);
  if (!v) return fallback;
  const bool* b = v->if_bool();
  if (!b) Bad(what, "'" + std::string(key) + "' is not a boolean");
  return *b;
}

// The array under `key`; an empty array when absent or null.
const json::array& Arr(const json::object& o, std::string_view key, std::string_view what) {
  static const json::array kEmpty;
  const json::value* v = Field(o, key);
  if (!v) return kEmpty;
  const json::array* a = v->if_array();
  if (!a) Bad(what, "'" + std::string(key) + "' is not an array");
  return *a;
}

// The chat ids under `key` (positive integers); none when absent.
std::vector<int64_t> ChatIds(const json::object& o, std::string_view key, std::string_view what) {
  std::vector<int64_t> out;
  for (const json::value& v : Arr(o, key, what)) {
    std::optional<int64_t> id = AsInt(v);
    if (!id || *id < 1) Bad(what, "'" + std::string(key) + "' holds something not a chat id");
    out.push_back(*id);
  }
  return out;
}

Update DecodeUpdate(const json::value& v) {
  const json::object& o = AsObject(v, "update");
  Update u;
  u.pts = Int(o, "pts", "update", 1);
  u.kind = OptStr(o, "kind", "update", "message");
  if (u.kind == "message") {
    const json::value* m = Field(o, "message");
    if (!m) Bad("update", "message update without 'message'");
    u.message = DecodeMessage(*m);
  } else if (u.kind == "read" || u.kind == "delivered") {
    const json::value* r = Field(o, "receipt");
    if (!r) Bad("update", u.kind + " update without 'receipt'");
    u.receipt = DecodeReceipt(*r);
    if (u.receipt->kind.empty()) u.receipt->kind = u.kind;
  }
  return u;
}

PresenceStatus DecodePresenceStatusImpl(const json::value& v) {
  const json::object& o = AsObject(v, "presence");
  PresenceStatus p;
  p.user = Str(o, "user", "presence");
  p.online = OptBool(o, "online", "presence");
  p.last_seen = OptInt(o, "last_seen", "presence", 0, 0);
  p.hidden = OptBool(o, "hidden", "presence");
  return p;
}

std::vector<PresenceStatus> DecodePresenceList(const json::object& o, std::string_view what) {
  if (!Field(o, "presence")) Bad(what, "missing 'presence'");
  std::vector<PresenceStatus> out;
  for (const json::value& p : Arr(o, "presence", what)) out.push_back(DecodePresenceStatusImpl(p));
  return out;
}

TypingState DecodeTypingState(const json::object& o, std::string_view what) {
  std::string state = Str(o, "state", what);
  if (state == "start") return TypingState::kStart;
  if (state == "stop") return TypingState::kStop;
  Bad(what, "unknown state '" + state + "'");
}

SnapshotChat DecodeSnapshotChat(const json::value& v) {
  const json::object& o = AsObject(v, "snapshot chat");
  SnapshotChat c;
  c.chat_id = Int(o, "chat_id", "snapshot chat", 1);
  c.kind = OptStr(o, "kind", "snapshot chat");
  c.peer = OptStr(o, "peer", "snapshot chat");
  c.name = OptStr(o, "name", "snapshot chat");
  c.last_seq = OptInt(o, "last_seq", "snapshot chat", 0, 0);
  for (const json::value& m : Arr(o, "messages", "snapshot chat")) {
    c.messages.push_back(DecodeMessage(m));
  }
  c.has_more = OptBool(o, "has_more", "snapshot chat");
  c.older = OptInt(o, "older", "snapshot chat", 0, 0);
  return c;
}

ChatSummary DecodeChatSummary(const json::value& v) {
  const json::object& o = AsObject(v, "chat");
  ChatSummary c;
  c.chat_id = Int(o, "chat_id", "chat", 1);
  c.kind = OptStr(o, "kind", "chat");
  c.peer = OptStr(o, "peer", "chat");
  c.name = OptStr(o, "name", "chat");
  c.large = OptBool(o, "large", "chat");
  c.member = OptBool(o, "member", "chat", true);
  c.last_seq = OptInt(o, "last_seq", "chat", 0, 0);
  if (const json::value* m = Field(o, "last_message")) c.last_message = DecodeMessage(*m);
  c.unread = OptInt(o, "unread", "chat", 0, 0);
  c.read_seq = OptInt(o, "read_seq", "chat", 0, 0);
  c.delivered_seq = OptInt(o, "delivered_seq", "chat", 0, 0);
  c.peer_read_seq = OptInt(o, "peer_read_seq", "chat", 0, 0);
  c.peer_delivered_seq = OptInt(o, "peer_delivered_seq", "chat", 0, 0);
  for (const json::value& r : Arr(o, "reads", "chat")) {
    const json::object& ro = AsObject(r, "chat reads");
    ReadPosition pos;
    pos.user = Str(ro, "user", "chat reads");
    pos.read_seq = OptInt(ro, "read_seq", "chat reads", 0, 0);
    pos.delivered_seq = OptInt(ro, "delivered_seq", "chat reads", 0, 0);
    c.reads.push_back(std::move(pos));
  }
  return c;
}

MediaThumbnail DecodeThumbnail(const json::value& v, std::string_view what) {
  const json::object& o = AsObject(v, what);
  MediaThumbnail t;
  t.id = Str(o, "id", what);
  if (t.id.empty()) Bad(what, "empty 'id'");
  t.type = OptStr(o, "type", what);
  t.size = OptInt(o, "size", what, 0, 0);
  t.width = OptInt(o, "width", what, 0, 0);
  t.height = OptInt(o, "height", what, 0, 0);
  return t;
}

json::object ThumbnailJson(const MediaThumbnail& t) {
  json::object o;
  o["id"] = t.id;
  if (!t.type.empty()) o["type"] = t.type;
  if (t.size > 0) o["size"] = t.size;
  o["width"] = t.width;
  o["height"] = t.height;
  return o;
}

std::string Serialize(const json::object& o) { return json::serialize(o); }

json::object Request(std::string_view type, int64_t id) {
  json::object o;
  o["type"] = type;
  o["id"] = id;
  return o;
}

void PutTarget(json::object& o, const Target& t, std::string_view user_key) {
  if (t.is_chat()) {
    o["chat_id"] = t.chat_id;
  } else {
    o[user_key] = t.user;
  }
}

}  // namespace

// ---- Requests

std::string EncodeAuth(int64_t id, std::string_view token) {
  json::object o = Request("auth", id);
  o["token"] = token;
  o["batch"] = true;  // the client reads messages holding several frames (PROTOCOL.md §3.1)
  return Serialize(o);
}

std::string EncodeSend(int64_t id, const Target& to, std::string_view client_msg_id,
                       std::string_view body) {
  json::object o = Request("send", id);
  PutTarget(o, to, "to");
  o["client_msg_id"] = client_msg_id;
  o["body"] = body;
  return Serialize(o);
}

std::string EncodeSendMedia(int64_t id, const Target& to, std::string_view client_msg_id,
                            const MediaSend& media) {
  json::object o = Request("send", id);
  PutTarget(o, to, "to");
  o["client_msg_id"] = client_msg_id;
  json::object m;
  m["id"] = media.id;
  if (!media.name.empty()) m["name"] = media.name;
  if (!media.caption.empty()) m["caption"] = media.caption;
  o["media"] = std::move(m);
  return Serialize(o);
}

std::string EncodeSync(int64_t id, std::optional<int64_t> pts, int limit) {
  json::object o = Request("sync", id);
  if (pts) o["pts"] = *pts;
  o["limit"] = limit;
  return Serialize(o);
}

std::string EncodeHistory(int64_t id, const Target& chat, std::optional<int64_t> before_seq,
                          int limit) {
  json::object o = Request("history", id);
  PutTarget(o, chat, "with");
  if (before_seq) o["before_seq"] = *before_seq;
  o["limit"] = limit;
  return Serialize(o);
}

std::string EncodeHistoryAfter(int64_t id, const Target& chat, int64_t after_seq, int limit) {
  json::object o = Request("history", id);
  PutTarget(o, chat, "with");
  o["after_seq"] = after_seq;
  o["limit"] = limit;
  return Serialize(o);
}

std::string EncodeRequest(int64_t id, std::string_view type, const json::object& fields) {
  json::object o = fields;
  o["type"] = type;
  o["id"] = id;
  return Serialize(o);
}

std::string EncodeChats(int64_t id, int limit, const std::string& cursor) {
  json::object o = Request("chats", id);
  o["limit"] = limit;
  if (!cursor.empty()) o["cursor"] = cursor;
  return Serialize(o);
}

std::string EncodePing(int64_t id) { return Serialize(Request("ping", id)); }

std::string EncodeMarkDelivered(int64_t id, const Target& chat, int64_t seq) {
  json::object o = Request("mark_delivered", id);
  PutTarget(o, chat, "with");
  o["seq"] = seq;
  return Serialize(o);
}

std::string EncodeMarkRead(int64_t id, const Target& chat, std::optional<int64_t> seq) {
  json::object o = Request("mark_read", id);
  PutTarget(o, chat, "with");
  if (seq) o["seq"] = *seq;
  return Serialize(o);
}

std::string EncodeTyping(int64_t id, const Target& chat, TypingState state) {
  json::object o = Request("typing", id);
  PutTarget(o, chat, "with");
  o["state"] = ToString(state);
  return Serialize(o);
}

std::string EncodePresenceSubscribe(int64_t id, const std::vector<std::string>& users) {
  json::object o = Request("presence_subscribe", id);
  o["users"] = json::array(users.begin(), users.end());
  return Serialize(o);
}

std::string EncodePresenceUnsubscribe(int64_t id, const std::vector<std::string>& users, bool all) {
  json::object o = Request("presence_unsubscribe", id);
  if (all) {
    o["all"] = true;
  } else {
    o["users"] = json::array(users.begin(), users.end());
  }
  return Serialize(o);
}

std::string EncodeSettings(int64_t id, const std::optional<std::string>& presence) {
  json::object o = Request("settings", id);
  if (presence) o["presence"] = *presence;
  return Serialize(o);
}

// ---- Server frames

ServerFrame DecodeServerFrame(std::string_view text) noexcept {
  try {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) return MalformedFrame{"not JSON: " + ec.message()};
    const json::object* o = v.if_object();
    if (!o) return MalformedFrame{"not a JSON object"};
    const json::value* type_v = o->if_contains("type");
    const json::string* type = type_v ? type_v->if_string() : nullptr;
    if (!type) return MalformedFrame{"missing or non-string 'type'"};

    if (*type == "ok") {
      const json::value* id_v = o->if_contains("id");
      std::optional<int64_t> id = id_v ? AsInt(*id_v) : std::nullopt;
      if (!id) return MalformedFrame{"'ok' without an integer 'id'"};
      const json::value* result = o->if_contains("result");
      return OkFrame{*id, result ? *result : json::value()};
    }
    if (*type == "error") {
      ErrorFrame e;
      if (const json::value* id_v = o->if_contains("id")) e.id = AsInt(*id_v);
      const json::value* code = o->if_contains("code");
      e.code = code && code->is_string() ? std::string(code->get_string()) : "unknown";
      const json::value* message = o->if_contains("message");
      if (message && message->is_string()) e.message = std::string(message->get_string());
      const json::value* retryable = o->if_contains("retryable");
      e.retryable = retryable && retryable->is_bool() && retryable->get_bool();
      if (const json::value* after = o->if_contains("retry_after_ms")) {
        e.retry_after_ms = AsInt(*after);
        if (e.retry_after_ms && *e.retry_after_ms < 0) e.retry_after_ms.reset();
      }
      return e;
    }
    if (*type == "message") {
      try {
        MessagePush push;
        push.update.pts = OptInt(*o, "pts", "message push", 0, 1);  // none: a large group
        push.update.kind = "message";
        const json::value* m = Field(*o, "message");
        if (!m) Bad("message push", "missing 'message'");
        push.update.message = DecodeMessage(*m);
        return push;
      } catch (const Error& e) {
        return MalformedFrame{e.message()};
      }
    }
    if (*type == "receipt") {
      try {
        ReceiptPush push;
        push.update.pts = OptInt(*o, "pts", "receipt push", 0, 1);  // none: a large group
        const json::value* r = Field(*o, "receipt");
        if (!r) Bad("receipt push", "missing 'receipt'");
        push.update.receipt = DecodeReceipt(*r);
        if (push.update.receipt->kind.empty()) Bad("receipt push", "receipt without 'kind'");
        push.update.kind = push.update.receipt->kind;
        return push;
      } catch (const Error& e) {
        return MalformedFrame{e.message()};
      }
    }
    if (*type == "typing") {
      try {
        TypingPush push;
        push.event.chat_id = Int(*o, "chat_id", "typing push", 1);
        push.event.user = Str(*o, "user", "typing push");
        push.event.state = DecodeTypingState(*o, "typing push");
        push.event.expires_ms = OptInt(*o, "expires_ms", "typing push", 0, 0);
        return push;
      } catch (const Error& e) {
        return MalformedFrame{e.message()};
      }
    }
    if (*type == "presence") {
      try {
        return PresencePush{DecodePresenceList(*o, "presence push")};
      } catch (const Error& e) {
        return MalformedFrame{e.message()};
      }
    }
    return UnknownPush{std::string(*type)};
  } catch (const std::exception& e) {
    return MalformedFrame{std::string("undecodable frame: ") + e.what()};
  } catch (...) {
    return MalformedFrame{"undecodable frame"};
  }
}

// ---- Results

Message DecodeMessage(const json::value& v) {
  const json::object& o = AsObject(v, "message");
  Message m;
  m.chat_id = Int(o, "chat_id", "message", 1);
  m.seq = Int(o, "seq", "message", 1);
  m.message_id = Str(o, "message_id", "message");
  m.sender = Str(o, "sender", "message");
  m.to = OptStr(o, "to", "message");
  m.kind = OptStr(o, "kind", "message", "text");
  // Text needs a body; an event has an event object instead; later kinds may have neither.
  m.body = m.kind == "text" ? Str(o, "body", "message") : OptStr(o, "body", "message");
  if (const json::value* event = Field(o, "event")) {
    if (!event->is_object()) Bad("message", "'event' is not an object");
    m.event = json::serialize(*event);
  } else if (m.kind == "event") {
    Bad("message", "event message without 'event'");
  }
  if (const json::value* media = Field(o, "media")) {
    if (m.kind == "media") {
      m.media = DecodeMediaRef(*media);
    } else {
      try {  // a later kind may give `media` another shape: then it is not ours to show
        m.media = DecodeMediaRef(*media);
      } catch (const Error&) {
      }
    }
  } else if (m.kind == "media") {
    Bad("message", "media message without 'media'");
  }
  m.ts = OptInt(o, "ts", "message", 0);
  m.client_msg_id = OptStr(o, "client_msg_id", "message");
  return m;
}

AuthInfo DecodeAuthResult(const json::value& v) {
  const json::object& o = AsObject(v, "auth result");
  AuthInfo a;
  a.user = Str(o, "user", "auth result");
  a.device_id = OptStr(o, "device_id", "auth result");
  a.pts = Int(o, "pts", "auth result", 0);
  return a;
}

SendAck DecodeSendAck(const json::value& v) {
  const json::object& o = AsObject(v, "send result");
  SendAck a;
  a.chat_id = Int(o, "chat_id", "send result", 1);
  a.seq = Int(o, "seq", "send result", 1);
  a.message_id = Str(o, "message_id", "send result");
  a.ts = OptInt(o, "ts", "send result", 0);
  a.pts = Int(o, "pts", "send result", 0);
  a.duplicate = OptBool(o, "duplicate", "send result");
  return a;
}

SyncResult DecodeSyncResult(const json::value& v) {
  const json::object& o = AsObject(v, "sync result");
  SyncResult r;
  r.snapshot = OptBool(o, "snapshot", "sync result");
  r.limited = OptBool(o, "limited", "sync result");
  r.pts = Int(o, "pts", "sync result", 0);
  r.has_more = OptBool(o, "has_more", "sync result");
  for (const json::value& u : Arr(o, "updates", "sync result")) {
    r.updates.push_back(DecodeUpdate(u));
  }
  for (const json::value& c : Arr(o, "chats", "sync result")) {
    r.chats.push_back(DecodeSnapshotChat(c));
  }
  r.unavailable = ChatIds(o, "unavailable", "sync result");
  return r;
}

HistoryPage DecodeHistoryPage(const json::value& v) {
  const json::object& o = AsObject(v, "history result");
  HistoryPage h;
  h.chat_id = OptInt(o, "chat_id", "history result", 0, 0);
  for (const json::value& m : Arr(o, "messages", "history result")) {
    h.messages.push_back(DecodeMessage(m));
  }
  h.has_more = OptBool(o, "has_more", "history result");
  return h;
}

ChatList DecodeChatList(const json::value& v) {
  const json::object& o = AsObject(v, "chats result");
  ChatList l;
  for (const json::value& c : Arr(o, "chats", "chats result")) {
    l.chats.push_back(DecodeChatSummary(c));
  }
  l.has_more = OptBool(o, "has_more", "chats result");
  l.pts = OptInt(o, "pts", "chats result", 0, 0);
  l.unread_total = OptInt(o, "unread_total", "chats result", 0, 0);
  l.unread_chats = OptInt(o, "unread_chats", "chats result", 0, 0);
  l.next_cursor = OptStr(o, "next_cursor", "chats result");
  l.unavailable = ChatIds(o, "unavailable", "chats result");
  return l;
}

Receipt DecodeReceipt(const json::value& v) {
  const json::object& o = AsObject(v, "receipt");
  Receipt r;
  r.chat_id = Int(o, "chat_id", "receipt", 1);
  r.user = Str(o, "user", "receipt");
  r.kind = OptStr(o, "kind", "receipt");  // in sync updates the update's kind says it too
  r.seq = Int(o, "seq", "receipt", 0);
  r.ts = OptInt(o, "ts", "receipt", 0);
  return r;
}

MarkResult DecodeMarkResult(const json::value& v) {
  const json::object& o = AsObject(v, "mark result");
  MarkResult r;
  r.chat_id = Int(o, "chat_id", "mark result", 1);
  r.kind = OptStr(o, "kind", "mark result");
  r.seq = Int(o, "seq", "mark result", 0);
  r.advanced = OptBool(o, "advanced", "mark result");
  r.unread = OptInt(o, "unread", "mark result", 0, 0);
  r.pts = OptInt(o, "pts", "mark result", 0, 0);
  return r;
}

bool DecodeTypingResult(const json::value& v) {
  return OptBool(AsObject(v, "typing result"), "forwarded", "typing result");
}

PresenceStatus DecodePresenceStatus(const json::value& v) { return DecodePresenceStatusImpl(v); }

std::vector<PresenceStatus> DecodePresenceResult(const json::value& v) {
  return DecodePresenceList(AsObject(v, "presence result"), "presence result");
}

UserSettings DecodeSettings(const json::value& v) {
  const json::object& o = AsObject(v, "settings result");
  UserSettings s;
  s.presence = OptStr(o, "presence", "settings result");
  return s;
}

int64_t DecodePingResult(const json::value& v) {
  return OptInt(AsObject(v, "ping result"), "ts", "ping result", 0);
}

LoginResult DecodeLoginResult(const json::value& v) {
  const json::object& o = AsObject(v, "login result");
  LoginResult l;
  l.user = Str(o, "user", "login result");
  l.device_id = Str(o, "device_id", "login result");
  l.token = Str(o, "token", "login result");
  if (l.token.empty()) Bad("login result", "empty token");
  l.pts = OptInt(o, "pts", "login result", 0, 0);
  return l;
}

std::string DecodeRegisterResult(const json::value& v) {
  return Str(AsObject(v, "register result"), "user", "register result");
}

MediaInfo DecodeMediaInfo(const json::value& v) {
  const json::object& o = AsObject(v, "media");
  MediaInfo m;
  m.id = Str(o, "id", "media");
  if (m.id.empty()) Bad("media", "empty 'id'");
  m.type = OptStr(o, "type", "media");
  m.kind = OptStr(o, "kind", "media", "file");
  m.size = OptInt(o, "size", "media", 0, 0);
  m.width = OptInt(o, "width", "media", 0, 0);
  m.height = OptInt(o, "height", "media", 0, 0);
  if (const json::value* t = Field(o, "thumbnail")) m.thumbnail = DecodeThumbnail(*t, "thumbnail");
  return m;
}

MediaRef DecodeMediaRef(const json::value& v) {
  const json::object& o = AsObject(v, "media");
  MediaRef m;
  m.id = Str(o, "id", "media");
  if (m.id.empty()) Bad("media", "empty 'id'");
  m.type = OptStr(o, "type", "media");
  m.kind = OptStr(o, "kind", "media", "file");
  m.size = OptInt(o, "size", "media", 0, 0);
  m.name = OptStr(o, "name", "media");
  m.width = OptInt(o, "width", "media", 0, 0);
  m.height = OptInt(o, "height", "media", 0, 0);
  m.caption = OptStr(o, "caption", "media");
  if (const json::value* t = Field(o, "thumbnail")) m.thumbnail = DecodeThumbnail(*t, "thumbnail");
  return m;
}

SignedMediaUrl DecodeSignedMediaUrl(const json::value& v) {
  const json::object& o = AsObject(v, "signed url");
  SignedMediaUrl u;
  u.url = Str(o, "url", "signed url");
  if (u.url.empty()) Bad("signed url", "empty 'url'");
  u.expires_at = OptInt(o, "expires_at", "signed url", 0, 0);
  return u;
}

std::optional<std::pair<std::string, std::string>> DecodeHttpError(std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::value* err = v.get_object().if_contains("error");
  if (!err || !err->is_object()) return std::nullopt;
  const json::object& e = err->get_object();
  const json::value* code = e.if_contains("code");
  if (!code || !code->is_string()) return std::nullopt;
  const json::value* message = e.if_contains("message");
  std::string text = message && message->is_string() ? std::string(message->get_string()) : "";
  return std::make_pair(std::string(code->get_string()), std::move(text));
}

// ---- To JSON

json::object ToJson(const Message& m) {
  json::object o;
  o["chat_id"] = m.chat_id;
  o["seq"] = m.seq;
  o["message_id"] = m.message_id;
  o["sender"] = m.sender;
  if (!m.to.empty()) o["to"] = m.to;
  o["kind"] = m.kind;
  bool other_payload = !m.event.empty() || m.media.has_value();  // events and media: no body
  if (!other_payload || !m.body.empty()) o["body"] = m.body;
  if (!m.event.empty()) {
    json::error_code ec;
    json::value event = json::parse(m.event, ec);
    o["event"] = ec ? json::value(m.event) : std::move(event);
  }
  if (m.media) o["media"] = ToJson(*m.media);
  o["ts"] = m.ts;
  if (!m.client_msg_id.empty()) o["client_msg_id"] = m.client_msg_id;
  return o;
}

json::object ToJson(const SendAck& a) {
  json::object o;
  o["chat_id"] = a.chat_id;
  o["seq"] = a.seq;
  o["message_id"] = a.message_id;
  o["ts"] = a.ts;
  o["pts"] = a.pts;
  o["duplicate"] = a.duplicate;
  o["client_msg_id"] = a.client_msg_id;
  return o;
}

json::object ToJson(const HistoryPage& h) {
  json::object o;
  o["chat_id"] = h.chat_id;
  json::array messages;
  for (const Message& m : h.messages) messages.push_back(ToJson(m));
  o["messages"] = std::move(messages);
  o["has_more"] = h.has_more;
  return o;
}

json::object ToJson(const ChatSummary& c) {
  json::object o;
  o["chat_id"] = c.chat_id;
  o["kind"] = c.kind;
  if (c.kind != "group") o["peer"] = c.peer;
  if (c.kind != "direct") {
    o["name"] = c.name;
    o["large"] = c.large;
    o["member"] = c.member;
  }
  o["last_seq"] = c.last_seq;
  o["last_message"] = c.last_message ? json::value(ToJson(*c.last_message)) : json::value();
  o["unread"] = c.unread;
  o["read_seq"] = c.read_seq;
  o["delivered_seq"] = c.delivered_seq;
  if (c.kind == "direct") {
    o["peer_read_seq"] = c.peer_read_seq;
    o["peer_delivered_seq"] = c.peer_delivered_seq;
  }
  if (c.kind == "group" && (!c.large || !c.reads.empty())) {
    json::array reads;
    for (const ReadPosition& r : c.reads) {
      reads.push_back(json::object{
          {"user", r.user}, {"read_seq", r.read_seq}, {"delivered_seq", r.delivered_seq}});
    }
    o["reads"] = std::move(reads);
  }
  return o;
}

json::object ToJson(const ChatList& l) {
  json::object o;
  json::array chats;
  for (const ChatSummary& c : l.chats) chats.push_back(ToJson(c));
  o["chats"] = std::move(chats);
  o["has_more"] = l.has_more;
  o["pts"] = l.pts;
  o["unread_total"] = l.unread_total;
  o["unread_chats"] = l.unread_chats;
  if (!l.unavailable.empty()) {
    json::array ids;
    for (int64_t id : l.unavailable) ids.push_back(id);
    o["unavailable"] = std::move(ids);
  }
  return o;
}

json::object ToJson(const LoginResult& l) {
  json::object o;
  o["user"] = l.user;
  o["device_id"] = l.device_id;
  o["token"] = l.token;
  return o;
}

json::object ToJson(const Receipt& r) {
  json::object o;
  o["chat_id"] = r.chat_id;
  o["user"] = r.user;
  o["kind"] = r.kind;
  o["seq"] = r.seq;
  o["ts"] = r.ts;
  return o;
}

json::object ToJson(const MarkResult& r) {
  json::object o;
  o["chat_id"] = r.chat_id;
  o["kind"] = r.kind;
  o["seq"] = r.seq;
  o["advanced"] = r.advanced;
  o["unread"] = r.unread;
  o["pts"] = r.pts;
  return o;
}

json::object ToJson(const TypingEvent& t) {
  json::object o;
  o["chat_id"] = t.chat_id;
  o["user"] = t.user;
  o["state"] = ToString(t.state);
  if (t.expires_ms > 0) o["expires_ms"] = t.expires_ms;
  return o;
}

json::object ToJson(const PresenceStatus& p) {
  json::object o;
  o["user"] = p.user;
  if (p.hidden) {
    o["hidden"] = true;
    return o;
  }
  o["online"] = p.online;
  if (p.last_seen > 0) o["last_seen"] = p.last_seen;
  return o;
}

json::object ToJson(const UserSettings& s) {
  json::object o;
  if (!s.presence.empty()) o["presence"] = s.presence;
  return o;
}

json::object ToJson(const MediaInfo& m) {
  json::object o;
  o["id"] = m.id;
  o["type"] = m.type;
  o["kind"] = m.kind;
  o["size"] = m.size;
  if (m.width > 0 || m.height > 0) {
    o["width"] = m.width;
    o["height"] = m.height;
  }
  if (m.thumbnail) o["thumbnail"] = ThumbnailJson(*m.thumbnail);
  return o;
}

json::object ToJson(const MediaRef& m) {
  json::object o;
  o["id"] = m.id;
  o["type"] = m.type;
  o["kind"] = m.kind;
  o["size"] = m.size;
  if (!m.name.empty()) o["name"] = m.name;
  if (m.width > 0 || m.height > 0) {
    o["width"] = m.width;
    o["height"] = m.height;
  }
  if (!m.caption.empty()) o["caption"] = m.caption;
  if (m.thumbnail) o["thumbnail"] = ThumbnailJson(*m.thumbnail);
  return o;
}

json::object ToJson(const SignedMediaUrl& u) {
  json::object o;
  o["url"] = u.url;
  o["expires_at"] = u.expires_at;
  return o;
}

}  // namespace parley::wire

namespace parley {

const char* ToString(TypingState state) { return state == TypingState::kStop ? "stop" : "start"; }

}  // namespace parley
