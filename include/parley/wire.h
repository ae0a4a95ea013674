// JSON <-> structs for the parley.v1 protocol. No I/O. Decoding never trusts the server:
// DecodeServerFrame() never throws, the Decode*() result functions throw only parley::Error
// with code "bad_response".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "parley/types.h"

namespace parley::wire {

// ---- Client requests (§3). Each returns the text of one frame.
std::string EncodeAuth(int64_t id, std::string_view token);
std::string EncodeSend(int64_t id, const Target& to, std::string_view client_msg_id,
                       std::string_view body);
// A media message (docs/MEDIA.md "Media messages"): `media` {"id","name","caption"} instead of
// body; name and caption are left out when empty.
std::string EncodeSendMedia(int64_t id, const Target& to, std::string_view client_msg_id,
                            const MediaSend& media);
// pts nullopt: ask for a snapshot (new device).
std::string EncodeSync(int64_t id, std::optional<int64_t> pts, int limit);
std::string EncodeHistory(int64_t id, const Target& chat, std::optional<int64_t> before_seq,
                          int limit);
// Forward paging: the messages with seq > after_seq, oldest first (per-chat sync, §3.6).
std::string EncodeHistoryAfter(int64_t id, const Target& chat, int64_t after_seq, int limit);
// Any request: {"type":type,"id":id} plus `fields` (e.g. the group_* requests of §3.9).
std::string EncodeRequest(int64_t id, std::string_view type, const boost::json::object& fields);
std::string EncodeChats(int64_t id, int limit, const std::string& cursor = {});
std::string EncodePing(int64_t id);
// Receipts (§3.11): `chat_id`, or `with` for a direct chat. mark_read without seq: up to the
// chat's last message.
std::string EncodeMarkDelivered(int64_t id, const Target& chat, int64_t seq);
std::string EncodeMarkRead(int64_t id, const Target& chat, std::optional<int64_t> seq);
std::string EncodeTyping(int64_t id, const Target& chat, TypingState state);  // §3.12
// Presence (§3.13). Unsubscribe with an empty list and all = true: every subscription.
std::string EncodePresenceSubscribe(int64_t id, const std::vector<std::string>& users);
std::string EncodePresenceUnsubscribe(int64_t id, const std::vector<std::string>& users, bool all);
// Settings (§3.14); without presence: just read them.
std::string EncodeSettings(int64_t id, const std::optional<std::string>& presence);

// ---- Server frames (§3.1, §3.4).
struct OkFrame {
  int64_t id = 0;
  boost::json::value result;  // decode with the Decode*() function for the request
};
struct ErrorFrame {
  std::optional<int64_t> id;  // nullopt for "id":null
  std::string code;
  std::string message;
  bool retryable = false;
  std::optional<int64_t> retry_after_ms;
};
struct MessagePush {
  Update update;  // kind "message", message set; pts 0 for a large group's message
};
struct ReceiptPush {
  Update update;  // kind "read" or "delivered", receipt set; pts 0 when pushed without pts
};
struct TypingPush {
  TypingEvent event;
};
struct PresencePush {
  std::vector<PresenceStatus> presence;
};
// A push of a type this client does not know; ignore it (§ intro).
struct UnknownPush {
  std::string type;
};
// Not JSON, not an object, or a known type with missing or mistyped fields.
struct MalformedFrame {
  std::string reason;
};
using ServerFrame = std::variant<OkFrame, ErrorFrame, MessagePush, ReceiptPush, TypingPush,
                                 PresencePush, UnknownPush, MalformedFrame>;

ServerFrame DecodeServerFrame(std::string_view text) noexcept;

// ---- Results of `ok` frames and HTTP bodies; throw Error{"bad_response"} on a bad shape.
// Unknown fields are ignored.
Message DecodeMessage(const boost::json::value& v);
AuthInfo DecodeAuthResult(const boost::json::value& v);
SendAck DecodeSendAck(const boost::json::value& v);
SyncResult DecodeSyncResult(const boost::json::value& v);
HistoryPage DecodeHistoryPage(const boost::json::value& v);
ChatList DecodeChatList(const boost::json::value& v);
int64_t DecodePingResult(const boost::json::value& v);  // the server's ts
Receipt DecodeReceipt(const boost::json::value& v);
MarkResult DecodeMarkResult(const boost::json::value& v);
bool DecodeTypingResult(const boost::json::value& v);  // `forwarded`
PresenceStatus DecodePresenceStatus(const boost::json::value& v);
std::vector<PresenceStatus> DecodePresenceResult(const boost::json::value& v);  // `presence`
UserSettings DecodeSettings(const boost::json::value& v);
LoginResult DecodeLoginResult(const boost::json::value& v);
std::string DecodeRegisterResult(const boost::json::value& v);  // the user id
// Media (docs/MEDIA.md): the upload answer, a message's media descriptor, a signed URL.
MediaInfo DecodeMediaInfo(const boost::json::value& v);
MediaRef DecodeMediaRef(const boost::json::value& v);
SignedMediaUrl DecodeSignedMediaUrl(const boost::json::value& v);
// {"error":{"code":..,"message":..}} -> (code, message); nullopt if the body is not that shape.
std::optional<std::pair<std::string, std::string>> DecodeHttpError(std::string_view body);

// ---- Structs back to JSON, in the protocol's field names (used by `parley --json`).
boost::json::object ToJson(const Message& m);
boost::json::object ToJson(const SendAck& a);  // the send result fields (+ client_msg_id)
boost::json::object ToJson(const HistoryPage& h);
boost::json::object ToJson(const ChatSummary& c);
boost::json::object ToJson(const ChatList& l);
boost::json::object ToJson(const LoginResult& l);
boost::json::object ToJson(const Receipt& r);
boost::json::object ToJson(const MarkResult& r);
boost::json::object ToJson(const TypingEvent& t);  // the push's fields, without "type"
boost::json::object ToJson(const PresenceStatus& p);
boost::json::object ToJson(const UserSettings& s);
boost::json::object ToJson(const MediaInfo& m);  // the upload answer's fields
boost::json::object ToJson(const MediaRef& m);   // a message's "media" object
boost::json::object ToJson(const SignedMediaUrl& u);

}  // namespace parley::wire
