#include "parley/update_sequencer.h"

#include <algorithm>
#include <utility>

namespace parley {

UpdateSequencer::UpdateSequencer(std::optional<int64_t> cursor) : cursor_(cursor) {
  if (cursor_ && *cursor_ < 0) cursor_.reset();
  known_pts_ = cursor_.value_or(0);
}

bool UpdateSequencer::OnAuth(int64_t server_pts) {
  bool reset = false;
  if (cursor_ && server_pts < *cursor_) {
    // The cursor is from another log (server data reset): only a snapshot is safe.
    cursor_.reset();
    pending_.clear();
    known_pts_ = 0;
    more_ = false;
    reset = true;
  }
  known_pts_ = std::max(known_pts_, server_pts);
  return reset;
}

std::vector<Update> UpdateSequencer::OnPush(Update update) {
  std::vector<Update> out;
  if (update.pts <= 0) return out;
  known_pts_ = std::max(known_pts_, update.pts);
  if (!cursor_) {
    Hold(std::move(update));  // until the snapshot tells where we are
    return out;
  }
  if (update.pts <= *cursor_) return out;  // already applied
  if (update.pts == *cursor_ + 1) {
    Apply(std::move(update), out);
    Drain(out);
  } else {
    Hold(std::move(update));  // gap: NeedsSync() is now true
  }
  return out;
}

void UpdateSequencer::NotePts(int64_t pts) { known_pts_ = std::max(known_pts_, pts); }

bool UpdateSequencer::NeedsSync() const {
  if (in_flight_) return false;
  if (!cursor_) return true;
  return more_ || known_pts_ > *cursor_;
}

std::optional<int64_t> UpdateSequencer::BeginSync() {
  in_flight_ = true;
  return cursor_;
}

std::vector<Update> UpdateSequencer::OnSyncResult(const SyncResult& result) {
  in_flight_ = false;
  std::vector<Update> out;
  known_pts_ = std::max(known_pts_, result.pts);
  more_ = result.has_more;
  if (result.snapshot) {
    for (const SnapshotChat& chat : result.chats) {
      int64_t last = 0;
      for (const Message& m : chat.messages) last = std::max(last, m.seq);
      if (last > 0) {
        int64_t& seen = snapshot_seq_[chat.chat_id];
        seen = std::max(seen, last);
      }
    }
    cursor_ = std::max(cursor_.value_or(0), result.pts);
    Drain(out);
    return out;
  }
  if (!cursor_) cursor_ = 0;  // updates although we asked for a snapshot: they start at 1
  for (const Update& update : result.updates) {
    if (update.pts <= *cursor_) continue;
    if (update.pts == *cursor_ + 1) {
      Apply(update, out);
      Drain(out);
    } else {
      Hold(update);  // the log has no holes; keep it anyway and let the next sync decide
    }
  }
  Drain(out);
  return out;
}

void UpdateSequencer::Hold(Update update) {
  if (pending_.size() >= kMaxPending) {
    auto last = std::prev(pending_.end());
    if (update.pts >= last->first) return;  // a later sync fetches it
    pending_.erase(last);
  }
  pending_.try_emplace(update.pts, std::move(update));
}

void UpdateSequencer::Apply(Update update, std::vector<Update>& out) {
  if (update.message) {
    auto it = snapshot_seq_.find(update.message->chat_id);
    if (it != snapshot_seq_.end() && update.message->seq <= it->second) {
      update.message.reset();  // the snapshot showed it already
    }
  }
  cursor_ = update.pts;
  out.push_back(std::move(update));
}

void UpdateSequencer::Drain(std::vector<Update>& out) {
  if (!cursor_) return;
  while (!pending_.empty()) {
    auto it = pending_.begin();
    if (it->first <= *cursor_) {
      pending_.erase(it);
    } else if (it->first == *cursor_ + 1) {
      Update next = std::move(it->second);
      pending_.erase(it);
      Apply(std::move(next), out);
    } else {
      break;
    }
  }
}

}  // namespace parley
