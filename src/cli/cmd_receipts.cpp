// parley read | typing | presence | settings (docs/PROTOCOL.md §3.11-3.14).
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/wire.h"

namespace parley::cli {
namespace {

volatile std::sig_atomic_t g_signal = 0;

void OnSignal(int sig) { g_signal = sig; }

}  // namespace

Target ParseChatOrUser(const std::string& arg) {
  if (arg.empty()) throw UsageError("CHAT_OR_USER is empty");
  bool digits = std::all_of(arg.begin(), arg.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) return Target::User(arg);
  // A chat id: 1 <= id < 2^53 (PROTOCOL.md §1).
  if (arg.size() > 16 || std::stoll(arg) <= 0 || std::stoll(arg) >= (int64_t{1} << 53)) {
    throw UsageError("CHAT_OR_USER: a chat id must be between 1 and 2^53-1");
  }
  return Target::Chat(std::stoll(arg));
}

// parley read CHAT_OR_USER [--seq N]
int RunRead(const Globals& g, const ReadArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Target chat = ParseChatOrUser(args.chat_or_user);
  if (args.seq && *args.seq < 1) throw UsageError("--seq must be at least 1");
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  MarkResult r = session.Wait(session.client().MarkRead(chat, args.seq));
  if (g.json) {
    PrintLine(boost::json::serialize(wire::ToJson(r)));
  } else {
    // read chat 12 up to #5: 0 unread
    PrintLine("read chat " + std::to_string(r.chat_id) + " up to #" + std::to_string(r.seq) + ": " +
              std::to_string(r.unread) + " unread" +
              (r.advanced ? "" : " (unchanged: already read that far)"));
  }
  return kExitOk;
}

// parley typing CHAT_OR_USER [start|stop]
int RunTyping(const Globals& g, const TypingArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Target chat = ParseChatOrUser(args.chat_or_user);
  if (args.state != "start" && args.state != "stop") throw UsageError("STATE is start or stop");
  TypingState state = args.state == "stop" ? TypingState::kStop : TypingState::kStart;
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  bool forwarded = session.Wait(session.client().Typing(chat, state));
  if (g.json) {
    PrintLine(boost::json::serialize(boost::json::object{{"forwarded", forwarded}}));
  } else {
    PrintLine(std::string("typing ") + ToString(state) +
              (forwarded ? ": forwarded" : ": not forwarded (repeated too soon)"));
  }
  return kExitOk;
}

// parley presence USER... [--follow] [--timeout SECONDS]
int RunPresence(const Globals& g, const PresenceArgs& args) {
  if (args.users.empty()) throw UsageError("presence USER...");
  for (const std::string& u : args.users) {
    if (u.empty()) throw UsageError("presence: empty user");
  }
  std::optional<std::chrono::milliseconds> follow_for;
  if (args.timeout_s) follow_for = Seconds(*args.timeout_s, "--timeout");
  auto request_timeout =
      args.follow || !follow_for ? std::chrono::milliseconds(10000) : *follow_for;
  Profile profile = RequireLogin(g);

  // Pushes (and the state after a reconnect) while following; printed by the waiting thread.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<PresenceStatus>> pushed;
  std::optional<Error> fatal;
  // Human: a line per user. JSON: the subscribe result ({"presence":[...]}), then with
  // --follow each push as the push object ({"type":"presence","presence":[...]}).
  auto print = [&](const std::vector<PresenceStatus>& presence, bool push) {
    if (!g.json) {
      for (const PresenceStatus& p : presence) PrintLine(HumanPresence(p));
    } else if (push) {
      PrintLine(JsonPresence(presence));
    } else {
      boost::json::array list;
      for (const PresenceStatus& p : presence) list.push_back(wire::ToJson(p));
      PrintLine(boost::json::serialize(boost::json::object{{"presence", std::move(list)}}));
    }
  };
  auto customize = [&](ClientOptions& o) {
    if (!args.follow) return;
    o.on_presence = [&](const std::vector<PresenceStatus>& presence) {
      std::lock_guard lock(mu);
      pushed.push_back(presence);
      cv.notify_all();
    };
    auto on_state = o.on_state;
    o.on_state = [&, on_state](const ConnectionEvent& e) {
      if (on_state) on_state(e);
      if (e.state == ConnectionState::kWaiting && args.follow) {
        std::cerr << "parley: " << (e.message.empty() ? "disconnected" : e.message)
                  << "; reconnecting in " << e.retry_in.count() << " ms\n";
      }
      if (e.state == ConnectionState::kClosed && !e.code.empty()) {
        std::lock_guard lock(mu);
        fatal = Error(e.code, e.message);
        cv.notify_all();
      }
    };
  };
  OneShot session(g, profile, request_timeout, customize);
  std::vector<PresenceStatus> now = session.Wait(session.client().PresenceSubscribe(args.users));
  print(now, false);
  if (!args.follow) return kExitOk;

  g_signal = 0;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto deadline = follow_for ? std::chrono::steady_clock::now() + *follow_for
                             : std::chrono::steady_clock::time_point::max();
  std::unique_lock lock(mu);
  while (!g_signal && !fatal && std::chrono::steady_clock::now() < deadline) {
    cv.wait_for(lock, std::chrono::milliseconds(100));
    for (const auto& presence : pushed) print(presence, true);
    pushed.clear();
  }
  lock.unlock();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (fatal) throw *fatal;
  return g_signal ? kExitInterrupted : kExitOk;
}

// parley settings [--presence everyone|contacts|nobody]
int RunSettings(const Globals& g, const SettingsArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  if (!args.presence.empty() && args.presence != "everyone" && args.presence != "contacts" &&
      args.presence != "nobody") {
    throw UsageError("--presence must be everyone, contacts or nobody");
  }
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  std::optional<std::string> presence;
  if (!args.presence.empty()) presence = args.presence;
  UserSettings s = session.Wait(session.client().Settings(presence));
  if (g.json) {
    PrintLine(boost::json::serialize(wire::ToJson(s)));
  } else {
    PrintLine("presence: " + (s.presence.empty() ? std::string("unknown") : s.presence));
  }
  return kExitOk;
}

}  // namespace parley::cli
