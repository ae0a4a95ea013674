#include "store/rules/messages.h"

#include <algorithm>

namespace parley::store::rules {

Status check_direct_send(const UserId& sender, const UserId& to_user) {
  if (to_user == sender) return Error{Errc::bad_request, "cannot send to yourself"};
  return ok_status();
}

bool fan_out_on_read(ChatKind kind, bool large) { return kind == ChatKind::group && large; }

uint64_t sender_pts(const std::vector<Delivery>& deliveries, const UserId& sender) {
  uint64_t pts = 0;
  for (const auto& d : deliveries)
    if (d.user == sender) pts = d.pts;
  return pts;
}

AppendResult duplicate_append(Message original, uint64_t original_sender_pts) {
  AppendResult r;
  r.message = std::move(original);
  r.sender_pts = original_sender_pts;
  r.duplicate = true;
  return r;
}

uint64_t window_start(const Visible& vis, uint32_t messages_per_chat, ChatWindow& w) {
  uint64_t first = vis.last >= messages_per_chat ? vis.last - messages_per_chat + 1 : 1;
  first = std::max(first, vis.first);
  w.has_more = first > vis.first;
  w.older = first - vis.first;
  return first;
}

void count_unread(ChatList& list) {
  list.unread_total = 0;
  list.unread_chats = 0;
  for (const auto& c : list.chats) {
    list.unread_total += c.unread;
    if (c.unread > 0) ++list.unread_chats;
  }
}

void page_chat_list(ChatList& list, const ChatListCursor& after, uint32_t limit) {
  auto newer = [](const ChatSummary& a, const ChatSummary& b) {
    return a.last_ts != b.last_ts ? a.last_ts > b.last_ts : a.chat_id > b.chat_id;
  };
  std::sort(list.chats.begin(), list.chats.end(), newer);
  if (!after.from_start()) {
    ChatSummary at;
    at.last_ts = after.last_ts;
    at.chat_id = after.chat_id;
    list.chats.erase(list.chats.begin(),
                     std::upper_bound(list.chats.begin(), list.chats.end(), at, newer));
  }
  if (list.chats.size() > limit) {
    list.chats.resize(limit);
    list.has_more = true;
  }
}

}  // namespace parley::store::rules
