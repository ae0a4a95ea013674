// Shared declarations of the `parley` command-line client: global options, exit codes and one
// function per command. See docs/CLIENT.md for the interface.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "parley/types.h"

namespace parley::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;          // "parley: <code>: <message>" on stderr
inline constexpr int kExitUsage = 2;          // bad command line
inline constexpr int kExitIncomplete = 3;     // listen --count N: fewer than N before --timeout
inline constexpr int kExitInterrupted = 130;  // listen stopped by SIGINT/SIGTERM

inline constexpr char kDefaultServer[] = "http://127.0.0.1:8080";
inline constexpr char kDefaultProfile[] = "default";

// Options valid before or after the command.
struct Globals {
  std::string server;  // --server; empty: the profile's, else kDefaultServer
  std::string profile = kDefaultProfile;
  bool json = false;
  bool verbose = false;
};

// A command-line mistake found after parsing: exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoginArgs {
  std::string user;
  std::string device_name;
};
struct SendArgs {
  std::string user;  // empty with --chat
  int64_t chat_id = 0;
  std::string text;          // empty with --file
  std::string file;          // --file: upload this and send it as a media message
  std::string caption;       // --caption (with --file)
  std::string content_type;  // --type (with --file): the declared MIME type
  double timeout_s = 30;
};
// parley download MEDIA_ID -o PATH (docs/MEDIA.md "HTTP API").
struct DownloadArgs {
  std::string media_id;
  std::string output;   // -o: a file, or an existing directory (then NAME or MEDIA_ID in it)
  std::string name;     // --name: ?name= for Content-Disposition, and the file name in a directory
  bool force = false;   // --force: overwrite an existing file
  bool resume = false;  // --resume: continue OUTPUT.part; keep it if the transfer breaks
  double timeout_s = 30;  // per step: connect, and each read while bytes move
};
struct ListenArgs {
  std::optional<int> count;
  std::optional<double> timeout_s;
  bool events = false;                // --events: receipts, typing, presence too
  std::vector<std::string> presence;  // --presence: whom to watch (default: direct-chat peers)
};
struct HistoryArgs {
  std::string user;
  int64_t chat_id = 0;
  int limit = 50;
  std::optional<int64_t> before_seq;
  double timeout_s = 10;
};
struct ChatsArgs {
  int limit = 100;
  double timeout_s = 10;
};
// parley group ACTION ...: one of create, rename, add, remove, promote, demote, leave, transfer,
// delete, settings, info (docs/PROTOCOL.md §3.9).
struct GroupArgs {
  std::string action;
  int64_t chat_id = 0;             // every action but create
  std::string name;                // create, rename
  std::vector<std::string> users;  // create: --members; add: 1+; remove/promote/...: 1
  std::string full_history;        // settings: "on" or "off"
  double timeout_s = 10;
};

// parley read CHAT_OR_USER [--seq N] (docs/PROTOCOL.md §3.11).
struct ReadArgs {
  std::string chat_or_user;
  std::optional<int64_t> seq;
  double timeout_s = 10;
};
// parley typing CHAT_OR_USER [start|stop] (§3.12).
struct TypingArgs {
  std::string chat_or_user;
  std::string state = "start";
  double timeout_s = 10;
};
// parley presence USER... [--follow] (§3.13).
struct PresenceArgs {
  std::vector<std::string> users;
  bool follow = false;
  std::optional<double> timeout_s;  // the answer (default 10 s); with --follow: how long
};
// parley settings [--presence everyone|contacts|nobody] (§3.14).
struct SettingsArgs {
  std::string presence;  // empty: just print the settings
  double timeout_s = 10;
};

// CHAT_OR_USER: all digits is a chat id (> 0), anything else a user (its direct chat).
// Throws UsageError.
Target ParseChatOrUser(const std::string& arg);

int RunRegister(const Globals& g, const std::string& user);
int RunLogin(const Globals& g, const LoginArgs& args);
int RunLogout(const Globals& g);
int RunSend(const Globals& g, const SendArgs& args);
int RunListen(const Globals& g, const ListenArgs& args);
int RunHistory(const Globals& g, const HistoryArgs& args);
int RunChats(const Globals& g, const ChatsArgs& args);
int RunGroup(const Globals& g, const GroupArgs& args);
int RunRead(const Globals& g, const ReadArgs& args);
int RunTyping(const Globals& g, const TypingArgs& args);
int RunPresence(const Globals& g, const PresenceArgs& args);
int RunSettings(const Globals& g, const SettingsArgs& args);
int RunDownload(const Globals& g, const DownloadArgs& args);
int RunAccountDelete(const Globals& g);

}  // namespace parley::cli
