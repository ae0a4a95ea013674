// The update log: sync, delivery in pts order, own sends, the cursor.
#include <algorithm>
#include <tuple>
#include <utility>

#include <boost/json/parse.hpp>

#include "client_impl.h"
#include "parley/cursor_file.h"
#include "parley/wire.h"

namespace parley {
namespace {

namespace json = boost::json;
using namespace detail;  // Clock, milliseconds, Op, OpPtr, the k* constants

}  // namespace

// ---------------------------------------------------------------- updates

void Client::Impl::MaybeSync() {
  if (!opts_.receive_updates || !online_ || stopping_ || !seq_.NeedsSync()) return;
  if (Clock::now() < sync_not_before_) return;
  std::optional<int64_t> from = seq_.BeginSync();
  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kInternal;
  op->name = "sync";
  op->deadline = Clock::now() + opts_.request_timeout;
  op->encode = [from, limit = opts_.sync_page_limit](int64_t id) {
    return wire::EncodeSync(id, from, limit);
  };
  op->on_ok = [this](const json::value& v) { OnSyncResult(wire::DecodeSyncResult(v)); };
  op->on_error = [this](const Error& e) {
    sync_op_.reset();
    seq_.OnSyncAborted();
    sync_not_before_ = Clock::now() + (e.retryable() ? kSyncRetryDelay : kSyncErrorDelay);
    ReportError(Error(e.code(), "sync failed: " + e.message(), e.retryable()));
  };
  sync_op_ = op;
  ops_.push_back(op);
  Transmit(op);
}

void Client::Impl::OnSyncResult(const SyncResult& result) {
  sync_op_.reset();
  std::optional<int64_t> before = seq_.cursor();
  std::vector<Update> applied = seq_.OnSyncResult(result);
  if (result.snapshot) {
    for (const SnapshotChat& chat : result.chats) {
      chat_peer_[chat.chat_id] = chat.kind == "group" ? std::string() : chat.peer;
      for (const Message& m : chat.messages) NoteDelivered(m);
    }
    Notify(opts_.on_snapshot, result);
    SaveCursor(applied.empty() ? seq_.cursor().value_or(result.pts) : applied.front().pts - 1);
  }
  Deliver(applied);
  bool progressed = result.snapshot || seq_.cursor() != before;
  if (!progressed && seq_.NeedsSync()) {
    sync_not_before_ = Clock::now() + kSyncRetryDelay;  // the server had nothing new for us
  }
  MaybeSync();
}

// This connection's own send: it gets no push of it, so the message is rebuilt from the
// request and the ack and applied like one.
void Client::Impl::OnOwnAck(const SendAck& ack, const Target& to, const std::string& body,
                            bool media) {
  if (!opts_.receive_updates || !auth_) return;
  if (media) {
    // Only the server knows the descriptor (type, size, dimensions, thumbnail): fetch the
    // stored message instead of rebuilding it.
    if (ack.pts == 0) {  // a large group: its history from before our message
      if (!large_.tracking(ack.chat_id)) large_.Track(ack.chat_id, ack.seq - 1);
      large_.Track(ack.chat_id, ack.seq);  // the server has more than we applied: fetch due
      MaybeFetchLarge();
      return;
    }
    seq_.NotePts(ack.pts);  // the update log holds it: a sync brings it
    MaybeSync();
    return;
  }
  bool known = !to.is_chat();  // to a user: a direct chat with them
  std::string peer = to.user;  // "" in a group
  if (to.is_chat()) {
    auto it = chat_peer_.find(ack.chat_id);
    known = it != chat_peer_.end();
    if (known) peer = it->second;
  }
  Message m;
  m.chat_id = ack.chat_id;
  m.seq = ack.seq;
  m.message_id = ack.message_id;
  m.sender = auth_->user;
  m.to = peer;
  m.body = body;
  m.ts = ack.ts;
  m.client_msg_id = ack.client_msg_id;
  if (ack.pts == 0) {  // a large group: not in the update log
    OnLargeMessages(large_.OnMessage(m));
    MaybeFetchLarge();
    return;
  }
  if (known) {
    Update update;
    update.pts = ack.pts;
    update.message = std::move(m);
    Deliver(seq_.OnPush(std::move(update)));
  } else {
    seq_.NotePts(ack.pts);  // a chat we know nothing of: let a sync fetch the real message
  }
  MaybeSync();
}

void Client::Impl::Deliver(const std::vector<Update>& updates) {
  for (const Update& update : updates) {
    if (update.message) {
      Learn(*update.message);
      if (update.message->kind == "event") OnLogEvent(*update.message);
      NoteDelivered(*update.message);
      Notify(opts_.on_message, *update.message, update.pts);
    } else if (update.receipt) {
      Notify(opts_.on_receipt, *update.receipt, update.pts);
    }
    SaveCursor(update.pts);  // any kind, known or not, moves the cursor
  }
  MaybeFetchLarge();
}

// ---------------------------------------------------------------- receipts, typing, presence

void Client::Impl::OnReceiptPush(Update update) {
  if (!update.receipt) return;
  if (update.pts > 0) {  // in the update log: the pts rule, like a message
    Deliver(seq_.OnPush(std::move(update)));
    MaybeSync();
    return;
  }
  // A large group's receipt, pushed without pts: report it if it moves a position further.
  const Receipt& r = *update.receipt;
  auto key = std::make_tuple(r.chat_id, r.user, r.kind);
  auto it = large_receipts_.find(key);
  if (it != large_receipts_.end()) {
    if (r.seq <= it->second) return;
    it->second = r.seq;
  } else {
    if (large_receipts_.size() >= kMaxLargeReceipts) large_receipts_.clear();
    large_receipts_.emplace(std::move(key), r.seq);
  }
  Notify(opts_.on_receipt, r, int64_t{0});
}

void Client::Impl::OnTyping(const TypingEvent& event) { Notify(opts_.on_typing, event); }

void Client::Impl::OnPresence(const std::vector<PresenceStatus>& presence) {
  if (!presence.empty()) Notify(opts_.on_presence, presence);
}

void Client::Impl::Resubscribe() {
  if (presence_subs_.empty()) return;
  std::vector<std::string> users(presence_subs_.begin(), presence_subs_.end());
  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kInternal;
  op->name = "presence_subscribe";
  op->deadline = Clock::now() + opts_.request_timeout;
  op->encode = [users](int64_t id) { return wire::EncodePresenceSubscribe(id, users); };
  op->on_ok = [this](const json::value& v) { OnPresence(wire::DecodePresenceResult(v)); };
  op->on_error = [this](const Error& e) {
    ReportError(Error(e.code(), "presence_subscribe after reconnect failed: " + e.message(),
                      e.retryable()));
  };
  ops_.push_back(op);
  Transmit(op);
}

void Client::Impl::NoteDelivered(const Message& m) {
  if (!opts_.auto_delivered || !opts_.receive_updates || !auth_ || delivered_unsupported_) return;
  Applied& applied = delivered_batch_[m.chat_id];
  if (m.seq <= applied.seq) return;
  applied.seq = m.seq;
  applied.own = m.sender == auth_->user;
  if (!delivered_due_) delivered_due_ = Clock::now() + opts_.auto_delivered_delay;
}

void Client::Impl::NoteDeliveredSeq(int64_t chat_id, int64_t seq) {
  if (seq <= 0) return;
  int64_t& high = delivered_sent_[chat_id];
  high = std::max(high, seq);
}

void Client::Impl::MaybeMarkDelivered(bool force) {
  if (delivered_batch_.empty()) {
    delivered_due_.reset();
    return;
  }
  if (!online_ || stopping_ || shut_down_) return;
  auto now = Clock::now();
  if (!force && delivered_due_ && now < *delivered_due_) return;
  size_t budget = force ? 4 * kMaxDeliveredPerBatch : kMaxDeliveredPerBatch;
  for (auto it = delivered_batch_.begin(); it != delivered_batch_.end() && budget > 0;) {
    int64_t chat_id = it->first;
    Applied applied = it->second;
    it = delivered_batch_.erase(it);
    int64_t& high = delivered_sent_[chat_id];
    if (applied.seq <= high) continue;
    high = applied.seq;
    if (applied.own) continue;  // our own send moved the position already
    --budget;
    int64_t seq = applied.seq;
    auto op = std::make_shared<Op>();
    op->kind = Op::Kind::kRequest;  // resent after a reconnect, like reads
    op->name = "mark_delivered";
    op->deadline = now + opts_.request_timeout;
    op->encode = [chat_id, seq](int64_t id) {
      return wire::EncodeMarkDelivered(id, Target::Chat(chat_id), seq);
    };
    op->on_ok = [](const json::value&) {};
    op->on_error = [this, chat_id, seq](const Error& e) {
      if (shut_down_ || stopping_) return;
      if (e.code() == "unknown_type") {  // a server without receipts: stop asking
        delivered_unsupported_ = true;
        delivered_batch_.clear();
        return;
      }
      if (!e.retryable()) {  // forbidden, not_found: the chat is gone for us
        ReportError(Error(
            e.code(), "mark_delivered in chat " + std::to_string(chat_id) + ": " + e.message()));
        return;
      }
      // Timed out (e.g. offline too long): goes out again with the next batch.
      auto sent = delivered_sent_.find(chat_id);
      if (sent != delivered_sent_.end() && sent->second == seq) delivered_sent_.erase(sent);
      Applied& again = delivered_batch_[chat_id];
      if (seq > again.seq) again = Applied{seq, false};
      if (!delivered_due_) delivered_due_ = Clock::now() + opts_.auto_delivered_delay;
    };
    ops_.push_back(op);
    Transmit(op);
  }
  delivered_due_.reset();
  if (!delivered_batch_.empty()) delivered_due_ = now + opts_.auto_delivered_delay;
}

// ---------------------------------------------------------------- large groups

void Client::Impl::OnLargeMessages(const std::vector<Message>& messages) {
  for (const Message& m : messages) {
    Learn(m);
    NoteDelivered(m);
    Notify(opts_.on_message, m, int64_t{0});  // pts 0: not in the update log
  }
}

void Client::Impl::OnLogEvent(const Message& m) {
  json::error_code ec;
  json::value v = json::parse(m.event, ec);
  const json::object* event = ec ? nullptr : v.if_object();
  if (!event || !auth_) return;
  auto str = [&](const char* key) {
    const json::value* f = event->if_contains(key);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  const json::value* large = event->if_contains("large");
  if (large && large->is_bool() && large->get_bool()) {
    large_.Track(m.chat_id, m.seq);  // from here on its messages come without pts
  }
  std::string name = str("event");
  bool me_gone = name == "group_deleted" || ((name == "member_removed" || name == "member_left") &&
                                             str("user") == auth_->user);
  if (me_gone) large_.Forget(m.chat_id);
}

void Client::Impl::RefreshChats() {
  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kInternal;
  op->name = "chats";
  op->deadline = Clock::now() + opts_.request_timeout;
  op->encode = [](int64_t id) { return wire::EncodeChats(id, 500); };
  op->on_ok = [this](const json::value& v) {
    ChatList list = wire::DecodeChatList(v);
    for (const ChatSummary& c : list.chats) {
      chat_peer_[c.chat_id] = c.kind == "group" ? std::string() : c.peer;
      if (c.large && c.member) large_.Track(c.chat_id, c.last_seq);
      NoteDeliveredSeq(c.chat_id, c.delivered_seq);
    }
    MaybeFetchLarge();
  };
  op->on_error = [this](const Error& e) {
    ReportError(Error(e.code(), "chats after auth failed: " + e.message(), e.retryable()));
  };
  ops_.push_back(op);
  Transmit(op);
}

void Client::Impl::MaybeFetchLarge() {
  if (!opts_.receive_updates || !online_ || stopping_) return;
  if (Clock::now() < large_not_before_) return;
  for (const ChatSequencer::Fetch& fetch : large_.TakeFetches()) {
    int64_t chat_id = fetch.chat_id;
    auto op = std::make_shared<Op>();
    op->kind = Op::Kind::kInternal;
    op->name = "history";
    op->deadline = Clock::now() + opts_.request_timeout;
    op->encode = [fetch](int64_t id) {
      return wire::EncodeHistoryAfter(id, Target::Chat(fetch.chat_id), fetch.after_seq,
                                      kLargeFetchLimit);
    };
    op->on_ok = [this, chat_id](const json::value& v) {
      OnLargeMessages(large_.OnFetched(chat_id, wire::DecodeHistoryPage(v)));
      MaybeFetchLarge();
    };
    op->on_error = [this, chat_id](const Error& e) {
      if (e.code() == "forbidden" || e.code() == "not_found") {
        large_.Forget(chat_id);  // no longer ours
        return;
      }
      large_.OnFetchFailed(chat_id);
      large_not_before_ = Clock::now() + kSyncRetryDelay;
      ReportError(Error(
          e.code(), "history of large chat " + std::to_string(chat_id) + " failed: " + e.message(),
          e.retryable()));
    };
    ops_.push_back(op);
    Transmit(op);
  }
}

void Client::Impl::SaveCursor(int64_t pts) {
  cursor_value_ = pts;
  if (!opts_.cursor_file.empty()) {
    try {
      SaveCursorFile(opts_.cursor_file, pts);
    } catch (const Error& e) {
      ReportError(e);
    }
  }
  Notify(opts_.on_cursor, pts);
}

void Client::Impl::Learn(const Message& m) {
  if (!auth_) return;
  if (m.to.empty()) {
    chat_peer_[m.chat_id] = "";  // group messages have no `to`
    return;
  }
  const std::string& peer = m.sender == auth_->user ? m.to : m.sender;
  if (peer != auth_->user) chat_peer_[m.chat_id] = peer;
}

}  // namespace parley
