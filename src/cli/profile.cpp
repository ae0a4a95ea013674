#include "cli/profile.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "parley/error.h"
#include "parley/url.h"

namespace parley::cli {
namespace json = boost::json;
namespace {

[[noreturn]] void ConfigError(const std::string& what, const std::string& path, int err) {
  throw Error("config_error", what + " " + path + ": " + std::strerror(err));
}

void MakeDirs(const std::string& path) {
  std::string partial;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty()) {
      if (partial.empty()) partial = "/";
      continue;
    }
    if (!partial.empty() && partial.back() != '/') partial += '/';
    partial += part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      ConfigError("cannot create", partial, errno);
    }
  }
}

std::string Field(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

void ValidateProfileName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.';
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    throw UsageError("bad profile name '" + name +
                     "': use 1-64 characters of A-Z a-z 0-9 _ . - (not starting with '.')");
  }
}

std::string ConfigDir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/parley";
  const char* home = std::getenv("HOME");
  std::string base = home && home[0] ? home : "";
  if (base.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) base = pw->pw_dir;
  }
  if (base.empty()) {
    throw Error("config_error", "neither XDG_CONFIG_HOME nor HOME is set");
  }
  return base + "/.config/parley";
}

std::string ProfilePath(const std::string& name) { return ConfigDir() + "/" + name + ".json"; }

std::string CursorPath(const std::string& name) { return ConfigDir() + "/" + name + ".cursor"; }

std::optional<Profile> LoadProfile(const std::string& name) {
  ValidateProfileName(name);
  std::string path = ProfilePath(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    ConfigError("cannot read", path, errno);
  }
  std::ifstream in(path);
  if (!in) ConfigError("cannot read", path, errno ? errno : EIO);
  std::stringstream text;
  text << in.rdbuf();
  json::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object()) {
    throw Error("bad_profile", path + " is not a JSON object; delete it and log in again");
  }
  const json::object& o = v.get_object();
  Profile p;
  p.name = name;
  p.server = Field(o, "server");
  p.user = Field(o, "user");
  p.device_id = Field(o, "device_id");
  p.token = Field(o, "token");
  return p;
}

void SaveProfile(const Profile& profile) {
  ValidateProfileName(profile.name);
  std::string dir = ConfigDir();
  MakeDirs(dir);
  json::object o;
  o["server"] = profile.server;
  o["user"] = profile.user;
  o["device_id"] = profile.device_id;
  o["token"] = profile.token;
  std::string text = json::serialize(o) + "\n";
  std::string path = ProfilePath(profile.name);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) ConfigError("cannot create", tmp, errno);
  ::fchmod(fd, 0600);  // in case the file existed with other bits
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  if (::fsync(fd) != 0 && n >= 0) err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());
    ConfigError("cannot write", tmp, n < 0 ? err : EIO);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    ConfigError("cannot replace", path, err);
  }
}

void ForgetCursor(const std::string& name) {
  std::string path = CursorPath(name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) ConfigError("cannot delete", path, errno);
}

Profile RequireLogin(const Globals& g) {
  std::optional<Profile> p = LoadProfile(g.profile);
  if (!p || p->token.empty()) {
    throw Error(
        "not_logged_in",
        "profile '" + g.profile + "' has no token (" + ProfilePath(g.profile) + "); run 'parley" +
            (g.profile == kDefaultProfile ? "" : " --profile " + g.profile) + " login USER' first");
  }
  p->server = ResolveServer(g, p);
  return *p;
}

std::string ResolveServer(const Globals& g, const std::optional<Profile>& profile) {
  std::string server = !g.server.empty()                     ? g.server
                       : profile && !profile->server.empty() ? profile->server
                                                             : std::string(kDefaultServer);
  ParseUrl(server);  // throws bad_url / unsupported_scheme
  return server;
}

}  // namespace parley::cli
