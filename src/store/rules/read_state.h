// Read-state rules (docs/PROTOCOL.md §3.7, §3.11): which seqs a member may read, how read
// and delivered positions move, unread counts, and whose update logs get a receipt. Pure:
// a backend feeds them its rows and writes what they return.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "store/types.h"

namespace parley::store::rules {

// The seqs of a chat a user may read: [first, last]; member is false once it left or was
// removed (it still reads up to its removal, and nothing after it).
struct Visible {
  uint64_t first = 1, last = 0;
  bool member = true;
};

// A direct chat's members read all of it.
Visible direct_visible(uint64_t last_seq);
// A group member reads from its join (from 1 if the group opens history to new members)
// up to its removal.
Visible group_visible(uint64_t last_seq, bool full_history, const Member& m);

// A user's own positions in a chat. Both only move forward; read implies delivered.
struct ReadPositions {
  uint64_t read_seq = 0;
  uint64_t delivered_seq = 0;
};

// Messages after read_seq up to `last` (the last seq the user may read); 0 once it is no
// longer a member (such a chat waits for nobody and counts in no badge).
uint64_t unread_count(bool member, uint64_t last, uint64_t read_seq);

// A user (re)joins a chat at `seq`: what came before counts as read, the rest is unread.
ReadPositions joined_at(ReadPositions now, uint64_t seq);
// The user's own message at `seq`: it has read and received everything up to it (silently:
// no receipt goes out). nullopt: nothing changes.
std::optional<ReadPositions> after_own_message(ReadPositions now, uint64_t seq);

// mark: the position of `kind` moves to the asked seq (unset: all the user may read),
// capped at what it may read, if that is further than it stands.
struct ReceiptDecision {
  bool advanced = false;    // false: nothing is stored, no receipt goes out
  uint64_t seq = 0;         // the position of `kind` afterwards
  ReadPositions positions;  // the row afterwards
  uint64_t unread = 0;      // afterwards
};
ReceiptDecision decide_receipt(UpdateKind kind, std::optional<uint64_t> asked,
                               const Visible& visible, ReadPositions now);

// Whose logs an advanced receipt reaches (§3.11).
struct ReceiptAudience {
  bool own_log = false;        // read: the user's own log, so that its other devices converge
  bool other_members = false;  // direct chats and small groups: every other active member
  bool broadcast = false;      // large groups: the chat's subscribers, no per-user log
};
// `member`: the user is still an active member (a former member's receipt reaches only its
// own devices).
ReceiptAudience receipt_audience(UpdateKind kind, bool advanced, bool member, ChatKind chat,
                                 bool large);
// The logs to write, in order: the user's own first, then `members` (the chat's active
// members; read only when audience.other_members) without the user.
std::vector<UserId> receipt_recipients(const ReceiptAudience& audience, const UserId& user,
                                       const std::vector<UserId>& members);

}  // namespace parley::store::rules
