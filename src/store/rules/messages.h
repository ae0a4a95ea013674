// Message rules: who may send where, whose logs a message reaches, and what a retried send
// returns (G3). Pure: the backend looks the rows up and writes what these decide.
#pragma once

#include <cstdint>
#include <vector>

#include "common/errc.h"
#include "store/rules/read_state.h"
#include "store/types.h"

namespace parley::store::rules {

// A direct send to `to_user` (bad_request: to oneself).
Status check_direct_send(const UserId& sender, const UserId& to_user);

// Whose logs get a new message: fan-out on write to every member in direct chats and small
// groups; fan-out on read in large groups (one write whatever the size, delivered to the
// chat's subscribers).
bool fan_out_on_read(ChatKind kind, bool large);

// The sender's pts for a message: its own entry among `deliveries`, 0 if it has none.
uint64_t sender_pts(const std::vector<Delivery>& deliveries, const UserId& sender);

// A retry of a committed append (same sender and client_msg_id): the first message and the
// sender's pts again, flagged duplicate; no deliveries, since no log got anything new.
AppendResult duplicate_append(Message original, uint64_t original_sender_pts);

// The login snapshot's window of a chat: the newest `messages_per_chat` of what the user may
// read (`vis`). Returns the first seq of the window and sets w.has_more and w.older.
uint64_t window_start(const Visible& vis, uint32_t messages_per_chat, ChatWindow& w);

// Sums the unread counts of every chat in the list (unread_total, unread_chats).
void count_unread(ChatList& list);

// One page of the chat list from every chat of the user (with unread counts already summed):
// newest activity first (ties: higher chat_id first), only chats after `after`, at most
// `limit` (has_more when there were more).
void page_chat_list(ChatList& list, const ChatListCursor& after, uint32_t limit);

}  // namespace parley::store::rules
