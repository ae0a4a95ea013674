// parley group create|rename|add|remove|promote|demote|leave|transfer|delete|settings|info
// (docs/PROTOCOL.md §3.9), each one group_* request through Client::Request().
#include <algorithm>
#include <iostream>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"

namespace parley::cli {
namespace json = boost::json;
namespace {

// The request fields for args.action; throws UsageError for a wrong number of arguments.
json::object Fields(const GroupArgs& args) {
  const std::string& a = args.action;
  json::object f;
  if (a != "create") f["chat_id"] = args.chat_id;
  if (a == "create" || a == "rename") {
    if (args.name.empty()) throw UsageError("the group name is empty");
    f["name"] = args.name;
  }
  if (a == "create") {
    json::array members;
    for (const auto& u : args.users) {
      if (!u.empty()) members.emplace_back(u);
    }
    f["members"] = std::move(members);
  } else if (a == "add") {
    json::array users(args.users.begin(), args.users.end());
    if (users.empty()) throw UsageError("group add CHAT_ID USER...");
    f["users"] = std::move(users);
  } else if (a == "remove" || a == "promote" || a == "demote" || a == "transfer") {
    if (args.users.size() != 1) throw UsageError("group " + a + " CHAT_ID USER");
    f["user"] = args.users[0];
  } else if (a == "settings") {
    if (args.full_history != "on" && args.full_history != "off") {
      throw UsageError("--full-history must be on or off");
    }
    f["full_history"] = args.full_history == "on";
  }
  return f;
}

// Field access that tolerates an unexpected answer (empty / 0 / false).
const json::object& Obj(const json::value& v, std::string_view key) {
  static const json::object kEmpty;
  const auto* o = v.if_object();
  const auto* field = o ? o->if_contains(key) : nullptr;
  return field && field->is_object() ? field->get_object() : kEmpty;
}
std::string Str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
int64_t Int(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->get_int64() : v && v->is_uint64() ? int64_t(v->get_uint64()) : 0;
}
bool Bool(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

// "team" with quotes, backslashes and control characters escaped.
std::string Quoted(std::string_view name) {
  std::string s;
  for (char c : name) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return "\"" + EscapeControl(s) + "\"";
}

// group 31 "team"
std::string GroupName(const json::object& chat) {
  return "group " + std::to_string(Int(chat, "chat_id")) + " " + Quoted(Str(chat, "name"));
}

// 3 members
std::string Members(const json::object& chat) {
  int64_t n = Int(chat, "member_count");
  return std::to_string(n) + (n == 1 ? " member" : " members");
}

std::string HumanResult(const GroupArgs& args, const json::object& chat) {
  const std::string& a = args.action;
  std::string user = args.users.empty() ? "" : EscapeControl(args.users[0]);
  if (a == "create") return GroupName(chat) + ": " + Members(chat);
  if (a == "rename")
    return "renamed group " + std::to_string(args.chat_id) + " to " + Quoted(Str(chat, "name"));
  if (a == "add") {
    std::string users;
    for (const auto& u : args.users) users += (users.empty() ? "" : ",") + EscapeControl(u);
    return "added " + users + " to " + GroupName(chat) + ": " + Members(chat);
  }
  if (a == "remove") return "removed " + user + " from " + GroupName(chat) + ": " + Members(chat);
  if (a == "promote") return "promoted " + user + " to admin in " + GroupName(chat);
  if (a == "demote") return "demoted " + user + " to member in " + GroupName(chat);
  if (a == "leave") return "left " + GroupName(chat);
  if (a == "transfer") return "transferred " + GroupName(chat) + " to " + user;
  if (a == "delete") return "deleted " + GroupName(chat);
  // settings
  return GroupName(chat) + ": full history " + (Bool(chat, "full_history") ? "on" : "off");
}

// group 31 "team": 3 members, last #9, full history off
// USER   ROLE
// alice  owner
// carol  admin
// bob    member
void PrintInfo(const json::object& chat) {
  std::string header = GroupName(chat) + ": " + Members(chat);
  if (Bool(chat, "large")) header += " (large)";
  header += ", last #" + std::to_string(Int(chat, "last_seq")) + ", full history " +
            (Bool(chat, "full_history") ? "on" : "off");
  PrintLine(header);
  std::vector<std::pair<std::string, std::string>> rows;
  if (const auto* members = chat.if_contains("members"); members && members->is_array()) {
    for (const auto& m : members->get_array()) {
      const json::object& o = m.is_object() ? m.get_object() : json::object();
      rows.emplace_back(EscapeControl(Str(o, "user")), Str(o, "role"));
    }
  }
  // Owner, admins, members; by user id within a role.
  auto rank = [](const std::string& role) { return role == "owner" ? 0 : role == "admin" ? 1 : 2; };
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    return std::pair(rank(a.second), a.first) < std::pair(rank(b.second), b.first);
  });
  size_t width = 4;  // "USER"
  for (const auto& r : rows) width = std::max(width, r.first.size());
  auto row = [width](const std::string& user, const std::string& role) {
    PrintLine(user + std::string(width - user.size() + 2, ' ') + role);
  };
  row("USER", "ROLE");
  for (const auto& r : rows) row(r.first, r.second);
  if (Bool(chat, "members_truncated")) {
    std::cerr << "parley: member list truncated: " << rows.size() << " of "
              << Int(chat, "member_count") << " shown\n";
  }
}

}  // namespace

int RunGroup(const Globals& g, const GroupArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  if (args.action != "create" && args.chat_id <= 0) {
    throw UsageError("CHAT_ID must be a positive chat id");
  }
  json::object fields = Fields(args);
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  json::value result =
      session.Wait(session.client().Request("group_" + args.action, std::move(fields)));
  if (g.json) {
    PrintLine(json::serialize(result));
  } else if (args.action == "info") {
    PrintInfo(Obj(result, "chat"));
  } else {
    PrintLine(HumanResult(args, Obj(result, "chat")));
  }
  return kExitOk;
}

}  // namespace parley::cli
