// This node's presence subscriptions (docs/PROTOCOL.md §3.13): which connection watches
// which users, what each may see, and the batched `presence` pushes.
//
// Per (connection, user) the hub keeps the cached visibility and what the connection last
// got (the subscribe answer or the last push). A change marks the subscription; flush()
// (every HubOptions::batch) sends each connection one frame with, per marked user, the
// state it should now see, if that differs from what it last got. So several changes
// in a window collapse into the latest, and a flap back to the last sent state sends
// nothing. Every structure is bounded by the number of subscriptions.
//
// Thread-safe. Transports, hooks and Presence are never called with the lock held. Their
// callbacks (the hooks', Presence::status's) must run before the hub is destroyed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/errc.h"
#include "net/transport.h"
#include "presence/presence.h"

namespace parley::presence {

struct HubOptions {
  std::chrono::milliseconds batch{1000};
  uint32_t max_subscriptions = 500;  // per connection
};

struct HubHooks {
  // May `watcher` see `target`'s presence? Async (store lookups); cb may run on any thread.
  // Unset: everyone sees everyone.
  std::function<void(const std::string& watcher, const std::string& target,
                     std::function<void(bool)> cb)>
      visible;
  // Durable last_seen for users this node does not know (0 = never); async. Unset: 0.
  std::function<void(const std::string& user, std::function<void(int64_t)> cb)> last_seen;
};

// The wire form of statuses, a JSON array: [{"user":"bob","online":true},
// {"user":"carol","online":false,"last_seen":1732771100000},{"user":"dave","hidden":true}].
// An offline user's last_seen is left out when unknown (0).
boost::json::array statuses_array(const std::vector<Status>& statuses);
std::string statuses_json(const std::vector<Status>& statuses);
// The push: {"type":"presence","presence":[...]}.
std::string presence_push(const std::vector<Status>& statuses);

class PresenceHub {
 public:
  PresenceHub(Presence& presence, HubOptions opts, HubHooks hooks,
              boost::asio::any_io_executor timer_executor);
  ~PresenceHub();
  PresenceHub(const PresenceHub&) = delete;
  PresenceHub& operator=(const PresenceHub&) = delete;

  void start();  // the batch timer: flush() every opts.batch
  void stop();

  // Adds subscriptions for a connection; answers with the current visible status of each
  // asked user, in order. too_large (nothing changed) if the connection's total would
  // exceed max_subscriptions. Watcher == target is always visible.
  void subscribe(std::shared_ptr<net::Transport> conn, const std::string& watcher,
                 std::vector<std::string> users,
                 std::function<void(Result<std::vector<Status>>)> done);
  void unsubscribe(uint64_t conn_id, const std::vector<std::string>& users);  // empty = all
  void remove_connection(uint64_t conn_id);

  // A transition of a user (PresenceReporter's sink, and presence envelopes from other
  // nodes). With a version (Transition::version), one not newer than the last applied for
  // that user is stale and ignored; 0 = unknown, applied as it comes.
  void on_change(const Status& s, uint64_t version = 0);
  // A user changed its visibility: re-check its watchers; those who lose sight get
  // {hidden:true}, those who gain get the current status (through the next batch).
  void visibility_changed(const std::string& user);
  // Who shares a chat with `user` changed (it joined or left a group, or a first direct
  // message): re-check both who watches it and whom its connections watch.
  void relations_changed(const std::vector<std::string>& users);

  void flush();  // sends pending batches now (the timer calls it; tests call it directly)
  size_t subscription_count() const;

 private:
  // What a connection sees of a user.
  struct View {
    bool hidden = true;
    bool online = false;
    int64_t last_seen = 0;  // offline only
    bool operator==(const View&) const = default;
  };
  // One (connection, target) subscription.
  struct Watch {
    uint64_t serial = 0;   // this subscription (an unsubscribe + subscribe makes a new one)
    uint64_t gen = 0;      // the latest visibility check asked for it
    uint64_t applied = 0;  // the check whose answer `visible` holds; 0 = none yet
    bool visible = false;
    bool answered = false;  // the subscribe answer was built: `sent` is what the client has
    bool queued = false;    // listed in Conn::dirty
    View sent;
  };
  struct Conn {
    std::shared_ptr<net::Transport> transport;
    std::string watcher;
    std::unordered_map<std::string, Watch> watches;  // by target
    std::vector<std::string> dirty;                  // targets to look at in the next flush
    bool listed = false;                             // in dirty_conns_
  };
  struct Target {
    std::unordered_set<uint64_t> conns;  // watching connections (reverse index)
    std::optional<View> latest;          // last known presence; unset until first learned
    uint64_t version = 0;                // of the newest versioned transition applied
    bool resolving = false;              // a status lookup for `latest` is under way
  };
  struct Subscribe;  // one subscribe in flight

  static View view_of(const Status& s);
  static View want(const Watch& w, const Target& t);
  void mark(uint64_t conn_id, Conn& c, const std::string& target, Watch& w);
  void mark_watchers(const std::string& target, Target& t);
  Watch* find_watch(uint64_t conn_id, const std::string& target, uint64_t serial);
  void unlink(uint64_t conn_id, const std::string& target);
  // The current Views of `users`, in order: one Presence status call, then the last_seen
  // hook for each user Presence knows no last_seen for.
  void resolve(std::vector<std::string> users, std::function<void(std::vector<View>)> cb);
  void learned(const std::string& user, View v);
  void check_visibility(std::shared_ptr<Subscribe> sub);
  void resolve_statuses(std::shared_ptr<Subscribe> sub);
  void finish(std::shared_ptr<Subscribe> sub);
  void apply_visibility(const std::string& target, uint64_t conn_id, uint64_t serial, uint64_t gen,
                        bool visible);
  void arm();

  Presence& presence_;
  const HubOptions opts_;
  const HubHooks hooks_;

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Conn> conns_;
  std::unordered_map<std::string, Target> targets_;
  std::vector<uint64_t> dirty_conns_;
  uint64_t next_serial_ = 1;
  size_t subscriptions_ = 0;

  std::mutex timer_mu_;
  boost::asio::steady_timer timer_;
  bool stopped_ = true;
};

}  // namespace parley::presence
