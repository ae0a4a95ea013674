#include "parley/chat_sequencer.h"

#include <utility>

namespace parley {

int64_t ChatSequencer::seq(int64_t chat_id) const {
  auto it = chats_.find(chat_id);
  return it == chats_.end() ? 0 : it->second.seq;
}

void ChatSequencer::Track(int64_t chat_id, int64_t seq) {
  auto [it, added] = chats_.try_emplace(chat_id);
  Chat& chat = it->second;
  if (added) {
    chat.seq = seq;
  } else if (seq > chat.seq) {
    chat.due = true;  // the server has more than we applied
  }
}

std::vector<Message> ChatSequencer::OnMessage(const Message& m) {
  std::vector<Message> out;
  if (m.chat_id <= 0 || m.seq <= 0) return out;
  auto [it, added] = chats_.try_emplace(m.chat_id);
  Chat& chat = it->second;
  if (added) chat.seq = m.seq - 1;  // nothing known before it: start here
  if (m.seq <= chat.seq) return out;
  if (m.seq == chat.seq + 1) {
    Apply(chat, m, out);
    Drain(chat, out);
    return out;
  }
  if (chat.held.size() < kMaxHeld) chat.held.try_emplace(m.seq, m);
  if (!chat.fetching) chat.due = true;  // else OnFetched() decides what is still missing
  return out;
}

void ChatSequencer::OnReconnect() {
  for (auto& [id, chat] : chats_) {
    chat.fetching = false;
    chat.due = true;
  }
}

std::vector<ChatSequencer::Fetch> ChatSequencer::TakeFetches() {
  std::vector<Fetch> out;
  for (auto& [id, chat] : chats_) {
    if (chat.due && !chat.fetching) {
      chat.due = false;
      chat.fetching = true;
      out.push_back(Fetch{id, chat.seq});
    }
  }
  return out;
}

std::vector<Message> ChatSequencer::OnFetched(int64_t chat_id, const HistoryPage& page) {
  std::vector<Message> out;
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return out;
  Chat& chat = it->second;
  chat.fetching = false;
  int64_t before = chat.seq;
  // The page is what exists for us after chat.seq, oldest first: a member reads from its
  // join, so the first message may lie beyond seq + 1.
  for (const Message& m : page.messages) {
    if (m.seq > chat.seq) {
      Apply(chat, m, out);
      Drain(chat, out);
    }
  }
  Drain(chat, out);
  // Go on while the server has more, or pushes arrived beyond what the page covered; a page
  // that brought nothing new ends the round (the next push or reconnect starts another).
  if (chat.seq != before && (page.has_more || !chat.held.empty())) chat.due = true;
  return out;
}

void ChatSequencer::OnFetchFailed(int64_t chat_id) {
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return;
  it->second.fetching = false;
  it->second.due = true;
}

void ChatSequencer::Apply(Chat& chat, const Message& m, std::vector<Message>& out) {
  chat.seq = m.seq;
  out.push_back(m);
}

void ChatSequencer::Drain(Chat& chat, std::vector<Message>& out) {
  while (!chat.held.empty()) {
    auto it = chat.held.begin();
    if (it->first <= chat.seq) {
      chat.held.erase(it);
    } else if (it->first == chat.seq + 1) {
      Message m = std::move(it->second);
      chat.held.erase(it);
      Apply(chat, m, out);
    } else {
      break;
    }
  }
}

}  // namespace parley
