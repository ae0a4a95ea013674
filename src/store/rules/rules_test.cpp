// The chat rules on plain inputs: the role table, limits, membership changes and their
// event bytes, read state and receipt audiences, push mutes and jobs, idempotency.
#include <gtest/gtest.h>

#include <cstdint>

#include "store/rules/groups.h"
#include "store/rules/messages.h"
#include "store/rules/push.h"
#include "store/rules/read_state.h"

namespace parley::store::rules {
namespace {

// A group "team" (chat 7, last seq 10) with an owner o, admins a and a2, members m and m2;
// x is a live user outside it, gone left it at seq 4.
class GroupRules : public ::testing::Test {
 protected:
  GroupRules() {
    GroupState g;
    g.chat_id = 7;
    g.name = "team";
    g.created_by = "o";
    g.created_at = 100;
    g.last_seq = 10;
    g.last_ts = 900;
    g.member_count = 5;
    in.group = g;
    add_member("o", Role::owner);
    add_member("a", Role::admin);
    add_member("a2", Role::admin);
    add_member("m", Role::member);
    add_member("m2", Role::member);
    in.users.push_back(UserFacts{"x", true, 0, std::nullopt});
    in.users.push_back(UserFacts{"gone", true, 0, Member{"gone", Role::member, 1, 4}});
  }
  void add_member(const UserId& u, Role r) {
    in.users.push_back(UserFacts{u, true, 1, Member{u, r, 1, 0}});
  }
  UserFacts& facts(const UserId& u) {
    for (auto& f : in.users)
      if (f.user == u) return f;
    ADD_FAILURE() << "no facts for " << u;
    return in.users.front();
  }
  GroupRequest request(GroupOp op, const UserId& actor, std::vector<UserId> users = {}) {
    GroupRequest r;
    r.op = op;
    r.actor = actor;
    r.chat_id = 7;
    r.users = std::move(users);
    r.name = "renamed";
    r.ts = 1000;
    r.message_id = 555;
    return r;
  }
  Result<GroupPlan> plan(const GroupRequest& req) { return plan_group_op(req, in); }
  static void expect_error(const Result<GroupPlan>& r, Errc code, const std::string& message) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_EQ(r.error().message, message);
  }

  GroupInput in;
};

// The role table of docs/PROTOCOL.md §3.9, one row per action, one column per role.
struct RoleCase {
  const char* name;
  GroupOp op;
  std::vector<UserId> users;
  bool owner, admin, member;
};

TEST_F(GroupRules, RoleTable) {
  const std::vector<RoleCase> cases = {
      {"rename", GroupOp::rename, {}, true, true, false},
      {"add", GroupOp::add, {"x"}, true, true, false},
      {"remove a member", GroupOp::remove, {"m2"}, true, true, false},
      {"remove an admin", GroupOp::remove, {"a2"}, true, false, false},
      {"promote", GroupOp::promote, {"m2"}, true, false, false},
      {"demote", GroupOp::demote, {"a2"}, true, false, false},
      {"leave", GroupOp::leave, {}, false, true, true},
      {"transfer", GroupOp::transfer, {"m2"}, true, false, false},
      {"delete", GroupOp::remove_group, {}, true, false, false},
      {"settings", GroupOp::set_full_history, {}, true, true, false},
  };
  for (const auto& c : cases) {
    for (auto [actor, allowed] :
         {std::pair<UserId, bool>{"o", c.owner}, {"a", c.admin}, {"m", c.member}}) {
      auto r = plan(request(c.op, actor, c.users));
      if (allowed) {
        EXPECT_TRUE(r.ok()) << c.name << " by " << actor << ": " << r.error().message;
      } else {
        ASSERT_FALSE(r.ok()) << c.name << " by " << actor;
        EXPECT_EQ(r.error().code, Errc::forbidden) << c.name << " by " << actor;
      }
    }
  }
}

TEST_F(GroupRules, RemovingTheOwner) {
  expect_error(plan(request(GroupOp::remove, "o", {"o"})), Errc::bad_request,
               "use leave to leave a group");
  for (const char* actor : {"a", "m"})
    expect_error(plan(request(GroupOp::remove, actor, {"o"})), Errc::forbidden,
                 "owners remove anyone, admins remove members, members nobody");
}

TEST_F(GroupRules, ForbiddenMessages) {
  expect_error(plan(request(GroupOp::rename, "m")), Errc::forbidden,
               "only owners and admins rename a group");
  expect_error(plan(request(GroupOp::add, "m", {"x"})), Errc::forbidden,
               "only owners and admins add members");
  expect_error(plan(request(GroupOp::promote, "a", {"m"})), Errc::forbidden,
               "only the owner promotes and demotes");
  expect_error(plan(request(GroupOp::leave, "o")), Errc::forbidden,
               "the owner hands ownership over before leaving");
  expect_error(plan(request(GroupOp::transfer, "a", {"m"})), Errc::forbidden,
               "only the owner hands ownership over");
  expect_error(plan(request(GroupOp::remove_group, "a")), Errc::forbidden,
               "only the owner deletes a group");
  expect_error(plan(request(GroupOp::set_full_history, "m")), Errc::forbidden,
               "only owners and admins change settings");
}

TEST_F(GroupRules, OnlyActiveMembersAct) {
  for (const char* actor : {"x", "gone", "nobody"})
    expect_error(plan(request(GroupOp::rename, actor)), Errc::forbidden,
                 "not a member of this group");
}

TEST_F(GroupRules, NoSuchGroup) {
  auto req = request(GroupOp::rename, "o");
  in.group->deleted = true;
  expect_error(plan(req), Errc::not_found, "no such group: 7");
  in.group->deleted = false;
  in.group->kind = ChatKind::direct;
  expect_error(plan(req), Errc::not_found, "no such group: 7");
  in.group.reset();
  expect_error(plan(req), Errc::not_found, "no such group: 7");
}

TEST_F(GroupRules, TargetMustBeAnActiveMember) {
  for (GroupOp op : {GroupOp::remove, GroupOp::promote, GroupOp::demote, GroupOp::transfer}) {
    expect_error(plan(request(op, "o")), Errc::bad_request, "missing user");
    expect_error(plan(request(op, "o", {"x"})), Errc::conflict, "not a member: x");
    expect_error(plan(request(op, "o", {"gone"})), Errc::conflict, "not a member: gone");
  }
}

TEST_F(GroupRules, EventMessage) {
  auto r = plan(request(GroupOp::rename, "a"));
  ASSERT_TRUE(r.ok());
  const Message& m = r->event;
  EXPECT_EQ(m.chat_id, 7u);
  EXPECT_EQ(m.seq, 11u);
  EXPECT_EQ(m.message_id, 555u);
  EXPECT_EQ(m.ts, 1000);
  EXPECT_EQ(m.sender, "a");
  EXPECT_EQ(m.kind, MessageKind::event);
  EXPECT_EQ(m.body, R"({"event":"renamed","by":"a","name":"renamed"})");
  EXPECT_EQ(r->group.name, "renamed");
  EXPECT_EQ(r->group.last_seq, 11u);
  EXPECT_EQ(r->group.last_ts, 1000);
  EXPECT_TRUE(r->member_rows.empty());
}

TEST_F(GroupRules, NameLimits) {
  auto req = request(GroupOp::rename, "o");
  req.limits.max_name_bytes = 4;
  req.name = "abcd";
  EXPECT_TRUE(plan(req).ok());
  req.name = "abcde";
  expect_error(plan(req), Errc::bad_request, "name must be 1 to 4 bytes");
  req.name = "";
  expect_error(plan(req), Errc::bad_request, "name must be 1 to 4 bytes");
  req.op = GroupOp::create;
  expect_error(plan(req), Errc::bad_request, "name must be 1 to 4 bytes");
}

TEST_F(GroupRules, Create) {
  auto req = request(GroupOp::create, "o", {"m", "o", "x", "m"});
  req.chat_id = 0;
  req.name = "new";
  in.group.reset();
  auto r = plan(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->joined, (std::vector<UserId>{"o", "m", "x"}));  // the actor first, no repeats
  ASSERT_EQ(r->member_rows.size(), 3u);
  EXPECT_EQ(r->member_rows[0].role, Role::owner);
  EXPECT_EQ(r->member_rows[1].role, Role::member);
  for (const auto& row : r->member_rows) {
    EXPECT_EQ(row.joined_seq, 1u);
    EXPECT_EQ(row.left_seq, 0u);
  }
  EXPECT_EQ(r->group.kind, ChatKind::group);
  EXPECT_EQ(r->group.created_by, "o");
  EXPECT_EQ(r->group.created_at, 1000);
  EXPECT_EQ(r->group.member_count, 3u);
  EXPECT_FALSE(r->group.large);
  EXPECT_EQ(r->event.seq, 1u);
  EXPECT_EQ(r->event.chat_id, 0u);  // the backend assigns it
  EXPECT_EQ(r->event.body, R"({"event":"created","by":"o","name":"new","members":["o","m","x"]})");
  EXPECT_EQ(event_recipients(r.value(), {"someone"}), r->joined);
  EXPECT_FALSE(event_to_every_member(r.value()));
  EXPECT_EQ(named_users(req), (std::vector<UserId>{"o", "m", "x"}));
}

TEST_F(GroupRules, CreateLimits) {
  auto req = request(GroupOp::create, "o", {"m", "x"});
  in.group.reset();
  req.limits.max_members = 2;
  expect_error(plan(req), Errc::too_large, "a group has at most 2 members");
  req.limits.max_members = 3;
  EXPECT_TRUE(plan(req).ok());
  req.users = {"m", "nobody"};
  expect_error(plan(req), Errc::not_found, "no such user: nobody");
  facts("m").live = false;
  expect_error(plan(req), Errc::not_found, "no such user: m");  // in order
  facts("m").live = true;
  req.users = {"m", "x"};
  req.limits.max_groups_per_user = 1;
  expect_error(plan(req), Errc::too_large, "o is in 1 groups already");
  facts("o").group_count = 0;
  facts("m").group_count = 0;
  EXPECT_TRUE(plan(req).ok());
}

TEST_F(GroupRules, CreateLarge) {
  auto req = request(GroupOp::create, "o", {"m", "x"});
  in.group.reset();
  req.name = "big";
  req.limits.large_threshold = 2;
  auto r = plan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->group.large);
  EXPECT_EQ(r->event.body,
            R"({"event":"created","by":"o","name":"big","members":["o","m","x"],"large":true})");
  req.limits.large_threshold = 3;  // at the threshold: still small
  r = plan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->group.large);
}

TEST_F(GroupRules, Add) {
  auto r = plan(request(GroupOp::add, "a", {"x", "gone", "x"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->joined, (std::vector<UserId>{"x", "gone"}));  // who left may come back
  ASSERT_EQ(r->member_rows.size(), 2u);
  EXPECT_EQ(r->member_rows[1].user, "gone");
  EXPECT_EQ(r->member_rows[1].joined_seq, 11u);
  EXPECT_EQ(r->member_rows[1].left_seq, 0u);
  EXPECT_EQ(r->member_rows[1].role, Role::member);
  EXPECT_EQ(r->group.member_count, 7u);
  EXPECT_EQ(r->event.body, R"({"event":"members_added","by":"a","users":["x","gone"]})");
  EXPECT_TRUE(event_to_every_member(r.value()));
  EXPECT_EQ(event_recipients(r.value(), {"o", "x"}), (std::vector<UserId>{"o", "x"}));
}

TEST_F(GroupRules, AddErrors) {
  expect_error(plan(request(GroupOp::add, "o", {})), Errc::bad_request, "no users to add");
  expect_error(plan(request(GroupOp::add, "o", {"x", "m"})), Errc::conflict, "already a member: m");
  expect_error(plan(request(GroupOp::add, "o", {"nobody"})), Errc::not_found,
               "no such user: nobody");
  auto req = request(GroupOp::add, "o", {"x"});
  req.limits.max_groups_per_user = 1;
  facts("x").group_count = 1;
  expect_error(plan(req), Errc::too_large, "x is in 1 groups already");
  facts("x").group_count = 0;
  req.limits.max_members = 5;
  expect_error(plan(req), Errc::too_large, "a group has at most 5 members");
  req.limits.max_members = 6;
  EXPECT_TRUE(plan(req).ok());
}

TEST_F(GroupRules, AddTurnsLarge) {
  auto req = request(GroupOp::add, "o", {"x"});
  req.limits.large_threshold = 5;
  auto r = plan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->group.large);
  EXPECT_FALSE(r->was_large);
  EXPECT_EQ(r->event.body, R"({"event":"members_added","by":"o","users":["x"],"large":true})");
  // Every member learns of it through its log, this one time.
  EXPECT_TRUE(event_to_every_member(r.value()));
}

TEST_F(GroupRules, LargeStaysLarge) {
  in.group->large = true;
  auto req = request(GroupOp::remove, "o", {"m"});
  req.limits.large_threshold = 100;
  auto r = plan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->group.large);
  EXPECT_TRUE(r->was_large);
  EXPECT_EQ(r->event.body, R"({"event":"member_removed","by":"o","user":"m"})");
  EXPECT_FALSE(event_to_every_member(r.value()));
  EXPECT_EQ(event_recipients(r.value(), {"ignored"}), (std::vector<UserId>{"m"}));
}

TEST_F(GroupRules, Remove) {
  auto r = plan(request(GroupOp::remove, "a", {"m"}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->member_rows.size(), 1u);
  EXPECT_EQ(r->member_rows[0].user, "m");
  EXPECT_EQ(r->member_rows[0].left_seq, 11u);
  EXPECT_EQ(r->left, (std::vector<UserId>{"m"}));
  EXPECT_EQ(r->group.member_count, 4u);
  EXPECT_EQ(event_recipients(r.value(), {"o", "a"}), (std::vector<UserId>{"o", "a", "m"}));
}

TEST_F(GroupRules, PromoteDemote) {
  auto r = plan(request(GroupOp::promote, "o", {"m"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->member_rows[0].role, Role::admin);
  EXPECT_EQ(r->event.body, R"({"event":"role_changed","by":"o","user":"m","role":"admin"})");
  r = plan(request(GroupOp::demote, "o", {"a"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->member_rows[0].role, Role::member);
  EXPECT_EQ(r->event.body, R"({"event":"role_changed","by":"o","user":"a","role":"member"})");
  expect_error(plan(request(GroupOp::promote, "o", {"a"})), Errc::conflict,
               "a is not a plain member");
  expect_error(plan(request(GroupOp::demote, "o", {"m"})), Errc::conflict, "m is not an admin");
  expect_error(plan(request(GroupOp::demote, "o", {"o"})), Errc::conflict, "o is not an admin");
}

TEST_F(GroupRules, Leave) {
  auto r = plan(request(GroupOp::leave, "m"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->member_rows[0].left_seq, 11u);
  EXPECT_EQ(r->left, (std::vector<UserId>{"m"}));
  EXPECT_EQ(r->group.member_count, 4u);
  EXPECT_EQ(r->event.body, R"({"event":"member_left","user":"m"})");
}

TEST_F(GroupRules, Transfer) {
  expect_error(plan(request(GroupOp::transfer, "o", {"o"})), Errc::bad_request,
               "you own this group already");
  auto r = plan(request(GroupOp::transfer, "o", {"m"}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->member_rows.size(), 2u);
  EXPECT_EQ(r->member_rows[0].user, "m");
  EXPECT_EQ(r->member_rows[0].role, Role::owner);
  EXPECT_EQ(r->member_rows[1].user, "o");
  EXPECT_EQ(r->member_rows[1].role, Role::admin);
  EXPECT_EQ(r->event.body, R"({"event":"owner_changed","by":"o","user":"m"})");
}

TEST_F(GroupRules, Delete) {
  auto r = plan(request(GroupOp::remove_group, "o"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->everyone_leaves);
  EXPECT_TRUE(r->group.deleted);
  EXPECT_EQ(r->group.member_count, 0u);
  EXPECT_EQ(r->event.body, R"({"event":"group_deleted","by":"o"})");
  leave_all(r.value(), {Member{"o", Role::owner, 1, 0}, Member{"m", Role::member, 3, 0}});
  EXPECT_EQ(r->left, (std::vector<UserId>{"o", "m"}));
  ASSERT_EQ(r->member_rows.size(), 2u);
  EXPECT_EQ(r->member_rows[1].left_seq, 11u);
  EXPECT_EQ(r->member_rows[1].joined_seq, 3u);
  EXPECT_EQ(event_recipients(r.value(), {}), (std::vector<UserId>{"o", "m"}));
}

TEST_F(GroupRules, Settings) {
  auto req = request(GroupOp::set_full_history, "a");
  req.flag = true;
  auto r = plan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->group.full_history);
  EXPECT_EQ(r->event.body, R"({"event":"settings_changed","by":"a","full_history":true})");
}

TEST_F(GroupRules, ChatInfoAndRoleNames) {
  auto r = plan(request(GroupOp::rename, "o"));
  ASSERT_TRUE(r.ok());
  ChatInfo info = chat_info(r->group);
  EXPECT_EQ(info.chat_id, 7u);
  EXPECT_EQ(info.name, "renamed");
  EXPECT_EQ(info.last_seq, 11u);
  EXPECT_EQ(info.member_count, 5u);
  EXPECT_EQ(info.created_by, "o");
  EXPECT_STREQ(role_name(Role::owner), "owner");
  EXPECT_STREQ(role_name(Role::admin), "admin");
  EXPECT_STREQ(role_name(Role::member), "member");
}

// Read state -----------------------------------------------------------------------------

TEST(ReadStateRules, Visible) {
  Member m{"u", Role::member, 5, 0};
  auto v = group_visible(20, false, m);
  EXPECT_EQ(v.first, 5u);
  EXPECT_EQ(v.last, 20u);
  EXPECT_TRUE(v.member);
  EXPECT_EQ(group_visible(20, true, m).first, 1u);
  m.left_seq = 9;
  v = group_visible(20, false, m);
  EXPECT_EQ(v.last, 9u);
  EXPECT_FALSE(v.member);
  v = direct_visible(3);
  EXPECT_EQ(v.first, 1u);
  EXPECT_EQ(v.last, 3u);
  EXPECT_TRUE(v.member);
}

TEST(ReadStateRules, Unread) {
  EXPECT_EQ(unread_count(true, 10, 4), 6u);
  EXPECT_EQ(unread_count(true, 10, 10), 0u);
  EXPECT_EQ(unread_count(true, 10, 12), 0u);
  EXPECT_EQ(unread_count(false, 10, 4), 0u);  // a former member: no badge
}

TEST(ReadStateRules, JoinAndOwnMessages) {
  auto p = joined_at(ReadPositions{}, 1);
  EXPECT_EQ(p.read_seq, 0u);
  p = joined_at(ReadPositions{2, 3}, 8);
  EXPECT_EQ(p.read_seq, 7u);
  EXPECT_EQ(p.delivered_seq, 7u);
  p = joined_at(ReadPositions{9, 9}, 8);  // never backwards
  EXPECT_EQ(p.read_seq, 9u);
  EXPECT_FALSE(after_own_message(ReadPositions{5, 5}, 5));
  auto own = after_own_message(ReadPositions{3, 7}, 5);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->read_seq, 5u);
  EXPECT_EQ(own->delivered_seq, 7u);
  own = after_own_message(ReadPositions{3, 4}, 6);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->delivered_seq, 6u);
}

TEST(ReadStateRules, ReceiptMovesForwardOnly) {
  Visible vis{1, 10, true};
  auto d = decide_receipt(UpdateKind::read, 6, vis, ReadPositions{2, 3});
  EXPECT_TRUE(d.advanced);
  EXPECT_EQ(d.seq, 6u);
  EXPECT_EQ(d.positions.read_seq, 6u);
  EXPECT_EQ(d.positions.delivered_seq, 6u);  // read implies delivered
  EXPECT_EQ(d.unread, 4u);
  d = decide_receipt(UpdateKind::read, 6, vis, ReadPositions{6, 8});
  EXPECT_FALSE(d.advanced);
  EXPECT_EQ(d.seq, 6u);
  EXPECT_EQ(d.positions.delivered_seq, 8u);
  d = decide_receipt(UpdateKind::read, 2, vis, ReadPositions{6, 8});
  EXPECT_FALSE(d.advanced);
  EXPECT_EQ(d.seq, 6u);
  d = decide_receipt(UpdateKind::delivered, 9, vis, ReadPositions{6, 8});
  EXPECT_TRUE(d.advanced);
  EXPECT_EQ(d.seq, 9u);
  EXPECT_EQ(d.positions.read_seq, 6u);  // delivered does not read
  EXPECT_EQ(d.unread, 4u);
}

TEST(ReadStateRules, ReceiptCappedAtWhatTheUserMayRead) {
  auto d = decide_receipt(UpdateKind::read, std::nullopt, Visible{1, 10, true}, ReadPositions{});
  EXPECT_EQ(d.seq, 10u);
  EXPECT_EQ(d.unread, 0u);
  d = decide_receipt(UpdateKind::read, 50, Visible{1, 10, true}, ReadPositions{});
  EXPECT_EQ(d.seq, 10u);
  d = decide_receipt(UpdateKind::read, UINT64_MAX, Visible{1, 4, false}, ReadPositions{1, 1});
  EXPECT_TRUE(d.advanced);
  EXPECT_EQ(d.seq, 4u);  // a former member: up to its removal
  EXPECT_EQ(d.unread, 0u);
  d = decide_receipt(UpdateKind::delivered, 0, Visible{1, 10, true}, ReadPositions{});
  EXPECT_FALSE(d.advanced);
}

TEST(ReadStateRules, ReceiptAudience) {
  struct Case {
    UpdateKind kind;
    bool advanced, member;
    ChatKind chat;
    bool large;
    bool own, others, broadcast;
  };
  const Case cases[] = {
      {UpdateKind::read, false, true, ChatKind::direct, false, false, false, false},
      {UpdateKind::read, true, true, ChatKind::direct, false, true, true, false},
      {UpdateKind::delivered, true, true, ChatKind::direct, false, false, true, false},
      {UpdateKind::read, true, true, ChatKind::group, false, true, true, false},
      {UpdateKind::delivered, true, true, ChatKind::group, false, false, true, false},
      {UpdateKind::read, true, true, ChatKind::group, true, true, false, true},
      {UpdateKind::delivered, true, true, ChatKind::group, true, false, false, true},
      {UpdateKind::read, true, false, ChatKind::group, false, true, false, false},
      {UpdateKind::delivered, true, false, ChatKind::group, true, false, false, false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    auto a = receipt_audience(c.kind, c.advanced, c.member, c.chat, c.large);
    EXPECT_EQ(a.own_log, c.own) << "case " << i;
    EXPECT_EQ(a.other_members, c.others) << "case " << i;
    EXPECT_EQ(a.broadcast, c.broadcast) << "case " << i;
  }
}

TEST(ReadStateRules, ReceiptRecipients) {
  std::vector<UserId> members{"b", "u", "c"};
  ReceiptAudience a{true, true, false};
  EXPECT_EQ(receipt_recipients(a, "u", members), (std::vector<UserId>{"u", "b", "c"}));
  a.own_log = false;
  EXPECT_EQ(receipt_recipients(a, "u", members), (std::vector<UserId>{"b", "c"}));
  a = ReceiptAudience{true, false, true};
  EXPECT_EQ(receipt_recipients(a, "u", members), (std::vector<UserId>{"u"}));
}

// Push -----------------------------------------------------------------------------------

TEST(PushRules, DoNotDisturbAndMuteEndAtTheirTime) {
  const int64_t now = 1000;
  EXPECT_TRUE(push_allowed(std::nullopt, std::nullopt, now));
  EXPECT_TRUE(push_allowed(0, 0, now));
  EXPECT_TRUE(push_allowed(now, std::nullopt, now));  // exactly at the end: over
  EXPECT_TRUE(push_allowed(std::nullopt, now, now));
  EXPECT_TRUE(push_allowed(now - 1, now - 1, now));
  EXPECT_FALSE(push_allowed(now + 1, std::nullopt, now));
  EXPECT_FALSE(push_allowed(std::nullopt, now + 1, now));
  EXPECT_FALSE(push_allowed(INT64_MAX, std::nullopt, now));
  EXPECT_FALSE(push_allowed(std::nullopt, INT64_MAX, now));  // muted forever
  EXPECT_FALSE(push_allowed(0, INT64_MAX, 0));
  EXPECT_TRUE(push_allowed(INT64_MAX, INT64_MAX, INT64_MAX));
  EXPECT_TRUE(push_allowed(0, 0, 0));
}

TEST(PushRules, MuteRow) {
  auto r = mute_row(-2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::bad_request);
  EXPECT_EQ(r.error().message, "until must be a time, 0 or -1");
  EXPECT_FALSE(mute_row(INT64_MIN).ok());
  ASSERT_TRUE(mute_row(0).ok());
  EXPECT_FALSE(mute_row(0).value());  // unmute: no row
  EXPECT_EQ(mute_row(-1).value(), INT64_MAX);
  EXPECT_EQ(mute_row(1).value(), 1);
  EXPECT_EQ(mute_row(INT64_MAX).value(), INT64_MAX);
}

TEST(PushRules, Targets) {
  PushTarget t;
  t.user = "u";
  t.device_id = "d";
  t.token = std::string(kMaxPushToken, 't');
  t.app_id = std::string(kMaxPushAppId, 'a');
  EXPECT_TRUE(validate_push_target(t).ok());
  for (PushProvider p : {PushProvider::webhook, PushProvider::fcm, PushProvider::apns}) {
    t.provider = p;
    EXPECT_TRUE(validate_push_target(t).ok());
  }
  auto expect_bad = [](const PushTarget& bad, const std::string& message) {
    auto st = validate_push_target(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::bad_request);
    EXPECT_EQ(st.error().message, message);
  };
  auto bad = t;
  bad.token.clear();
  expect_bad(bad, "token must be 1 to 4096 bytes");
  bad.token = std::string(kMaxPushToken + 1, 't');
  expect_bad(bad, "token must be 1 to 4096 bytes");
  bad = t;
  bad.app_id += 'a';
  expect_bad(bad, "app_id is at most 255 bytes");
  bad = t;
  bad.provider = static_cast<PushProvider>(0);
  expect_bad(bad, "unknown push provider");
  bad.provider = static_cast<PushProvider>(4);
  expect_bad(bad, "unknown push provider");
}

TEST(PushRules, CollapseABurst) {
  PushEnqueue item{"u", {}, 7, 3, "s", 2000};
  PushJob first = collapse_push(std::nullopt, item, "d", 1000);
  EXPECT_EQ(first.user, "u");
  EXPECT_EQ(first.device_id, "d");
  EXPECT_EQ(first.chat_id, 7u);
  EXPECT_EQ(first.count, 1u);
  EXPECT_EQ(first.last_seq, 3u);
  EXPECT_EQ(first.last_sender, "s");
  EXPECT_EQ(first.created_at, 1000);
  EXPECT_EQ(first.due_at, 2000);
  EXPECT_EQ(first.version, 1u);
  PushEnqueue later{"u", {}, 7, 4, "t", 5000};
  PushJob next = collapse_push(first, later, "d", 3000);
  EXPECT_EQ(next.count, 2u);
  EXPECT_EQ(next.version, 2u);
  EXPECT_EQ(next.last_seq, 4u);
  EXPECT_EQ(next.last_sender, "t");
  EXPECT_EQ(next.created_at, 1000);  // still the burst's first message
  EXPECT_EQ(next.due_at, 2000);      // still due when it was
}

TEST(PushRules, FinishedSends) {
  PushJob claimed;
  claimed.count = 2;
  claimed.version = 3;
  claimed.attempts = 1;
  claimed.due_at = 10;
  claimed.lease_until = 99;
  PushJob current = claimed;

  auto f = finish_push(current, claimed, PushOutcome::sent, 0, 500);
  EXPECT_EQ(f.action, PushFinish::Action::remove);

  current.version = 5;  // two messages collapsed in while it was sent
  current.count = 4;
  f = finish_push(current, claimed, PushOutcome::sent, 0, 500);
  EXPECT_EQ(f.action, PushFinish::Action::replace);
  EXPECT_EQ(f.next.count, 2u);
  EXPECT_EQ(f.next.due_at, 500);
  EXPECT_EQ(f.next.attempts, 0u);
  EXPECT_EQ(f.next.lease_until, 0);
  current.count = 2;  // the count did not grow (a new job of the same key): one message
  EXPECT_EQ(finish_push(current, claimed, PushOutcome::sent, 0, 500).next.count, 1u);

  f = finish_push(current, claimed, PushOutcome::retry, 800, 500);
  EXPECT_EQ(f.action, PushFinish::Action::replace);
  EXPECT_EQ(f.next.due_at, 800);
  EXPECT_EQ(f.next.attempts, 2u);
  EXPECT_EQ(f.next.lease_until, 0);

  f = finish_push(current, claimed, PushOutcome::dead, 0, 500);
  EXPECT_EQ(f.action, PushFinish::Action::dead_letter);
  EXPECT_EQ(f.next.attempts, 2u);  // the failed send counts
}

// Messages and idempotency ----------------------------------------------------------------

TEST(MessageRules, DirectSends) {
  EXPECT_TRUE(check_direct_send("a", "b").ok());
  auto st = check_direct_send("a", "a");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::bad_request);
  EXPECT_EQ(st.error().message, "cannot send to yourself");
}

TEST(MessageRules, FanOut) {
  EXPECT_FALSE(fan_out_on_read(ChatKind::direct, false));
  EXPECT_FALSE(fan_out_on_read(ChatKind::group, false));
  EXPECT_TRUE(fan_out_on_read(ChatKind::group, true));
}

TEST(MessageRules, SenderPts) {
  EXPECT_EQ(sender_pts({}, "a"), 0u);
  EXPECT_EQ(sender_pts({{"b", 4}, {"a", 9}}, "a"), 9u);
  EXPECT_EQ(sender_pts({{"b", 4}}, "a"), 0u);  // a large group: the sender's log has none
}

TEST(MessageRules, DuplicateAppendReturnsTheFirst) {
  Message m;
  m.chat_id = 3;
  m.seq = 8;
  m.message_id = 77;
  m.client_msg_id = "c1";
  auto r = duplicate_append(m, 12);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.message.seq, 8u);
  EXPECT_EQ(r.message.message_id, 77u);
  EXPECT_EQ(r.sender_pts, 12u);
  EXPECT_TRUE(r.deliveries.empty());
  EXPECT_FALSE(r.broadcast);
}

}  // namespace
}  // namespace parley::store::rules
