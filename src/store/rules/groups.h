// Group rules (docs/PROTOCOL.md §3.9): who may do what, the membership change a request
// makes, the large-group transition and the event message that records it. Pure: the
// backend loads the group and the users the request names, asks plan_group_op, and
// writes the plan; so every backend enforces the same role table and emits the same
// event bytes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/errc.h"
#include "store/types.h"

namespace parley::store::rules {

// A chat as the group rules see it (the backend's chat record without storage details).
struct GroupState {
  ChatId chat_id = 0;
  ChatKind kind = ChatKind::group;
  std::string name;
  UserId created_by;
  int64_t created_at = 0;
  uint64_t last_seq = 0;
  int64_t last_ts = 0;
  uint32_t member_count = 0;  // active members
  bool large = false;         // above the fan-out threshold: fan-out on read
  bool full_history = false;
  bool deleted = false;
};

// What the store knows about one user a request names.
struct UserFacts {
  UserId user;
  bool live = false;             // the account exists and is not deleted
  uint64_t group_count = 0;      // groups the user is an active member of
  std::optional<Member> member;  // the user's row in this group, active or left (not: create)
};

struct GroupInput {
  std::optional<GroupState> group;  // the chat of req.chat_id; absent if there is none
  std::vector<UserFacts> users;     // one per named_users(req)
};

// The users whose facts plan_group_op reads: the actor, then req.users without repeats.
std::vector<UserId> named_users(const GroupRequest& req);

struct GroupPlan {
  GroupOp op = GroupOp::create;
  bool was_large = false;  // before the change (create: false)
  // The chat after the change, the event included (last_seq, last_ts). For create the
  // backend assigns chat_id once the plan is accepted.
  GroupState group;
  std::vector<Member> member_rows;  // member rows to write, in this order
  std::vector<UserId> joined;       // became members at event.seq (group count + 1)
  std::vector<UserId> left;         // stopped being members (group count - 1)
  // remove_group: every active member leaves at event.seq; the backend lists them (a large
  // group is not loaded before it is needed) and hands them to leave_all.
  bool everyone_leaves = false;
  Message event;  // the event message; chat_id as in `group`
};

// Checks the request against the role table and the limits and works out the change.
// Errors: not_found (no such group or user), forbidden (role table, not a member),
// conflict (already / not a member, wrong role), bad_request (name, missing or self
// target), too_large (members or groups per user over a limit).
Result<GroupPlan> plan_group_op(const GroupRequest& req, const GroupInput& in);

// remove_group: `active` (the group's active members) leave at the event; their rows go to
// member_rows and their ids to left, in the given order.
void leave_all(GroupPlan& plan, std::vector<Member> active);

// Whether the event goes to the log of every active member after the change: in a group
// that was small, so that every device learns of the change (also that it turned large).
bool event_to_every_member(const GroupPlan& plan);

// Whose update logs get the event, in order: create: who joined; a group that was small:
// `active_after` (its active members after the change) and then who left; a large group:
// only who joined or left (the rest read it per chat). `active_after` is read only when
// event_to_every_member(plan).
std::vector<UserId> event_recipients(const GroupPlan& plan,
                                     const std::vector<UserId>& active_after);

// The chat as group_op and group_info answer it (members not filled in).
ChatInfo chat_info(const GroupState& group);

const char* role_name(Role r);

}  // namespace parley::store::rules
