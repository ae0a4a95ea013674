// Profiles: where `parley login` keeps the server URL, user, device id and token
// ($XDG_CONFIG_HOME/parley/<name>.json, else ~/.config/parley/<name>.json, mode 0600), and the
// listen cursor beside it (<name>.cursor).
#pragma once

#include <optional>
#include <string>

#include "cli/cli.h"

namespace parley::cli {

struct Profile {
  std::string name;
  std::string server;
  std::string user;
  std::string device_id;
  std::string token;  // empty after logout
};

// Throws UsageError for names other than 1-64 chars of [A-Za-z0-9_.-] not starting with '.'.
void ValidateProfileName(const std::string& name);
// The directory, created (mode 0700) on demand by SaveProfile(). Throws Error{"config_error"}.
std::string ConfigDir();
std::string ProfilePath(const std::string& name);
std::string CursorPath(const std::string& name);

// nullopt if the file does not exist; throws Error{"bad_profile"} if it cannot be read.
std::optional<Profile> LoadProfile(const std::string& name);
// Writes atomically with mode 0600.
void SaveProfile(const Profile& profile);
// Deletes the saved listen cursor (a new device starts with a snapshot).
void ForgetCursor(const std::string& name);

// The profile of g.profile with a token; throws Error{"not_logged_in"} otherwise. The server is
// g.server when given, else the profile's.
Profile RequireLogin(const Globals& g);
// g.server, else the profile's server, else kDefaultServer; validated (bad_url,
// unsupported_scheme).
std::string ResolveServer(const Globals& g, const std::optional<Profile>& profile);

}  // namespace parley::cli
