// A node's calls to the Presence backend, and what becomes of the transitions they cause.
//
// The node's sessions call it (ChatSession: touch on connect, drop on close), and so does
// its refresh timer (one batched touch of every live session of the node, then expire()).
// Every transition a call caused goes to the sink, which the node wires to its own
// PresenceHub, to the Bus (a `presence` envelope for every other node's hub) and to the
// Store (last_seen of an offline transition). The backend returns each transition to the
// one call that caused it, so each is reported once in the whole cluster, by the node that
// caused it, whichever node's expire() notices a dead node's sessions.
//
// Thread-safe. The sink runs on the backend's completion threads (inline for LocalPresence),
// never concurrently with stop(), and must not call the reporter; after stop() it is not called
// again (a late completion is dropped), so the node may then destroy what the sink uses.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "presence/presence.h"

namespace parley::presence {

class PresenceReporter {
 public:
  using Sink = std::function<void(const std::vector<Transition>&)>;
  PresenceReporter(Presence& backend, Sink sink);
  ~PresenceReporter();  // stop()
  PresenceReporter(const PresenceReporter&) = delete;
  PresenceReporter& operator=(const PresenceReporter&) = delete;

  // A session connected.
  void touch(const std::string& user, const std::string& session_key, int64_t now_ms);
  // Sessions are still live (the refresh of all of a node's sessions: one call).
  void touch(std::vector<SessionTouch> sessions, int64_t now_ms);
  // A session closed.
  void drop(const std::string& user, const std::string& session_key, int64_t now_ms);
  // Sessions nobody refreshed within the TTL are gone.
  void expire(int64_t now_ms);

  void stop();

 private:
  struct State {
    std::shared_mutex mu;  // shared while a sink runs, exclusive to stop
    Sink sink;
  };
  Presence::Done completion(const char* what);

  Presence& backend_;
  std::shared_ptr<State> state_;
};

}  // namespace parley::presence
