// Push rules (docs/PUSH.md): whether a message turns into push jobs, how a burst collapses
// into one job, what a finished send does to its job, and which targets and mutes are
// valid. Pure: the backend loads the rows and writes what these return.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/errc.h"
#include "store/types.h"

namespace parley::store::rules {

// Whether a message for a user in a chat is pushed at `now`: not while the user's
// do-not-disturb or the chat's mute lasts. Both are end times (ms) and an end time is
// already over at that very ms; absent or 0: off.
bool push_allowed(std::optional<int64_t> dnd_until, std::optional<int64_t> muted_until,
                  int64_t now);

// set_chat_mute's `until` as the mute row to keep: a time (ms), -1 (forever: INT64_MAX), or
// 0 (unmute: nullopt, no row). bad_request for anything below -1.
Result<std::optional<int64_t>> mute_row(int64_t until);

constexpr size_t kMaxPushToken = 4096;
constexpr size_t kMaxPushAppId = 255;
// A target's own fields (the user and device are the backend's to check first).
Status validate_push_target(const PushTarget& target);

// The job for one device after the message `item` reached it: a new job due at
// item.due_at, or `prev` with the message collapsed in (one notification for the burst,
// still due when it was).
PushJob collapse_push(const std::optional<PushJob>& prev, const PushEnqueue& item,
                      const std::string& device, int64_t now);

// What finish_push_job does to the job `current` (as stored now) after the send of
// `claimed` ended with `outcome` (not token_gone: that one drops the device).
struct PushFinish {
  enum class Action : uint8_t { remove, replace, dead_letter } action = Action::remove;
  PushJob next;  // replace: the job to store; dead_letter: the job as it died
};
PushFinish finish_push(const PushJob& current, const PushJob& claimed, PushOutcome outcome,
                       int64_t retry_at, int64_t now);

}  // namespace parley::store::rules
