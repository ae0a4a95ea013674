// The Presence seam (DESIGN.md §5): which users have a live session somewhere, and when
// each was last seen. In process (LocalPresence, a TTL map, shared by the nodes of an
// in-process cluster); Redis keys for scale-out.
//
// Presence holds state only: it reports nothing by itself. Each call returns the
// online<->offline transitions it caused to its caller, and the node that made the call
// passes them on (PresenceReporter: Bus envelopes to every node, last_seen into the Store),
// so that any number of nodes can share one backend, each transition reported once.
//
// Contract every backend keeps (presence_conformance.h checks it):
// - A session (user, session_key) is live from a touch() until its drop(), or until it has
//   not been touched for more than the TTL (its node died without dropping it; expire()
//   removes it). session_key is unique per session across nodes ("node:conn_id").
// - A user is online while it has at least one live session.
// - Every transition of a user is returned to exactly one call, the one that caused it, also
//   when several nodes call one backend concurrently:
//   - touch() returns the users it brought online (last_seen = the touch time), in the
//     order of the batch; touching a live session renews it, and brings nobody online;
//   - drop() returns the user it took offline, if its session was the last one (last_seen =
//     the drop time); dropping a session that is not live does nothing;
//   - expire() returns the users whose last sessions it removed (last_seen = the newest last
//     touch of those sessions: when their node last refreshed them, not when it noticed).
// - Transition::version increases strictly with each transition of a user, for the life of
//   the backend (also after it forgot an offline user): in version order a user's
//   transitions alternate online, offline, online... A receiver that gets transitions by
//   several paths (several nodes publish them) orders them by version.
// - Calls one caller makes are applied in the order it makes them (a refresh's expire()
//   sees its touch(); a drop() never overtakes the touch() before it).
// - status(users) answers in the order asked, duplicates included. Online: last_seen is the
//   latest touch. A user the backend does not know (never seen, or offline and forgotten)
//   is {online:false, last_seen:0}: the durable last_seen is the application's (the Store).
// - Bad input: an empty user or session key anywhere in a call refuses the whole call with
//   bad_request, and nothing changes. An empty batch is fine (nothing to do).
// - A backend that cannot answer (a remote one down) completes with unavailable; the call
//   may have been applied, and its transitions are then lost (other nodes learn of the user
//   at its next transition; its sessions expire by themselves).
// - Completions may run on any thread, also inline before the call returns. touch, drop
//   and expire accept a null completion (fire and forget).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errc.h"
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
  bool operator==(const Status&) const = default;
};

// A session to touch: one entry of a batch.
struct SessionTouch {
  std::string user;
  std::string session_key;
  bool operator==(const SessionTouch&) const = default;
};

// A user went online or offline, returned to the call that caused it.
struct Transition {
  std::string user;
  bool online = false;
  int64_t last_seen = 0;  // online: the touch time; offline: when it went offline
  uint64_t version = 0;   // per user, strictly increasing (see the contract)
  Status status() const { return Status{user, online, last_seen, false}; }
  bool operator==(const Transition&) const = default;
};

class Presence {
 public:
  // The transitions a call caused (touch, drop, expire).
  using Done = std::function<void(Result<std::vector<Transition>>)>;
  using StatusDone = std::function<void(Result<std::vector<Status>>)>;
  virtual ~Presence() = default;

  // Sessions are live: a connect, or a node's periodic refresh of all of its sessions.
  virtual void touch(std::vector<SessionTouch> sessions, int64_t now_ms, Done done) = 0;
  // A session ended (its connection closed). At most one transition.
  virtual void drop(const std::string& user, const std::string& session_key, int64_t now_ms,
                    Done done) = 0;
  // Removes the sessions not touched within the TTL. Any node may call it, as often as it
  // likes (a few times per TTL): each expired user is returned to one caller only.
  virtual void expire(int64_t now_ms, Done done) = 0;
  virtual void status(std::vector<std::string> users, StatusDone done) const = 0;
  virtual Health health() const = 0;
};

}  // namespace parley::presence
