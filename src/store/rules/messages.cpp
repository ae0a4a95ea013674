#include "store/rules/messages.h"

namespace parley::store::rules {

Status check_direct_send(const UserId& sender, const UserId& to_user) {
  if (to_user == sender) return Error{Errc::bad_request, "cannot send to yourself"};
  return ok_status();
}

bool fan_out_on_read(ChatKind kind, bool large) { return kind == ChatKind::group && large; }

uint64_t sender_pts(const std::vector<Delivery>& deliveries, const UserId& sender) {
  uint64_t pts = 0;
  for (const auto& d : deliveries)
    if (d.user == sender) pts = d.pts;
  return pts;
}

AppendResult duplicate_append(Message original, uint64_t original_sender_pts) {
  AppendResult r;
  r.message = std::move(original);
  r.sender_pts = original_sender_pts;
  r.duplicate = true;
  return r;
}

}  // namespace parley::store::rules
