#include "store/rules/push.h"

#include <fmt/format.h>

namespace parley::store::rules {

bool push_allowed(std::optional<int64_t> dnd_until, std::optional<int64_t> muted_until,
                  int64_t now) {
  if (dnd_until && *dnd_until > now) return false;
  if (muted_until && *muted_until > now) return false;
  return true;
}

Result<std::optional<int64_t>> mute_row(int64_t until) {
  if (until < -1) return Error{Errc::bad_request, "until must be a time, 0 or -1"};
  if (until == 0) return std::optional<int64_t>{};
  return std::optional<int64_t>{until == -1 ? INT64_MAX : until};
}

Status validate_push_target(const PushTarget& t) {
  if (t.token.empty() || t.token.size() > kMaxPushToken)
    return Error{Errc::bad_request, fmt::format("token must be 1 to {} bytes", kMaxPushToken)};
  if (t.app_id.size() > kMaxPushAppId)
    return Error{Errc::bad_request, fmt::format("app_id is at most {} bytes", kMaxPushAppId)};
  bool known = t.provider == PushProvider::webhook || t.provider == PushProvider::fcm ||
               t.provider == PushProvider::apns;
  if (!known) return Error{Errc::bad_request, "unknown push provider"};
  return ok_status();
}

PushJob collapse_push(const std::optional<PushJob>& prev, const PushEnqueue& item,
                      const std::string& device, int64_t now) {
  PushJob next;
  if (prev) {
    next = *prev;
    ++next.count;
    ++next.version;  // a send of the older version in flight re-queues the rest
  } else {
    next.user = item.user;
    next.device_id = device;
    next.chat_id = item.chat_id;
    next.count = 1;
    next.created_at = now;
    next.due_at = item.due_at;
    next.version = 1;
  }
  next.last_seq = item.seq;
  next.last_sender = item.sender;
  return next;
}

PushFinish finish_push(const PushJob& current, const PushJob& claimed, PushOutcome outcome,
                       int64_t retry_at, int64_t now) {
  PushFinish f;
  f.next = current;
  switch (outcome) {
    case PushOutcome::sent:
      if (current.version == claimed.version) {
        f.action = PushFinish::Action::remove;
        return f;
      }
      // Messages collapsed in while it was being sent: they are the next notification.
      f.action = PushFinish::Action::replace;
      f.next.count = current.count > claimed.count ? current.count - claimed.count : 1;
      f.next.due_at = now;
      f.next.attempts = 0;
      f.next.lease_until = 0;
      return f;
    case PushOutcome::retry:
      f.action = PushFinish::Action::replace;
      f.next.due_at = retry_at;
      f.next.attempts = claimed.attempts + 1;
      f.next.lease_until = 0;
      return f;
    case PushOutcome::dead:
      f.action = PushFinish::Action::dead_letter;
      f.next.attempts = claimed.attempts + 1;  // the failed send counts
      return f;
    case PushOutcome::token_gone:
      break;
  }
  // token_gone is the backend's (the device goes); should it get here, the job stays as is.
  f.action = PushFinish::Action::replace;
  return f;
}

}  // namespace parley::store::rules
