// The outbox's rows as the ShardedPgStore moves them between servers (pg_outbox.cpp writes,
// reads and applies them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/types.h"

namespace parley::store::pg {

enum class OutboxKind : int16_t {
  message = 1,  // update-log entries (UpdateKind values)
  read = 2,
  delivered = 3,
  direct_chat = 10,  // chat index rows: a direct chat with `by` (the peer of each target)
  joined = 11,       // ... a group joined at seq
  left = 12,         // ... a group left at seq
  media_ref = 13,    // targets are media ids; `by` the sender
};
struct OutboxRow {
  int64_t id = 0;
  uint32_t server = 0;  // where the targets live (their place in the list of servers)
  OutboxKind kind = OutboxKind::message;
  uint64_t seq = 0;
  UserId by;
  int64_t ts = 0;
  std::vector<std::string> targets;  // users, or media ids
  std::string note;                  // media_ref: the message's client_msg_id
};
// An update-log entry a row produced for a user (applied now or by an earlier replay).
struct AppliedEntry {
  OutboxKind kind = OutboxKind::message;
  uint64_t seq = 0;
  UserId by;
  Delivery delivery;
};
}  // namespace parley::store::pg
