// What one node sends another over the Bus, and its wire form.
//
// An envelope is addressed to a node, not to a connection: the receiving node's SessionHub
// finds the sessions. Connections are named across nodes by SessionRef (node + connection
// id), so that "every session of bob but the one that sent it" means the same on every node.
// A delivery carries an update once for all of its recipients on that node, each with the
// pts the update has in that recipient's log; the receiving node builds each frame.
//
// The codec is versioned (a magic byte and a version byte first) and bounded: decode()
// refuses anything malformed, truncated, of an unknown kind or version, or over the limits,
// without reading past the input. Both ends of a deployment must speak the same version;
// a node that cannot decode an envelope drops it (the Bus may lose envelopes: clients heal
// gaps from the Store).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/errc.h"
#include "common/node.h"

namespace parley {

// A recipient of a delivery and the position of the update in its log (0: not in its log,
// e.g. a typing signal or a large group's message).
struct Recipient {
  std::string user;
  uint64_t pts = 0;
  bool operator==(const Recipient&) const = default;
};

struct Envelope {
  enum class Kind : uint8_t {
    deliver = 1,       // payload to every session of each recipient (but `except`)
    broadcast = 2,     // payload (a whole frame) to the sessions subscribed to chat_id
    close_device = 3,  // close the sessions of user's device_id with close_code
    subscribe = 4,     // user's sessions start receiving chat_id's broadcasts (large groups)
    unsubscribe = 5,   // ... and stop
    presence = 6,      // user went online or offline (last_seen): for presence subscribers
  };
  // What a deliver's payload is: a message or a receipt (JSON of the object the push carries;
  // each recipient's frame gets its own pts), or a whole frame sent as it is.
  enum class Payload : uint8_t { frame = 0, message = 1, receipt = 2 };

  Kind kind = Kind::deliver;
  NodeId from = 0;                    // the publishing node
  SessionRef except;                  // deliver, broadcast: skip this session (the sender's own)
  uint64_t chat_id = 0;               // broadcast, subscribe, unsubscribe
  uint64_t seq = 0;                   // broadcast: the message's seq in the chat (0: not one)
  std::string user;                   // close_device, subscribe, unsubscribe, presence
  std::string device_id;              // close_device
  uint16_t close_code = 0;            // close_device
  std::vector<Recipient> recipients;  // deliver
  Payload payload_kind = Payload::frame;
  std::string payload;  // deliver, broadcast
  bool online = false;  // presence
  int64_t last_seen = 0;
  uint64_t version = 0;  // presence: the user's transition count; a receiver keeps the latest

  bool operator==(const Envelope&) const = default;
};

struct EnvelopeLimits {
  size_t max_bytes = 16 << 20;         // a whole encoded envelope
  size_t max_recipients = 100000;      // a delivery (a group's members on one node)
  size_t max_payload_bytes = 8 << 20;  // a frame or an update's JSON
  size_t max_id_bytes = 255;           // user ids, device ids
};

// The wire form: 'E', version (2), kind, then the fields in a fixed order.
std::string encode_envelope(const Envelope& env);
// bad_request for anything that is not an envelope this version wrote within `limits`.
Result<Envelope> decode_envelope(std::string_view bytes, const EnvelopeLimits& limits = {});

}  // namespace parley
