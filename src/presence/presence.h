// The Presence seam (DESIGN.md §5): which users have a live session somewhere, and when
// each was last seen. In process today (LocalPresence, a TTL map); Redis keys with EXPIRE
// for scale-out.
//
// Contract:
// - A session is live from its first touch() until drop(), or until it has not been
//   touched for the TTL (its node died without dropping it; expire() notices).
// - A user is online while it has at least one live session. Going offline sets
//   last_seen: the drop time, or for expired sessions the time of their last touch.
// - on_change reports every online<->offline transition, in the order they happened for
//   that user, outside any internal lock (the callback may call back into Presence).
// - status() of a user this backend does not know is {online:false, last_seen:0}: the
//   durable last_seen is the application's (it persists it from on_change).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/health.h"

namespace parley::presence {

// Who may see a user's presence (docs/PROTOCOL.md §3.13). Same values as
// store::PresenceVisibility, so that app/ can convert with a cast.
enum class Visibility : uint8_t { everyone = 0, contacts = 1, nobody = 2 };
std::string_view to_string(Visibility v);
std::optional<Visibility> parse_visibility(std::string_view name);

struct Status {
  std::string user;
  bool online = false;
  int64_t last_seen = 0;  // ms since the epoch; offline: when it went offline (0 = unknown)
  bool hidden = false;    // set by PresenceHub only: the watcher may not see this user
};

class Presence {  // thread-safe
 public:
  virtual ~Presence() = default;
  // A session of `user` is live: connect, and a periodic refresh. session_key is unique per
  // session (e.g. "node:conn_id").
  virtual void touch(const std::string& user, const std::string& session_key, int64_t now_ms) = 0;
  // The session ended (connection closed).
  virtual void drop(const std::string& user, const std::string& session_key, int64_t now_ms) = 0;
  virtual Status status(const std::string& user) const = 0;  // last_seen 0 = unknown here
  // Sessions not touched within the TTL are gone (a node that died without dropping them).
  virtual void expire(int64_t now_ms) = 0;
  // Called on every online<->offline transition of a user, outside any internal lock.
  virtual void set_on_change(std::function<void(const Status&)> fn) = 0;
  virtual Health health() const { return {}; }
};

}  // namespace parley::presence
