// parley listen [--count N] [--timeout SECONDS] [--events [--presence USER,...]]
//
// Prints the user's messages in pts order, each exactly once: first what happened since the
// profile's saved cursor (saved by `login`), then live ones. A profile without a cursor (or
// with one the server no longer holds) gets the snapshot's messages instead, and a note on
// stderr of how many older messages each chat has and the `parley history` that shows them. The
// cursor is saved after each printed message; once a message is left unprinted (the count is
// reached, or we are stopping) the cursor is no longer moved, so the next listen shows it.
// With --events, receipts (update-log entries, under the same cursor rule), typing and
// presence changes are printed too.
#include <condition_variable>
#include <csignal>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <vector>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/client.h"
#include "parley/cursor_file.h"

namespace parley::cli {
namespace {

volatile std::sig_atomic_t g_signal = 0;

void OnSignal(int sig) { g_signal = sig; }

class Listener {
 public:
  Listener(const Globals& g, const ListenArgs& args, std::string cursor_path)
      : json_(g.json),
        verbose_(g.verbose),
        events_(args.events),
        count_(args.count),
        cursor_path_(std::move(cursor_path)) {}

  void Hook(ClientOptions& o) {
    o.on_message = [this](const Message& m, int64_t pts) {
      Print(m, pts > 0 ? std::optional<int64_t>(pts) : std::nullopt, false);  // 0: large group
    };
    if (events_) {
      o.on_receipt = [this](const Receipt& r, int64_t pts) {
        std::optional<int64_t> in_log = pts > 0 ? std::optional<int64_t>(pts) : std::nullopt;
        // A receipt of the update log left unprinted freezes the cursor like a message.
        Emit({json_ ? JsonReceipt(r, in_log) : HumanReceipt(r)}, in_log.has_value());
      };
      o.on_typing = [this](const TypingEvent& t) {
        Emit({json_ ? JsonTyping(t) : HumanTyping(t)}, false);
      };
      o.on_presence = [this](const std::vector<PresenceStatus>& p) { PrintPresence(p); };
    }
    o.on_snapshot = [this](const SyncResult& r) {
      // A snapshot shows each chat's latest messages only (a profile with no cursor, or one
      // the server no longer has): say what is older and how to see it.
      for (const SnapshotChat& chat : r.chats) {
        if (chat.older <= 0 || chat.messages.empty()) continue;
        const std::string target = chat.kind == "direct" && !chat.peer.empty()
                                       ? chat.peer
                                       : "--chat " + std::to_string(chat.chat_id);
        std::cerr << "parley: chat " << chat.chat_id << " has " << chat.older << " older message"
                  << (chat.older == 1 ? "" : "s") << "; see them with: parley history " << target
                  << " --before " << chat.messages.front().seq << "\n";
      }
      if (!r.unavailable.empty()) std::cerr << "parley: " << Unavailable(r.unavailable) << "\n";
      // Chats come most recently active first; print the least recent first, so the newest
      // ends up at the bottom. Within a chat: oldest first.
      for (auto chat = r.chats.rbegin(); chat != r.chats.rend(); ++chat) {
        for (const Message& m : chat->messages) {
          if (!Print(m, std::nullopt, true)) return;
        }
      }
    };
    o.on_cursor = [this](int64_t pts) { SaveCursor(pts); };
    o.on_state = [this](const ConnectionEvent& e) { OnState(e); };
    o.on_error = [this](const Error& e) {
      if (verbose_) std::cerr << "parley: warning: " << e.what() << "\n";
    };
  }

  // Blocks until the count is reached, the timeout passes, a signal arrives or the client
  // closes for good; calls `poll` (without the lock) every 100 ms or so. Returns false on
  // timeout.
  bool Wait(std::optional<std::chrono::milliseconds> timeout, const std::function<void()>& poll) {
    auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                            : std::chrono::steady_clock::time_point::max();
    std::unique_lock lock(mu_);
    bool timed_out = false;
    while (!done_ && !g_signal) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        timed_out = true;
        break;
      }
      cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(
                             std::chrono::milliseconds(100), deadline - now));
      if (poll) {
        lock.unlock();
        poll();
        lock.lock();
      }
    }
    stopping_ = true;  // from here on nothing more is printed
    return !timed_out;
  }

  // One event: a line per user (human), or the push object (JSON).
  void PrintPresence(const std::vector<PresenceStatus>& presence) {
    std::vector<std::string> lines;
    if (json_) {
      lines.push_back(JsonPresence(presence));
    } else {
      for (const PresenceStatus& p : presence) lines.push_back(HumanPresence(p));
    }
    Emit(lines, false);
  }

  int printed() {
    std::lock_guard lock(mu_);
    return printed_;
  }
  std::optional<Error> fatal() {
    std::lock_guard lock(mu_);
    return fatal_;
  }
  // Why the server was never reached, if it never was.
  std::optional<Error> never_online() {
    std::lock_guard lock(mu_);
    if (online_once_) return std::nullopt;
    return last_error_ ? last_error_ : Error(errc::kTimeout, "not connected to the server in time");
  }

 private:
  // Returns false (and freezes the cursor) when the message is not printed.
  bool Print(const Message& m, std::optional<int64_t> pts, bool snapshot) {
    return Emit({json_ ? JsonLine(m, pts, snapshot) : HumanLine(m)}, true);
  }

  // Prints one message or event (--count counts it once). Returns false when it is not
  // printed; then, if it is part of the update log, the cursor is frozen before it.
  bool Emit(const std::vector<std::string>& lines, bool in_log) {
    std::lock_guard lock(mu_);
    if (stopping_ || (count_ && printed_ >= *count_)) {
      if (in_log) frozen_ = true;
      return false;
    }
    for (const std::string& line : lines) PrintLine(line);
    ++printed_;
    if (count_ && printed_ >= *count_) {
      done_ = true;
      cv_.notify_all();
    }
    return true;
  }

  // The cursor of the update just delivered: it is saved even after the decision to stop
  // (the update's message was printed), but never past a message that was not printed.
  void SaveCursor(int64_t pts) {
    std::lock_guard lock(mu_);
    if (frozen_) return;
    try {
      SaveCursorFile(cursor_path_, pts);
    } catch (const Error& e) {
      std::cerr << "parley: warning: cannot save the cursor: " << e.what() << "\n";
    }
  }

  void OnState(const ConnectionEvent& e) {
    {
      std::lock_guard lock(mu_);
      if (e.state == ConnectionState::kOnline) online_once_ = true;
      if (e.state == ConnectionState::kWaiting && !e.code.empty()) {
        last_error_ = Error(e.code, e.message);
      }
    }
    if (e.state == ConnectionState::kWaiting) {
      std::cerr << "parley: " << (e.message.empty() ? "disconnected" : e.message)
                << "; reconnecting in " << e.retry_in.count() << " ms\n";
    } else if (verbose_ && e.state == ConnectionState::kOnline && e.auth) {
      std::cerr << "parley: online as " << e.auth->user << " (server pts " << e.auth->pts << ")\n";
    }
    if (e.state == ConnectionState::kClosed && !e.code.empty()) {
      std::lock_guard lock(mu_);
      fatal_ = Error(e.code, e.message);
      done_ = true;
      cv_.notify_all();
    }
  }

  const bool json_;
  const bool verbose_;
  const bool events_;
  const std::optional<int> count_;
  const std::string cursor_path_;
  std::mutex mu_;
  std::condition_variable cv_;
  int printed_ = 0;
  bool done_ = false;
  bool stopping_ = false;
  bool frozen_ = false;
  std::optional<Error> fatal_;
  bool online_once_ = false;
  std::optional<Error> last_error_;
};

// listen --events: subscribes to presence once online, of args.presence or else of the peers
// of the user's direct chats; polled from the waiting thread (futures may not be waited for
// in callbacks).
class PresenceWatch {
 public:
  PresenceWatch(Client& client, Listener& listener, const ListenArgs& args, bool verbose)
      : client_(client), listener_(listener), verbose_(verbose) {
    if (!args.presence.empty()) {
      subscribe_ = client_.PresenceSubscribe(args.presence);
    } else {
      chats_ = client_.Chats(100);
    }
  }

  void Poll() {
    if (chats_ && Ready(*chats_)) {
      std::vector<std::string> peers;
      try {
        for (const ChatSummary& c : chats_->get().chats) {
          if (c.kind == "direct" && !c.peer.empty()) peers.push_back(c.peer);
        }
      } catch (const Error& e) {
        Warn(e);
      }
      chats_.reset();
      if (!peers.empty()) subscribe_ = client_.PresenceSubscribe(std::move(peers));
    }
    if (subscribe_ && Ready(*subscribe_)) {
      try {
        std::vector<PresenceStatus> now = subscribe_->get();
        if (!now.empty()) listener_.PrintPresence(now);
      } catch (const Error& e) {
        Warn(e);
      }
      subscribe_.reset();
    }
  }

 private:
  template <class T>
  static bool Ready(std::future<T>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  void Warn(const Error& e) {
    if (verbose_) std::cerr << "parley: warning: presence: " << e.what() << "\n";
  }

  Client& client_;
  Listener& listener_;
  const bool verbose_;
  std::optional<std::future<ChatList>> chats_;
  std::optional<std::future<std::vector<PresenceStatus>>> subscribe_;
};

}  // namespace

int RunListen(const Globals& g, const ListenArgs& args) {
  if (args.count && *args.count < 1) throw UsageError("--count must be at least 1");
  if (!args.events && !args.presence.empty()) throw UsageError("--presence needs --events");
  for (const std::string& user : args.presence) {
    if (user.empty()) throw UsageError("--presence: empty user");
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (args.timeout_s) timeout = Seconds(*args.timeout_s, "--timeout");
  Profile profile = RequireLogin(g);
  std::string cursor_path = CursorPath(profile.name);

  Listener listener(g, args, cursor_path);
  ClientOptions o;
  o.server_url = profile.server;
  o.token = profile.token;
  o.cursor = LoadCursorFile(cursor_path);  // nullopt: snapshot first
  listener.Hook(o);

  g_signal = 0;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  Client client(std::move(o));
  client.Start();
  std::optional<PresenceWatch> watch;
  if (args.events) watch.emplace(client, listener, args, g.verbose);
  bool in_time = listener.Wait(timeout, [&] {
    if (watch) watch->Poll();
  });
  client.Stop();  // no callbacks after this returns
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);

  if (auto fatal = listener.fatal()) throw *fatal;
  if (g_signal) return kExitInterrupted;
  if (auto error = listener.never_online()) throw *error;  // a timeout that never connected
  if (!in_time && args.count && listener.printed() < *args.count) return kExitIncomplete;
  return kExitOk;
}

}  // namespace parley::cli
