// parley register | login | logout | account delete
#include <unistd.h>

#include <iostream>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/password.h"
#include "cli/profile.h"
#include "parley/cursor_file.h"
#include "parley/error.h"
#include "parley/http_api.h"

namespace parley::cli {
namespace json = boost::json;
namespace {

std::string DefaultDeviceName() {
  char host[256] = {};
  std::string name = "parley-cli";
  if (::gethostname(host, sizeof(host) - 1) == 0 && host[0]) name += "@" + std::string(host);
  if (name.size() > 64) name.resize(64);
  return name;
}

}  // namespace

int RunRegister(const Globals& g, const std::string& user) {
  std::string server = ResolveServer(g, LoadProfile(g.profile));
  std::string password = ReadPassword("Password for new user " + user + ": ");
  std::string registered = Register(server, user, password);
  if (g.json) {
    PrintLine(json::serialize(json::object{{"user", registered}, {"server", server}}));
  } else {
    PrintLine("registered " + registered + " on " + server);
  }
  return kExitOk;
}

int RunLogin(const Globals& g, const LoginArgs& args) {
  std::optional<Profile> old = LoadProfile(g.profile);
  std::string server = ResolveServer(g, old);
  std::string password = ReadPassword("Password for " + args.user + ": ");
  std::string device = args.device_name.empty() ? DefaultDeviceName() : args.device_name;
  LoginResult login = Login(server, args.user, password, device);
  Profile p;
  p.name = g.profile;
  p.server = server;
  p.user = login.user;
  p.device_id = login.device_id;
  p.token = login.token;
  SaveProfile(p);
  // The new device starts where the login found the user's update log: the next listen
  // prints everything after it, however much arrives meanwhile (PROTOCOL.md §2).
  SaveCursorFile(CursorPath(p.name), login.pts);
  if (old && !old->token.empty() && g.verbose) {
    std::cerr << "parley: replaced the token of " << old->user << " in profile " << p.name
              << " (the old device stays valid until logged out elsewhere)\n";
  }
  if (g.json) {
    PrintLine(json::serialize(json::object{
        {"user", p.user}, {"device_id", p.device_id}, {"server", p.server}, {"profile", p.name}}));
  } else {
    PrintLine("logged in as " + p.user + " on " + p.server + " (device " + p.device_id +
              ", profile " + p.name + ")");
  }
  return kExitOk;
}

int RunLogout(const Globals& g) {
  Profile p = RequireLogin(g);
  bool already_invalid = false;
  try {
    Logout(p.server, p.token);
  } catch (const Error& e) {
    if (e.code() != "unauthorized") throw;  // keep the token: the logout may be retried
    already_invalid = true;
  }
  p.token.clear();
  p.device_id.clear();
  SaveProfile(p);
  ForgetCursor(p.name);
  if (g.json) {
    PrintLine(json::serialize(json::object{{"user", p.user}, {"profile", p.name}}));
  } else {
    PrintLine("logged out " + p.user + " (profile " + p.name + ")" +
              (already_invalid ? "; the server no longer knew the token" : ""));
  }
  return kExitOk;
}

// DELETE /v1/account: the account, its devices and the media only it used are gone; the
// profile keeps its server and user but no token (like logout).
int RunAccountDelete(const Globals& g) {
  Profile p = RequireLogin(g);
  std::string password =
      ReadPassword("Password for " + p.user + " (this deletes the account " + p.user + "): ");
  DeleteAccount(p.server, p.token, password);
  p.token.clear();
  p.device_id.clear();
  SaveProfile(p);
  ForgetCursor(p.name);
  if (g.json) {
    PrintLine(json::serialize(json::object{
        {"user", p.user}, {"server", p.server}, {"profile", p.name}, {"deleted", true}}));
  } else {
    PrintLine("deleted account " + p.user + " on " + p.server + " (profile " + p.name + ")");
  }
  return kExitOk;
}

}  // namespace parley::cli
