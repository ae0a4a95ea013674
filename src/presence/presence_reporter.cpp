#include "presence/presence_reporter.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace parley::presence {

PresenceReporter::PresenceReporter(Presence& backend, Sink sink)
    : backend_(backend), state_(std::make_shared<State>()) {
  state_->sink = std::move(sink);
}

PresenceReporter::~PresenceReporter() { stop(); }

void PresenceReporter::stop() {
  std::unique_lock lock(state_->mu);
  state_->sink = nullptr;
}

Presence::Done PresenceReporter::completion(const char* what) {
  return [state = state_, what](Result<std::vector<Transition>> r) {
    if (!r) {
      // The call may have been applied: its transitions are lost. Other nodes learn of the
      // user at its next transition; its sessions expire by themselves.
      spdlog::warn("presence reporter: {} failed: {}", what, r.error().message);
      return;
    }
    if (r->empty()) return;
    std::shared_lock lock(state->mu);
    if (state->sink) state->sink(r.value());
  };
}

void PresenceReporter::touch(const std::string& user, const std::string& session_key,
                             int64_t now_ms) {
  std::vector<SessionTouch> one;
  one.push_back(SessionTouch{user, session_key});
  backend_.touch(std::move(one), now_ms, completion("touch"));
}

void PresenceReporter::touch(std::vector<SessionTouch> sessions, int64_t now_ms) {
  if (sessions.empty()) return;
  backend_.touch(std::move(sessions), now_ms, completion("refresh"));
}

void PresenceReporter::drop(const std::string& user, const std::string& session_key,
                            int64_t now_ms) {
  backend_.drop(user, session_key, now_ms, completion("drop"));
}

void PresenceReporter::expire(int64_t now_ms) { backend_.expire(now_ms, completion("expire")); }

}  // namespace parley::presence
