// parley listen [--count N] [--timeout SECONDS]
//
// Prints the user's messages in pts order, each exactly once: first what happened since the
// profile's saved cursor (or, with no cursor, the snapshot's messages), then live ones. The
// cursor is saved after each printed message; once a message is left unprinted (the count is
// reached, or we are stopping) the cursor is no longer moved, so the next listen shows it.
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>

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
        count_(args.count),
        cursor_path_(std::move(cursor_path)) {}

  void Hook(ClientOptions& o) {
    o.on_message = [this](const Message& m, int64_t pts) {
      Print(m, pts > 0 ? std::optional<int64_t>(pts) : std::nullopt, false);  // 0: large group
    };
    o.on_snapshot = [this](const SyncResult& r) {
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
  // closes for good. Returns false on timeout.
  bool Wait(std::optional<std::chrono::milliseconds> timeout) {
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
    }
    stopping_ = true;  // from here on nothing more is printed
    return !timed_out;
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
    std::lock_guard lock(mu_);
    if (stopping_ || (count_ && printed_ >= *count_)) {
      frozen_ = true;
      return false;
    }
    PrintLine(json_ ? JsonLine(m, pts, snapshot) : HumanLine(m));
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

}  // namespace

int RunListen(const Globals& g, const ListenArgs& args) {
  if (args.count && *args.count < 1) throw UsageError("--count must be at least 1");
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
  bool in_time = listener.Wait(timeout);
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
