#include "bus/envelope.h"

#include <fmt/format.h>

#include "common/bytes.h"

namespace parley {
namespace {

constexpr uint8_t kMagic = 'E';
constexpr uint8_t kVersion = 2;  // 2: presence transitions carry their version

Error bad(std::string_view why) {
  return Error{Errc::bad_request, fmt::format("bad envelope: {}", why)};
}

}  // namespace

std::string encode_envelope(const Envelope& env) {
  ByteWriter w;
  w.u8(kMagic).u8(kVersion).u8(static_cast<uint8_t>(env.kind));
  w.varint(env.from).varint(env.except.node).varint(env.except.conn);
  w.varint(env.chat_id).str(env.user).str(env.device_id).varint(env.close_code);
  w.varint(env.recipients.size());
  for (const auto& r : env.recipients) w.str(r.user).varint(r.pts);
  w.u8(static_cast<uint8_t>(env.payload_kind)).str(env.payload);
  w.u8(env.online ? 1 : 0).varint(static_cast<uint64_t>(env.last_seen < 0 ? 0 : env.last_seen));
  w.varint(env.version).varint(env.seq);
  return w.take();
}

Result<Envelope> decode_envelope(std::string_view bytes, const EnvelopeLimits& limits) {
  if (bytes.size() > limits.max_bytes) return bad("too large");
  ByteReader r(bytes);
  if (r.u8() != kMagic) return bad("not an envelope");
  if (uint8_t v = r.u8(); v != kVersion) return bad(fmt::format("unknown version {}", v));
  Envelope env;
  const uint8_t kind = r.u8();
  if (kind < static_cast<uint8_t>(Envelope::Kind::deliver) ||
      kind > static_cast<uint8_t>(Envelope::Kind::presence))
    return bad(fmt::format("unknown kind {}", kind));
  env.kind = static_cast<Envelope::Kind>(kind);
  const uint64_t from = r.varint();
  const uint64_t except_node = r.varint();
  env.except.conn = r.varint();
  if (from > kMaxNodeId || except_node > kMaxNodeId) return bad("node id out of range");
  env.from = static_cast<NodeId>(from);
  env.except.node = static_cast<NodeId>(except_node);
  env.chat_id = r.varint();
  env.user = r.str(limits.max_id_bytes);
  env.device_id = r.str(limits.max_id_bytes);
  const uint64_t close_code = r.varint();
  if (close_code > 0xffff) return bad("close code out of range");
  env.close_code = static_cast<uint16_t>(close_code);
  const uint64_t n = r.varint();
  if (!r.ok()) return bad("truncated");
  if (n > limits.max_recipients) return bad("too many recipients");
  env.recipients.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Recipient rc;
    rc.user = r.str(limits.max_id_bytes);
    rc.pts = r.varint();
    if (rc.user.empty()) r.fail();
    env.recipients.push_back(std::move(rc));
  }
  const uint8_t payload_kind = r.u8();
  if (payload_kind > static_cast<uint8_t>(Envelope::Payload::receipt))
    return bad("unknown payload kind");
  env.payload_kind = static_cast<Envelope::Payload>(payload_kind);
  env.payload = r.str(limits.max_payload_bytes);
  const uint8_t online = r.u8();
  if (online > 1) return bad("online must be 0 or 1");
  env.online = online == 1;
  const uint64_t last_seen = r.varint();
  if (last_seen > static_cast<uint64_t>(INT64_MAX)) return bad("last_seen out of range");
  env.last_seen = static_cast<int64_t>(last_seen);
  env.version = r.varint();
  env.seq = r.varint();
  if (!r.done()) return bad(r.ok() ? "trailing bytes" : "truncated or over a limit");

  // What each kind needs.
  switch (env.kind) {
    case Envelope::Kind::deliver:
      if (env.recipients.empty() || env.payload.empty()) return bad("deliver without recipients");
      break;
    case Envelope::Kind::broadcast:
      if (env.chat_id == 0 || env.payload.empty()) return bad("broadcast without chat or frame");
      break;
    case Envelope::Kind::close_device:
      if (env.user.empty() || env.device_id.empty()) return bad("close_device without device");
      break;
    case Envelope::Kind::subscribe:
    case Envelope::Kind::unsubscribe:
      if (env.user.empty() || env.chat_id == 0) return bad("subscription without user or chat");
      break;
    case Envelope::Kind::presence:
      if (env.user.empty()) return bad("presence without user");
      break;
  }
  return env;
}

}  // namespace parley
