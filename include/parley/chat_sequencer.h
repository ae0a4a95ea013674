// ChatSequencer: per-chat ordering for large groups (PROTOCOL.md §3.4 "Large groups"),
// without sockets.
//
// Messages of a large group are not in the update log and are pushed without pts. For each
// such chat the client keeps the last seq it has: seq == local + 1 is applied, seq <= local
// ignored, and a gap (or a reconnect) is filled with `history` + `after_seq` until has_more is
// false. This class decides which; the caller sends the history requests it asks for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "parley/types.h"

namespace parley {

class ChatSequencer {
 public:
  // Messages held beyond a gap, per chat; more are dropped (the fetch gets them again).
  static constexpr size_t kMaxHeld = 1000;

  struct Fetch {
    int64_t chat_id = 0;
    int64_t after_seq = 0;
  };

  // Starts tracking a large chat whose messages up to `seq` are known (from `chats`, or the
  // event that made the group large). Moves an older position forward; a newer one stays.
  // For a chat tracked already, a higher seq means messages are missing: a fetch is due.
  void Track(int64_t chat_id, int64_t seq);
  bool tracking(int64_t chat_id) const { return chats_.count(chat_id) > 0; }
  // The last applied seq of a tracked chat (0 when not tracked).
  int64_t seq(int64_t chat_id) const;

  // A message without pts (or this client's own send to a large group). Returns the messages
  // now applicable, in seq order. The first message of an untracked chat starts its tracking.
  std::vector<Message> OnMessage(const Message& m);

  // After a reconnect every tracked chat may have missed messages: fetch them all.
  void OnReconnect();

  // The fetches to send now (marked in flight; at most one per chat).
  std::vector<Fetch> TakeFetches();
  // The answer to a fetch: applies the page in order; another fetch is due if has_more or a
  // gap remains.
  std::vector<Message> OnFetched(int64_t chat_id, const HistoryPage& page);
  // The fetch failed or its connection closed: due again.
  void OnFetchFailed(int64_t chat_id);
  // A chat that is gone for us (left, removed, deleted): stop tracking it.
  void Forget(int64_t chat_id) { chats_.erase(chat_id); }

 private:
  struct Chat {
    int64_t seq = 0;
    bool due = false;                 // a fetch should be sent
    bool fetching = false;            // a fetch is in flight
    std::map<int64_t, Message> held;  // seq > seq + 1
  };
  void Apply(Chat& chat, const Message& m, std::vector<Message>& out);
  void Drain(Chat& chat, std::vector<Message>& out);

  std::map<int64_t, Chat> chats_;
};

}  // namespace parley
