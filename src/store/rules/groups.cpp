#include "store/rules/groups.h"

#include <fmt/format.h>

#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace parley::store::rules {
namespace {

Error forbidden(std::string_view what) { return Error{Errc::forbidden, std::string(what)}; }

Error bad_name(const GroupLimits& limits) {
  return Error{Errc::bad_request, fmt::format("name must be 1 to {} bytes", limits.max_name_bytes)};
}

bool valid_name(const GroupRequest& req) {
  return !req.name.empty() && req.name.size() <= req.limits.max_name_bytes;
}

Error too_many_members(const GroupLimits& limits) {
  return Error{Errc::too_large, fmt::format("a group has at most {} members", limits.max_members)};
}

Error too_many_groups(const UserId& u, const GroupLimits& limits) {
  return Error{Errc::too_large,
               fmt::format("{} is in {} groups already", u, limits.max_groups_per_user)};
}

boost::json::array users_array(const std::vector<UserId>& users) {
  boost::json::array out;
  for (const auto& u : users) out.emplace_back(u);
  return out;
}

bool contains(const std::vector<UserId>& users, const UserId& u) {
  return std::find(users.begin(), users.end(), u) != users.end();
}

// A user the backend did not look up counts as unknown: the request then fails instead of
// acting on facts nobody checked.
const UserFacts& facts_of(const GroupInput& in, const UserId& user) {
  static const UserFacts unknown;
  for (const auto& f : in.users)
    if (f.user == user) return f;
  return unknown;
}

bool active(const std::optional<Member>& m) { return m && m->left_seq == 0; }

Result<GroupPlan> plan_create(const GroupRequest& req, const GroupInput& in, GroupPlan plan,
                              boost::json::object& event) {
  if (!valid_name(req)) return bad_name(req.limits);
  std::vector<UserId> members{req.actor};
  for (const auto& u : req.users)
    if (!contains(members, u)) members.push_back(u);
  if (members.size() > req.limits.max_members) return too_many_members(req.limits);
  for (const auto& u : members) {
    const auto& f = facts_of(in, u);
    if (!f.live) return Error{Errc::not_found, fmt::format("no such user: {}", u)};
    if (f.group_count >= req.limits.max_groups_per_user) return too_many_groups(u, req.limits);
  }
  GroupState& g = plan.group;
  g.kind = ChatKind::group;
  g.name = req.name;
  g.created_by = req.actor;
  g.created_at = req.ts;
  g.member_count = static_cast<uint32_t>(members.size());
  g.large = members.size() > req.limits.large_threshold;
  for (const auto& u : members)
    plan.member_rows.push_back(Member{u, u == req.actor ? Role::owner : Role::member, 1, 0});
  plan.joined = members;
  event = {{"event", "created"},
           {"by", req.actor},
           {"name", req.name},
           {"members", users_array(members)}};
  return plan;
}

// Every operation on an existing group. `seq` is the event's seq: where joins and leaves
// happen.
Result<GroupPlan> plan_change(const GroupRequest& req, const GroupInput& in, GroupPlan plan,
                              boost::json::object& event) {
  if (!in.group || in.group->kind != ChatKind::group || in.group->deleted)
    return Error{Errc::not_found, fmt::format("no such group: {}", req.chat_id)};
  GroupState& g = plan.group;
  g = *in.group;
  plan.was_large = g.large;
  auto actor = facts_of(in, req.actor).member;
  if (!active(actor)) return forbidden("not a member of this group");
  uint64_t seq = g.last_seq + 1;
  // The member that remove, promote, demote and transfer act on: users[0].
  auto target = [&]() -> Result<Member> {
    if (req.users.empty()) return Error{Errc::bad_request, "missing user"};
    const auto& m = facts_of(in, req.users[0]).member;
    if (!active(m)) return Error{Errc::conflict, fmt::format("not a member: {}", req.users[0])};
    return *m;
  };
  switch (req.op) {
    case GroupOp::create:
      break;
    case GroupOp::rename:
      if (actor->role < Role::admin) return forbidden("only owners and admins rename a group");
      if (!valid_name(req)) return bad_name(req.limits);
      g.name = req.name;
      event = {{"event", "renamed"}, {"by", req.actor}, {"name", req.name}};
      break;
    case GroupOp::add: {
      if (actor->role < Role::admin) return forbidden("only owners and admins add members");
      std::vector<UserId> added;
      for (const auto& u : req.users) {
        if (contains(added, u)) continue;
        const auto& f = facts_of(in, u);
        if (!f.live) return Error{Errc::not_found, fmt::format("no such user: {}", u)};
        if (active(f.member)) return Error{Errc::conflict, fmt::format("already a member: {}", u)};
        if (f.group_count >= req.limits.max_groups_per_user) return too_many_groups(u, req.limits);
        added.push_back(u);
      }
      if (added.empty()) return Error{Errc::bad_request, "no users to add"};
      if (g.member_count + added.size() > req.limits.max_members)
        return too_many_members(req.limits);
      for (const auto& u : added) plan.member_rows.push_back(Member{u, Role::member, seq, 0});
      g.member_count += static_cast<uint32_t>(added.size());
      plan.joined = added;
      event = {{"event", "members_added"}, {"by", req.actor}, {"users", users_array(added)}};
      break;
    }
    case GroupOp::remove: {
      auto t = target();
      if (!t) return t.error();
      if (t->user == req.actor) return Error{Errc::bad_request, "use leave to leave a group"};
      if (actor->role < Role::admin || t->role >= actor->role)
        return forbidden("owners remove anyone, admins remove members, members nobody");
      t->left_seq = seq;
      plan.member_rows.push_back(t.value());
      --g.member_count;
      plan.left = {t->user};
      event = {{"event", "member_removed"}, {"by", req.actor}, {"user", t->user}};
      break;
    }
    case GroupOp::promote:
    case GroupOp::demote: {
      if (actor->role != Role::owner) return forbidden("only the owner promotes and demotes");
      auto t = target();
      if (!t) return t.error();
      Role want = req.op == GroupOp::promote ? Role::admin : Role::member;
      Role from = req.op == GroupOp::promote ? Role::member : Role::admin;
      if (t->role != from)
        return Error{Errc::conflict,
                     fmt::format("{} is not a{}", t->user,
                                 from == Role::admin ? "n admin" : " plain member")};
      t->role = want;
      plan.member_rows.push_back(t.value());
      event = {{"event", "role_changed"},
               {"by", req.actor},
               {"user", t->user},
               {"role", role_name(want)}};
      break;
    }
    case GroupOp::leave:
      if (actor->role == Role::owner)
        return forbidden("the owner hands ownership over before leaving");
      actor->left_seq = seq;
      plan.member_rows.push_back(*actor);
      --g.member_count;
      plan.left = {req.actor};
      event = {{"event", "member_left"}, {"user", req.actor}};
      break;
    case GroupOp::transfer: {
      if (actor->role != Role::owner) return forbidden("only the owner hands ownership over");
      auto t = target();
      if (!t) return t.error();
      if (t->user == req.actor) return Error{Errc::bad_request, "you own this group already"};
      t->role = Role::owner;
      actor->role = Role::admin;
      plan.member_rows.push_back(t.value());
      plan.member_rows.push_back(*actor);
      event = {{"event", "owner_changed"}, {"by", req.actor}, {"user", t->user}};
      break;
    }
    case GroupOp::remove_group:
      if (actor->role != Role::owner) return forbidden("only the owner deletes a group");
      plan.everyone_leaves = true;  // at the deletion event
      g.member_count = 0;
      g.deleted = true;
      event = {{"event", "group_deleted"}, {"by", req.actor}};
      break;
    case GroupOp::set_full_history:
      if (actor->role < Role::admin) return forbidden("only owners and admins change settings");
      g.full_history = req.flag;
      event = {{"event", "settings_changed"}, {"by", req.actor}, {"full_history", req.flag}};
      break;
  }
  return plan;
}

}  // namespace

std::vector<UserId> named_users(const GroupRequest& req) {
  std::vector<UserId> out{req.actor};
  for (const auto& u : req.users)
    if (!contains(out, u)) out.push_back(u);
  return out;
}

Result<GroupPlan> plan_group_op(const GroupRequest& req, const GroupInput& in) {
  GroupPlan start;
  start.op = req.op;
  boost::json::object event;  // the event message's body (docs/PROTOCOL.md §3.9)
  auto planned = req.op == GroupOp::create ? plan_create(req, in, std::move(start), event)
                                           : plan_change(req, in, std::move(start), event);
  if (!planned) return planned;
  GroupPlan& plan = planned.value();
  GroupState& g = plan.group;
  // Crossing the threshold is one-way (a large group stays large when members leave) and
  // announced in the event, so that every device switches to per-chat sync.
  bool becomes_large = !g.large && g.member_count > req.limits.large_threshold;
  if (becomes_large || (req.op == GroupOp::create && g.large)) {
    g.large = true;
    event["large"] = true;
  }
  Message& m = plan.event;
  m.chat_id = g.chat_id;
  m.seq = ++g.last_seq;
  m.message_id = req.message_id;
  m.ts = req.ts;
  m.sender = req.actor;
  m.kind = MessageKind::event;
  m.body = boost::json::serialize(event);
  g.last_ts = m.ts;
  return planned;
}

void leave_all(GroupPlan& plan, std::vector<Member> active) {
  for (auto& m : active) {
    m.left_seq = plan.event.seq;
    plan.left.push_back(m.user);
    plan.member_rows.push_back(std::move(m));
  }
}

bool event_to_every_member(const GroupPlan& plan) {
  return plan.op != GroupOp::create && !plan.was_large;
}

std::vector<UserId> event_recipients(const GroupPlan& plan,
                                     const std::vector<UserId>& active_after) {
  if (plan.op == GroupOp::create) return plan.joined;
  std::vector<UserId> to = event_to_every_member(plan) ? active_after : plan.joined;
  to.insert(to.end(), plan.left.begin(), plan.left.end());
  return to;
}

ChatInfo chat_info(const GroupState& g) {
  ChatInfo info;
  info.chat_id = g.chat_id;
  info.kind = g.kind;
  info.name = g.name;
  info.created_by = g.created_by;
  info.created_at = g.created_at;
  info.last_seq = g.last_seq;
  info.member_count = g.member_count;
  info.large = g.large;
  info.full_history = g.full_history;
  return info;
}

const char* role_name(Role r) {
  switch (r) {
    case Role::owner:
      return "owner";
    case Role::admin:
      return "admin";
    default:
      return "member";
  }
}

}  // namespace parley::store::rules
