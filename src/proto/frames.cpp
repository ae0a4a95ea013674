#include "proto/frames.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <charconv>

#include "common/json_text.h"
#include "common/utf8.h"

namespace json = boost::json;

namespace parley::proto {
namespace {

constexpr uint64_t kMaxSafeInt = (1ull << 53) - 1;

Error bad(std::string msg) { return Error{Errc::bad_request, std::move(msg)}; }

// Field readers: absent optional fields leave the default; wrong types are bad_request.
std::optional<Error> read_string(const json::object& o, std::string_view key, std::string& out,
                                 bool required, size_t max_bytes,
                                 Errc too_long = Errc::bad_request) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return bad(fmt::format("missing field: {}", key));
    return std::nullopt;
  }
  auto* s = v->if_string();
  if (!s) return bad(fmt::format("field {} must be a string", key));
  if (!valid_utf8(std::string_view(*s)))
    return Error{Errc::invalid_utf8, fmt::format("field {} is not valid UTF-8", key)};
  if (s->size() > max_bytes)
    return Error{too_long, fmt::format("field {} is longer than {} bytes", key, max_bytes)};
  out.assign(s->data(), s->size());
  return std::nullopt;
}

bool is_media_id(std::string_view id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<Error> read_uint(const json::object& o, std::string_view key, uint64_t& out,
                               bool required, uint64_t min, uint64_t max) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return bad(fmt::format("missing field: {}", key));
    return std::nullopt;
  }
  uint64_t n;
  if (v->is_uint64())
    n = v->get_uint64();
  else if (v->is_int64() && v->get_int64() >= 0)
    n = static_cast<uint64_t>(v->get_int64());
  else
    return bad(fmt::format("field {} must be a non-negative integer", key));
  if (n < min || n > max) return bad(fmt::format("field {} must be in [{}, {}]", key, min, max));
  out = n;
  return std::nullopt;
}

// A JSON array of user ids.
std::optional<Error> read_users(const json::object& o, std::string_view key,
                                std::vector<std::string>& out, bool required, uint32_t max) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return bad(fmt::format("missing field: {}", key));
    return std::nullopt;
  }
  auto* arr = v->if_array();
  if (!arr) return bad(fmt::format("field {} must be an array of user ids", key));
  if (arr->size() > max)
    return Error{Errc::too_large, fmt::format("at most {} users per request", max)};
  for (const auto& u : *arr) {
    auto* str = u.if_string();
    if (!str || str->empty() || str->size() > 64)
      return bad(fmt::format("field {} must hold user ids", key));
    out.emplace_back(str->data(), str->size());
  }
  if (required && out.empty()) return bad(fmt::format("field {} must not be empty", key));
  return std::nullopt;
}

template <class T>
std::optional<Error> read_limit(const json::object& o, T& out, uint32_t max) {
  uint64_t v = out;
  auto e = read_uint(o, "limit", v, false, 1, max);
  out = static_cast<T>(v);
  return e;
}

int hex4(std::string_view s, size_t at) {
  if (at + 4 > s.size()) return -1;
  int v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// The text with every \uD800-\uDFFF escape replaced by \uFFFD.
std::string replace_surrogate_escapes(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i + 5 < out.size(); ++i) {
    if (out[i] != '\\') continue;
    if (out[i + 1] != 'u') {
      ++i;
      continue;
    }
    int cp = hex4(out, i + 2);
    if (cp >= 0xd800 && cp <= 0xdfff) out.replace(i + 2, 4, "fffd");
    i += 5;
  }
  return out;
}

// True if the text has a \uD800-\uDFFF escape that is not a valid high+low pair.
bool has_unpaired_surrogate_escape(std::string_view s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '\\') continue;
    if (s[i + 1] != 'u') {
      ++i;  // skip the escaped character
      continue;
    }
    int cp = hex4(s, i + 2);
    if (cp >= 0xdc00 && cp <= 0xdfff) return true;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      int lo = (i + 7 < s.size() && s[i + 6] == '\\' && s[i + 7] == 'u') ? hex4(s, i + 8) : -1;
      if (lo < 0xdc00 || lo > 0xdfff) return true;
      i += 11;
      continue;
    }
    i += 5;
  }
  return false;
}

}  // namespace

void split_requests(std::string_view message, const std::function<void(std::string_view)>& each) {
  auto blank = [](std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
  };
  size_t start = 0, pieces = 0;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    } else if (c == '\n' && depth == 0) {
      std::string_view piece = message.substr(start, i - start);
      if (!blank(piece)) each(piece), ++pieces;
      start = i + 1;
    }
  }
  std::string_view rest = message.substr(start);
  if (!blank(rest))
    each(rest);
  else if (pieces == 0)
    each(message);  // nothing but whitespace: one (malformed) request, answered as such
}

std::variant<Request, RequestError> parse_request(std::string_view text,
                                                  const ParseLimits& limits) {
  json::parse_options opts;
  opts.max_depth = 16;
  json::error_code ec;
  json::value doc = json::parse(text, ec, {}, opts);
  if (ec) {
    // Boost.JSON 1.81 reports an unpaired surrogate escape as a plain syntax error.
    bool utf = ec == json::error::illegal_leading_surrogate ||
               ec == json::error::illegal_trailing_surrogate || has_unpaired_surrogate_escape(text);
    if (utf) {
      // Echo the request's id if the frame has one: parse a copy whose bad escapes are
      // replaced by U+FFFD, only to find the id.
      std::optional<uint64_t> id;
      json::error_code ec2;
      auto copy = json::parse(replace_surrogate_escapes(text), ec2, {}, opts);
      if (!ec2 && copy.is_object())
        if (auto* v = copy.as_object().if_contains("id"); v && v->is_int64() && v->get_int64() > 0)
          id = static_cast<uint64_t>(v->get_int64());
      return RequestError{id, {Errc::invalid_utf8, "invalid UTF-16 escape in JSON string"}};
    }
    return RequestError{std::nullopt, bad(fmt::format("malformed JSON: {}", ec.message()))};
  }
  auto* obj = doc.if_object();
  if (!obj) return RequestError{std::nullopt, bad("a frame must be a JSON object")};

  Request req;
  if (auto e = read_uint(*obj, "id", req.id, true, 1, kMaxSafeInt))
    return RequestError{std::nullopt, *e};
  RequestError fail{req.id, {}};
  std::string type;
  if (auto e = read_string(*obj, "type", type, true, 32)) return fail.error = *e, fail;

  std::optional<Error> e;
  if (type == "auth") {
    AuthRequest r;
    e = read_string(*obj, "token", r.token, true, 8192);
    if (auto* v = obj->if_contains("batch"); !e && v && !v->is_null()) {
      if (!v->is_bool())
        e = bad("field batch must be true or false");
      else
        r.batch = v->get_bool();
    }
    req.type = RequestType::auth;
    req.body = std::move(r);
  } else if (type == "send") {
    SendRequest r;
    if (!e) e = read_string(*obj, "to", r.to, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.to.empty() == (r.chat_id == 0)) e = bad("give exactly one of to, chat_id");
    if (!e) e = read_string(*obj, "client_msg_id", r.client_msg_id, true, 64);
    if (!e && r.client_msg_id.empty()) e = bad("client_msg_id must not be empty");
    const json::value* media = obj->if_contains("media");
    if (media && media->is_null()) media = nullptr;
    if (!e && media && obj->if_contains("body") && !obj->at("body").is_null())
      e = bad("give exactly one of body, media");
    if (!e && !media) {
      e = read_string(*obj, "body", r.body, true, limits.max_message_bytes, Errc::too_large);
      if (!e && r.body.empty()) e = bad("body must not be empty");
    }
    if (!e && media) {
      if (!media->is_object()) {
        e = bad("media must be an object");
      } else {
        const auto& m = media->as_object();
        MediaSend ms;
        e = read_string(m, "id", ms.id, true, 64);
        if (!e && !is_media_id(ms.id)) e = bad("media.id must be 64 lowercase hex characters");
        if (!e) e = read_string(m, "name", ms.name, false, 1024);
        if (!e)
          e = read_string(m, "caption", ms.caption, false, limits.max_message_bytes,
                          Errc::too_large);
        // Other fields (a client's own "type", "size", ...) are ignored, as everywhere
        // (PROTOCOL.md §"conventions"): the server fills in the descriptor from the object.
        r.media = std::move(ms);
      }
    }
    if (!e) {
      std::string kind = media ? "media" : "text";
      e = read_string(*obj, "kind", kind, false, 32);
      if (!e && kind != (media ? "media" : "text"))
        e = bad(fmt::format("unsupported kind: {}", kind));
    }
    req.type = RequestType::send;
    req.body = std::move(r);
  } else if (type == "sync") {
    SyncRequest r;
    uint64_t pts = 0;
    if (obj->if_contains("pts") && !obj->at("pts").is_null()) {
      e = read_uint(*obj, "pts", pts, true, 0, kMaxSafeInt);
      r.pts = pts;
    }
    if (!e) e = read_limit(*obj, r.limit, limits.max_sync_page);
    req.type = RequestType::sync;
    req.body = r;
  } else if (type == "history") {
    HistoryRequest r;
    e = read_string(*obj, "with", r.with, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.with.empty() == (r.chat_id == 0)) e = bad("give exactly one of with, chat_id");
    if (!e) e = read_uint(*obj, "before_seq", r.before_seq, false, 1, kMaxSafeInt);
    if (!e && obj->if_contains("after_seq") && !obj->at("after_seq").is_null()) {
      uint64_t after = 0;
      e = read_uint(*obj, "after_seq", after, true, 0, kMaxSafeInt);
      r.after_seq = after;
    }
    if (!e && r.before_seq && r.after_seq) e = bad("give at most one of before_seq, after_seq");
    if (!e) e = read_limit(*obj, r.limit, limits.max_history_page);
    req.type = RequestType::history;
    req.body = std::move(r);
  } else if (type.starts_with("group_")) {
    static const std::pair<std::string_view, store::GroupOp> kOps[] = {
        {"group_create", store::GroupOp::create},
        {"group_rename", store::GroupOp::rename},
        {"group_add", store::GroupOp::add},
        {"group_remove", store::GroupOp::remove},
        {"group_promote", store::GroupOp::promote},
        {"group_demote", store::GroupOp::demote},
        {"group_leave", store::GroupOp::leave},
        {"group_transfer", store::GroupOp::transfer},
        {"group_delete", store::GroupOp::remove_group},
        {"group_settings", store::GroupOp::set_full_history}};
    if (type == "group_info") {
      GroupInfoRequest r;
      e = read_uint(*obj, "chat_id", r.chat_id, true, 1, kMaxSafeInt);
      req.type = RequestType::group_info;
      req.body = r;
    } else {
      auto it =
          std::find_if(std::begin(kOps), std::end(kOps), [&](auto& p) { return p.first == type; });
      if (it == std::end(kOps)) {
        e = Error{Errc::unknown_type, fmt::format("unknown request type: {}", type)};
      } else {
        GroupRequest r;
        r.op = it->second;
        using Op = store::GroupOp;
        if (r.op != Op::create) e = read_uint(*obj, "chat_id", r.chat_id, true, 1, kMaxSafeInt);
        if (!e && (r.op == Op::create || r.op == Op::rename)) {
          e = read_string(*obj, "name", r.name, true, limits.max_group_name_bytes, Errc::too_large);
          if (!e && r.name.empty()) e = bad("name must not be empty");
        }
        if (!e && (r.op == Op::create || r.op == Op::add))
          e = read_users(*obj, r.op == Op::create ? "members" : "users", r.users, r.op == Op::add,
                         limits.max_users_per_request);
        if (!e && (r.op == Op::remove || r.op == Op::promote || r.op == Op::demote ||
                   r.op == Op::transfer)) {
          std::string user;
          e = read_string(*obj, "user", user, true, 64);
          r.users.push_back(std::move(user));
        }
        if (!e && r.op == Op::set_full_history) {
          auto* v = obj->if_contains("full_history");
          if (!v || !v->is_bool())
            e = bad("field full_history must be true or false");
          else
            r.full_history = v->get_bool();
        }
        req.type = RequestType::group;
        req.body = std::move(r);
      }
    }
  } else if (type == "chats") {
    ChatsRequest r;
    e = read_limit(*obj, r.limit, limits.max_chats_page);
    std::string cursor;
    if (!e) e = read_string(*obj, "cursor", cursor, false, 64);
    if (!e && !cursor.empty()) {
      auto c = parse_chat_cursor(cursor);
      if (!c)
        e = bad("cursor must be a next_cursor of an earlier chats answer");
      else
        r.cursor = *c;
    }
    req.type = RequestType::chats;
    req.body = r;
  } else if (type == "ping") {
    req.type = RequestType::ping;
    req.body = PingRequest{};
  } else if (type == "mark_read" || type == "mark_delivered") {
    MarkRequest r;
    r.kind = type == "mark_read" ? store::UpdateKind::read : store::UpdateKind::delivered;
    e = read_string(*obj, "with", r.with, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.with.empty() == (r.chat_id == 0)) e = bad("give exactly one of with, chat_id");
    bool has_seq = obj->if_contains("seq") && !obj->at("seq").is_null();
    if (!e && (has_seq || r.kind == store::UpdateKind::delivered)) {
      uint64_t seq = 0;
      e = read_uint(*obj, "seq", seq, true, 1, kMaxSafeInt);
      r.seq = seq;
    }
    req.type = RequestType::mark;
    req.body = std::move(r);
  } else if (type == "typing") {
    TypingRequest r;
    e = read_string(*obj, "with", r.with, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.with.empty() == (r.chat_id == 0)) e = bad("give exactly one of with, chat_id");
    std::string state;
    if (!e) e = read_string(*obj, "state", state, true, 16);
    if (!e && state != "start" && state != "stop") e = bad("state must be start or stop");
    r.start = state == "start";
    req.type = RequestType::typing;
    req.body = std::move(r);
  } else if (type == "presence_subscribe" || type == "presence_unsubscribe") {
    PresenceRequest r;
    r.subscribe = type == "presence_subscribe";
    if (!r.subscribe) {
      if (auto* v = obj->if_contains("all"); v && !v->is_null()) {
        if (!v->is_bool())
          e = bad("field all must be true or false");
        else
          r.all = v->get_bool();
      }
    }
    if (!e && !r.all) e = read_users(*obj, "users", r.users, true, limits.max_users_per_request);
    req.type = RequestType::presence;
    req.body = std::move(r);
  } else if (type == "settings") {
    SettingsRequest r;
    std::string presence;
    e = read_string(*obj, "presence", presence, false, 16);
    if (!e && !presence.empty()) {
      r.presence = parse_visibility(presence);
      if (!r.presence) e = bad("presence must be everyone, contacts or nobody");
    }
    if (!e && obj->if_contains("dnd_until") && !obj->at("dnd_until").is_null()) {
      uint64_t until = 0;
      e = read_uint(*obj, "dnd_until", until, true, 0, kMaxSafeInt);
      r.dnd_until = static_cast<int64_t>(until);
    }
    if (auto* v = obj->if_contains("push_preview"); !e && v && !v->is_null()) {
      if (!v->is_bool())
        e = bad("field push_preview must be true or false");
      else
        r.push_preview = v->get_bool();
    }
    req.type = RequestType::settings;
    req.body = r;
  } else if (type == "push_register" || type == "push_unregister") {
    PushRequest r;
    r.register_target = type == "push_register";
    if (r.register_target) {
      std::string provider;
      e = read_string(*obj, "provider", provider, true, 16);
      if (!e) {
        if (provider == "webhook")
          r.provider = store::PushProvider::webhook;
        else if (provider == "fcm")
          r.provider = store::PushProvider::fcm;
        else if (provider == "apns")
          r.provider = store::PushProvider::apns;
        else
          e = bad("provider must be apns, fcm or webhook");
      }
      if (!e) e = read_string(*obj, "token", r.token, true, 4096, Errc::too_large);
      if (!e && r.token.empty()) e = bad("token must not be empty");
      if (!e) e = read_string(*obj, "app_id", r.app_id, false, 255, Errc::too_large);
    }
    req.type = RequestType::push;
    req.body = std::move(r);
  } else if (type == "mute") {
    MuteRequest r;
    e = read_string(*obj, "with", r.with, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.with.empty() == (r.chat_id == 0)) e = bad("give exactly one of with, chat_id");
    if (!e) {
      auto* v = obj->if_contains("until");
      if (!v || !v->is_int64() || v->get_int64() < -1 ||
          v->get_int64() > static_cast<int64_t>(kMaxSafeInt))
        e = bad("until must be a time in ms, 0 (unmute) or -1 (for ever)");
      else
        r.until = v->get_int64();
    }
    req.type = RequestType::mute;
    req.body = std::move(r);
  } else {
    e = Error{Errc::unknown_type, fmt::format("unknown request type: {}", type)};
  }
  if (e) return fail.error = std::move(*e), fail;
  return req;
}

std::string ok_frame(uint64_t id, std::string_view result_json) {
  return fmt::format(R"({{"type":"ok","id":{},"result":{}}})", id, result_json);
}

std::string error_frame(std::optional<uint64_t> id, const Error& error,
                        std::optional<uint64_t> retry_after_ms) {
  std::string out =
      fmt::format(R"({{"type":"error","id":{},"code":"{}","message":{},"retryable":{})",
                  id ? std::to_string(*id) : "null", errc_name(error.code),
                  json_quote(error.message), errc_retryable(error.code));
  if (retry_after_ms) out += fmt::format(R"(,"retry_after_ms":{})", *retry_after_ms);
  out += '}';
  return out;
}

std::string message_json(const store::Message& m) {
  std::string out = fmt::format(R"({{"chat_id":{},"seq":{},"message_id":"{}","sender":{})",
                                m.chat_id, m.seq, m.message_id, json_quote(m.sender));
  if (!m.to.empty()) out += fmt::format(R"(,"to":{})", json_quote(m.to));
  if (m.kind == store::MessageKind::event)  // the store keeps an event as a JSON object
    out += fmt::format(R"(,"kind":"event","event":{},"ts":{}}})", m.body, m.ts);
  else if (m.kind == store::MessageKind::media)  // and a media descriptor too
    out += fmt::format(R"(,"kind":"media","media":{},"ts":{},"client_msg_id":{}}})", m.body, m.ts,
                       json_quote(m.client_msg_id));
  else
    out += fmt::format(R"(,"kind":"text","body":{},"ts":{},"client_msg_id":{}}})",
                       json_quote(m.body), m.ts, json_quote(m.client_msg_id));
  return out;
}

std::string message_push(uint64_t pts, std::string_view msg_json) {
  return fmt::format(R"({{"type":"message","pts":{},"message":{}}})", pts, msg_json);
}

std::string send_result_json(const store::AppendResult& r) {
  return fmt::format(
      R"({{"chat_id":{},"seq":{},"message_id":"{}","ts":{},"pts":{},"duplicate":{}}})",
      r.message.chat_id, r.message.seq, r.message.message_id, r.message.ts, r.sender_pts,
      r.duplicate);
}

namespace {
std::string chat_fields(const store::ChatSummary& c) {
  std::string out = fmt::format(R"("chat_id":{},"kind":"{}")", c.chat_id,
                                c.kind == store::ChatKind::direct ? "direct" : "group");
  if (!c.peer.empty()) out += fmt::format(R"(,"peer":{})", json_quote(c.peer));
  if (c.kind == store::ChatKind::group)
    out +=
        fmt::format(R"(,"name":{},"large":{},"member":{})", json_quote(c.name), c.large, c.member);
  out += fmt::format(R"(,"last_seq":{},"unread":{},"read_seq":{},"delivered_seq":{})", c.last_seq,
                     c.unread, c.read_seq, c.delivered_seq);
  if (c.kind == store::ChatKind::direct) {
    if (!c.reads.empty())
      out += fmt::format(R"(,"peer_read_seq":{},"peer_delivered_seq":{})", c.reads[0].read_seq,
                         c.reads[0].delivered_seq);
  } else if (!c.large) {
    out += R"(,"reads":[)";
    for (size_t i = 0; i < c.reads.size(); ++i) {
      if (i) out += ',';
      out +=
          fmt::format(R"({{"user":{},"read_seq":{},"delivered_seq":{}}})",
                      json_quote(c.reads[i].user), c.reads[i].read_seq, c.reads[i].delivered_seq);
    }
    out += ']';
  }
  return out;
}
}  // namespace

namespace {
// Room kept for what closes a page (has_more, pts, counts...).
constexpr size_t kPageTail = 256;

std::string update_json(const store::Update& u) {
  if (u.kind == store::UpdateKind::message)
    return fmt::format(R"({{"pts":{},"kind":"message","message":{}}})", u.pts,
                       message_json(u.message));
  return fmt::format(R"({{"pts":{},"kind":"{}","receipt":{}}})", u.pts,
                     u.kind == store::UpdateKind::read ? "read" : "delivered",
                     receipt_json(u.receipt));
}

// `,"unavailable":[ids]` when a sharded store could not reach some of the chats, else "".
std::string unavailable_json(const std::vector<store::ChatId>& chats) {
  if (chats.empty()) return {};
  return fmt::format(R"(,"unavailable":[{}])", fmt::join(chats, ","));
}

// Whether `item` may join a page of `used` bytes that holds `count` items already.
bool fits(size_t used, size_t item, size_t count, size_t max_bytes) {
  return count == 0 || used + 1 + item + kPageTail <= max_bytes;
}
}  // namespace

std::string updates_json(const store::UpdatesPage& page, size_t max_bytes) {
  std::string out = R"({"updates":[)";
  uint64_t pts = page.pts;
  bool has_more = page.has_more;
  for (size_t i = 0; i < page.updates.size(); ++i) {
    std::string item = update_json(page.updates[i]);
    if (!fits(out.size(), item.size(), i, max_bytes)) {
      pts = page.updates[i - 1].pts;  // the client asks again from the last one it got
      has_more = true;
      break;
    }
    if (i) out += ',';
    out += item;
  }
  out += fmt::format(R"(],"pts":{},"has_more":{},"limited":{}}})", pts, has_more, page.limited);
  return out;
}

std::string snapshot_json(const store::Snapshot& snap, bool limited, size_t max_bytes) {
  const std::string tail = unavailable_json(snap.unavailable);
  max_bytes = max_bytes > tail.size() ? max_bytes - tail.size() : 0;
  std::string out = fmt::format(
      R"({{"snapshot":true,"limited":{},"pts":{},"updates":[],"has_more":false,"chats":[)", limited,
      snap.pts);
  // Every chat goes in (while its own fields fit); then the chats' messages, newest first,
  // one per chat in turn, while they fit: each chat shows its latest messages.
  std::vector<std::string> heads;
  size_t used = out.size();
  for (const auto& w : snap.chats) {
    std::string head = '{' + chat_fields(w.chat);
    if (!fits(used, head.size() + 64, heads.size(), max_bytes)) break;
    used += head.size() + 64 + 1;  // 64: the window's own fields
    heads.push_back(std::move(head));
  }
  std::vector<std::vector<std::string>> taken(heads.size());  // newest first
  std::vector<bool> full(heads.size(), false);                // its next message did not fit
  for (bool more = true; more;) {
    more = false;
    for (size_t c = 0; c < heads.size(); ++c) {
      const auto& msgs = snap.chats[c].messages;
      if (full[c] || taken[c].size() == msgs.size()) continue;
      std::string m = message_json(msgs[msgs.size() - 1 - taken[c].size()]);
      if (used + m.size() + 1 + kPageTail > max_bytes) {
        full[c] = true;  // other chats' smaller messages may still fit
        continue;
      }
      used += m.size() + 1;
      taken[c].push_back(std::move(m));
      more = true;
    }
  }
  for (size_t c = 0; c < heads.size(); ++c) {
    const auto& w = snap.chats[c];
    const size_t cut = w.messages.size() - taken[c].size();
    if (c) out += ',';
    out += heads[c];
    out += R"(,"messages":[)";
    for (size_t i = taken[c].size(); i-- > 0;) {
      out += taken[c][i];
      if (i) out += ',';
    }
    out += fmt::format(R"(],"has_more":{},"older":{}}})", w.has_more || cut > 0, w.older + cut);
  }
  out += ']';
  out += tail;
  out += '}';
  return out;
}

std::string history_json(const store::HistoryPage& page, bool forwards, size_t max_bytes) {
  std::string head = fmt::format(R"({{"chat_id":{},"messages":[)", page.chat_id);
  // Take messages from where the page starts: the newest going backwards, the oldest
  // going forwards.
  const size_t n = page.messages.size();
  std::vector<std::string> taken;
  size_t used = head.size();
  for (size_t k = 0; k < n; ++k) {
    std::string m = message_json(page.messages[forwards ? k : n - 1 - k]);
    if (!fits(used, m.size(), taken.size(), max_bytes)) break;
    used += m.size() + 1;
    taken.push_back(std::move(m));
  }
  if (!forwards) std::reverse(taken.begin(), taken.end());
  std::string out = std::move(head);
  for (size_t i = 0; i < taken.size(); ++i) {
    if (i) out += ',';
    out += taken[i];
  }
  out += fmt::format(R"(],"has_more":{}}})", page.has_more || taken.size() < n);
  return out;
}

std::string chat_cursor(const store::ChatListCursor& c) {
  return fmt::format("{}.{}", c.last_ts, c.chat_id);
}

std::optional<store::ChatListCursor> parse_chat_cursor(std::string_view s) {
  auto dot = s.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits, auto& out) {
    if (digits.empty() || digits.size() > 19) return false;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc() && p == digits.data() + digits.size();
  };
  store::ChatListCursor c;
  if (!number(s.substr(0, dot), c.last_ts) || !number(s.substr(dot + 1), c.chat_id) ||
      c.last_ts < 0)
    return std::nullopt;
  return c;
}

std::string chats_json(const store::ChatList& list, size_t max_bytes) {
  const std::string tail = unavailable_json(list.unavailable);
  max_bytes = max_bytes > tail.size() ? max_bytes - tail.size() : 0;
  std::string out = R"({"chats":[)";
  bool has_more = list.has_more;
  size_t count = 0;
  for (const auto& c : list.chats) {
    std::string item = '{' + chat_fields(c) + R"(,"last_message":)";
    item += c.last_message ? message_json(*c.last_message) : "null";
    item += '}';
    if (!fits(out.size(), item.size(), count, max_bytes)) {
      has_more = true;
      break;
    }
    if (count++) out += ',';
    out += item;
  }
  out += fmt::format(R"(],"has_more":{},"pts":{},"unread_total":{},"unread_chats":{})", has_more,
                     list.pts, list.unread_total, list.unread_chats);
  if (has_more && count > 0) {
    const auto& last = list.chats[count - 1];
    out += fmt::format(R"(,"next_cursor":"{}")", chat_cursor({last.last_ts, last.chat_id}));
  }
  out += tail;
  out += '}';
  return out;
}

}  // namespace parley::proto

namespace parley::proto {
namespace {
const char* role_name(store::Role r) {
  switch (r) {
    case store::Role::owner:
      return "owner";
    case store::Role::admin:
      return "admin";
    default:
      return "member";
  }
}
std::string chat_info_fields(const store::ChatInfo& c) {
  return fmt::format(
      R"("chat_id":{},"kind":"group","name":{},"created_by":{},"created_at":{},"last_seq":{},"member_count":{},"large":{},"full_history":{})",
      c.chat_id, json_quote(c.name), json_quote(c.created_by), c.created_at, c.last_seq,
      c.member_count, c.large, c.full_history);
}
}  // namespace

std::string group_result_json(const store::GroupResult& r) {
  return fmt::format(R"({{"chat":{{{}}},"seq":{},"message_id":"{}","ts":{},"pts":{}}})",
                     chat_info_fields(r.chat), r.event.message.seq, r.event.message.message_id,
                     r.event.message.ts, r.event.sender_pts);
}

std::string group_info_json(const store::ChatInfo& info) {
  std::string out = R"({"chat":{)" + chat_info_fields(info) + R"(,"members":[)";
  for (size_t i = 0; i < info.members.size(); ++i) {
    const auto& m = info.members[i];
    if (i) out += ',';
    out += fmt::format(
        R"({{"user":{},"role":"{}","joined_seq":{},"read_seq":{},"delivered_seq":{}}})",
        json_quote(m.user), role_name(m.role), m.joined_seq, m.read_seq, m.delivered_seq);
  }
  out += fmt::format(R"(],"members_truncated":{}}}}})", info.members.size() < info.member_count);
  return out;
}

std::string chat_push(std::string_view msg_json) {
  return fmt::format(R"({{"type":"message","message":{}}})", msg_json);
}

std::string receipt_json(const store::Receipt& r) {
  return fmt::format(R"({{"chat_id":{},"user":{},"kind":"{}","seq":{},"ts":{}}})", r.chat_id,
                     json_quote(r.user), r.kind == store::UpdateKind::read ? "read" : "delivered",
                     r.seq, r.ts);
}

std::string receipt_push(uint64_t pts, std::string_view rjson) {
  if (pts == 0) return fmt::format(R"({{"type":"receipt","receipt":{}}})", rjson);
  return fmt::format(R"({{"type":"receipt","pts":{},"receipt":{}}})", pts, rjson);
}

std::string mark_result_json(const store::ReceiptResult& r) {
  return fmt::format(R"({{"chat_id":{},"kind":"{}","seq":{},"advanced":{},"unread":{},"pts":{}}})",
                     r.receipt.chat_id,
                     r.receipt.kind == store::UpdateKind::read ? "read" : "delivered",
                     r.receipt.seq, r.advanced, r.unread, r.user_pts);
}

std::string typing_push(uint64_t chat_id, std::string_view user, bool start, uint32_t expires_ms) {
  if (!start)
    return fmt::format(R"({{"type":"typing","chat_id":{},"user":{},"state":"stop"}})", chat_id,
                       json_quote(user));
  return fmt::format(
      R"({{"type":"typing","chat_id":{},"user":{},"state":"start","expires_ms":{}}})", chat_id,
      json_quote(user), expires_ms);
}

std::string_view visibility_name(store::PresenceVisibility v) {
  switch (v) {
    case store::PresenceVisibility::contacts:
      return "contacts";
    case store::PresenceVisibility::nobody:
      return "nobody";
    default:
      return "everyone";
  }
}

std::optional<store::PresenceVisibility> parse_visibility(std::string_view name) {
  if (name == "everyone") return store::PresenceVisibility::everyone;
  if (name == "contacts") return store::PresenceVisibility::contacts;
  if (name == "nobody") return store::PresenceVisibility::nobody;
  return std::nullopt;
}

std::string settings_json(const store::UserSettings& s) {
  return fmt::format(R"({{"presence":"{}","dnd_until":{},"push_preview":{}}})",
                     visibility_name(s.presence), s.dnd_until, s.push_preview);
}

}  // namespace parley::proto
