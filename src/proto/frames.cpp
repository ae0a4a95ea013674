#include "proto/frames.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

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

std::string quoted(std::string_view s) {
  return json::serialize(json::string_view(s.data(), s.size()));
}

}  // namespace

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
    if (utf)
      return RequestError{std::nullopt,
                          {Errc::invalid_utf8, "invalid UTF-16 escape in JSON string"}};
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
    req.type = RequestType::auth;
    req.body = std::move(r);
  } else if (type == "send") {
    SendRequest r;
    if (!e) e = read_string(*obj, "to", r.to, false, 64);
    if (!e) e = read_uint(*obj, "chat_id", r.chat_id, false, 1, kMaxSafeInt);
    if (!e && r.to.empty() == (r.chat_id == 0)) e = bad("give exactly one of to, chat_id");
    if (!e) e = read_string(*obj, "client_msg_id", r.client_msg_id, true, 64);
    if (!e && r.client_msg_id.empty()) e = bad("client_msg_id must not be empty");
    if (!e) e = read_string(*obj, "body", r.body, true, limits.max_message_bytes, Errc::too_large);
    if (!e && r.body.empty()) e = bad("body must not be empty");
    if (!e) {
      std::string kind = "text";
      e = read_string(*obj, "kind", kind, false, 32);
      if (!e && kind != "text") e = bad(fmt::format("unsupported kind: {}", kind));
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
    if (!e) e = read_limit(*obj, r.limit, limits.max_history_page);
    req.type = RequestType::history;
    req.body = std::move(r);
  } else if (type == "chats") {
    ChatsRequest r;
    e = read_limit(*obj, r.limit, limits.max_chats_page);
    req.type = RequestType::chats;
    req.body = r;
  } else if (type == "ping") {
    req.type = RequestType::ping;
    req.body = PingRequest{};
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
                  id ? std::to_string(*id) : "null", errc_name(error.code), quoted(error.message),
                  errc_retryable(error.code));
  if (retry_after_ms) out += fmt::format(R"(,"retry_after_ms":{})", *retry_after_ms);
  out += '}';
  return out;
}

std::string message_json(const store::Message& m) {
  std::string out = fmt::format(R"({{"chat_id":{},"seq":{},"message_id":"{}","sender":{})",
                                m.chat_id, m.seq, m.message_id, quoted(m.sender));
  if (!m.to.empty()) out += fmt::format(R"(,"to":{})", quoted(m.to));
  out += fmt::format(R"(,"kind":"text","body":{},"ts":{},"client_msg_id":{}}})", quoted(m.body),
                     m.ts, quoted(m.client_msg_id));
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
void append_messages(std::string& out, const std::vector<store::Message>& msgs) {
  out += '[';
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i) out += ',';
    out += message_json(msgs[i]);
  }
  out += ']';
}
std::string chat_fields(const store::ChatSummary& c) {
  std::string out = fmt::format(R"("chat_id":{},"kind":"{}")", c.chat_id,
                                c.kind == store::ChatKind::direct ? "direct" : "group");
  if (!c.peer.empty()) out += fmt::format(R"(,"peer":{})", quoted(c.peer));
  out += fmt::format(R"(,"last_seq":{})", c.last_seq);
  return out;
}
}  // namespace

std::string updates_json(const store::UpdatesPage& page) {
  std::string out = R"({"updates":[)";
  for (size_t i = 0; i < page.updates.size(); ++i) {
    if (i) out += ',';
    const auto& u = page.updates[i];
    out += fmt::format(R"({{"pts":{},"kind":"message","message":{}}})", u.pts,
                       message_json(u.message));
  }
  out += fmt::format(R"(],"pts":{},"has_more":{},"limited":{}}})", page.pts, page.has_more,
                     page.limited);
  return out;
}

std::string snapshot_json(const store::Snapshot& snap, bool limited) {
  std::string out = fmt::format(
      R"({{"snapshot":true,"limited":{},"pts":{},"updates":[],"has_more":false,"chats":[)", limited,
      snap.pts);
  for (size_t i = 0; i < snap.chats.size(); ++i) {
    if (i) out += ',';
    const auto& w = snap.chats[i];
    out += '{' + chat_fields(w.chat) + R"(,"messages":)";
    append_messages(out, w.messages);
    out += fmt::format(R"(,"has_more":{}}})", w.has_more);
  }
  out += "]}";
  return out;
}

std::string history_json(const store::HistoryPage& page) {
  std::string out = fmt::format(R"({{"chat_id":{},"messages":)", page.chat_id);
  append_messages(out, page.messages);
  out += fmt::format(R"(,"has_more":{}}})", page.has_more);
  return out;
}

std::string chats_json(const store::ChatList& list) {
  std::string out = R"({"chats":[)";
  for (size_t i = 0; i < list.chats.size(); ++i) {
    if (i) out += ',';
    const auto& c = list.chats[i];
    out += '{' + chat_fields(c) + R"(,"last_message":)";
    out += c.last_message ? message_json(*c.last_message) : "null";
    out += '}';
  }
  out += fmt::format(R"(],"has_more":{},"pts":{}}})", list.has_more, list.pts);
  return out;
}

}  // namespace parley::proto
