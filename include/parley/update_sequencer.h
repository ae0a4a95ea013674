// UpdateSequencer: the client side of PROTOCOL.md §3.4-3.5, without sockets.
//
// It keeps the local cursor (`pts` of the last applied update) and decides, for every update
// that arrives (push, sync page, own send ack), whether to apply it now, drop it as already
// seen, or hold it until a sync fills the gap before it. The caller sends `sync` when
// NeedsSync() says so and feeds the answer back; every returned update is applied in pts order
// exactly once, and the cursor only moves over applied updates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "parley/types.h"

namespace parley {

class UpdateSequencer {
 public:
  // Updates held beyond a gap; more are dropped (a sync fetches them again).
  static constexpr size_t kMaxPending = 10000;

  // cursor: the persisted local pts, nullopt for a device that never synced (snapshot first).
  explicit UpdateSequencer(std::optional<int64_t> cursor = std::nullopt);

  std::optional<int64_t> cursor() const { return cursor_; }
  // Highest pts known to exist on the server (from pushes, acks, auth, sync answers).
  int64_t known_pts() const { return known_pts_; }
  bool sync_in_flight() const { return in_flight_; }
  size_t pending() const { return pending_.size(); }

  // After `auth`: the server's committed position. If the local cursor is ahead of it, the
  // server's log is not the one the cursor came from: the cursor is dropped (snapshot next).
  // Returns true when that happened.
  bool OnAuth(int64_t server_pts);

  // A pushed update (or one synthesized from this connection's own send ack). Returns the
  // updates now applicable, in pts order: empty when it is a duplicate or lies beyond a gap.
  std::vector<Update> OnPush(Update update);

  // A position the server reported without the update itself (a send ack whose message we
  // cannot rebuild, a chats result): a sync is needed if it is beyond the cursor.
  void NotePts(int64_t pts);

  // Whether the caller should send `sync` now: no sync in flight, and the cursor is unknown,
  // behind a known position, or the last page said has_more.
  bool NeedsSync() const;

  // Marks a sync as sent; returns the `pts` to send (nullopt: ask for a snapshot).
  std::optional<int64_t> BeginSync();

  // Feeds the answer of the sync started by BeginSync(). Returns the updates applied, in order.
  // A snapshot moves the cursor to its pts (the caller shows result.chats); updates carrying a
  // message that the snapshot already showed (same chat, seq <= the snapshot's last) come back
  // without their message, so they advance the cursor but are not shown twice.
  std::vector<Update> OnSyncResult(const SyncResult& result);

  // The sync failed or its connection closed: it may be sent again.
  void OnSyncAborted() { in_flight_ = false; }

 private:
  void Hold(Update update);
  void Apply(Update update, std::vector<Update>& out);
  void Drain(std::vector<Update>& out);

  std::optional<int64_t> cursor_;
  int64_t known_pts_ = 0;
  bool in_flight_ = false;
  bool more_ = false;
  std::map<int64_t, Update> pending_;                  // pts > cursor + 1
  std::unordered_map<int64_t, int64_t> snapshot_seq_;  // chat_id -> last seq shown by a snapshot
};

}  // namespace parley
