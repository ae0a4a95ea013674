#include "store/rules/read_state.h"

#include <algorithm>

namespace parley::store::rules {

Visible direct_visible(uint64_t last_seq) { return Visible{1, last_seq, true}; }

Visible group_visible(uint64_t last_seq, bool full_history, const Member& m) {
  Visible v;
  v.first = full_history ? 1 : m.joined_seq;
  v.last = last_seq;
  if (m.left_seq) {
    v.last = m.left_seq;
    v.member = false;
  }
  return v;
}

uint64_t unread_count(bool member, uint64_t last, uint64_t read_seq) {
  return member && last > read_seq ? last - read_seq : 0;
}

ReadPositions joined_at(ReadPositions now, uint64_t seq) {
  now.read_seq = std::max(now.read_seq, seq - 1);
  now.delivered_seq = std::max(now.delivered_seq, now.read_seq);
  return now;
}

std::optional<ReadPositions> after_own_message(ReadPositions now, uint64_t seq) {
  if (now.read_seq >= seq) return std::nullopt;
  now.read_seq = seq;
  now.delivered_seq = std::max(now.delivered_seq, seq);
  return now;
}

ReceiptDecision decide_receipt(UpdateKind kind, std::optional<uint64_t> asked,
                               const Visible& visible, ReadPositions now) {
  ReceiptDecision d;
  d.positions = now;
  uint64_t target = std::min(asked.value_or(visible.last), visible.last);
  uint64_t& position = kind == UpdateKind::read ? d.positions.read_seq : d.positions.delivered_seq;
  if (target > position) {
    position = target;
    d.positions.delivered_seq = std::max(d.positions.delivered_seq, d.positions.read_seq);
    d.advanced = true;
  }
  d.seq = position;
  d.unread = unread_count(visible.member, visible.last, d.positions.read_seq);
  return d;
}

ReceiptAudience receipt_audience(UpdateKind kind, bool advanced, bool member, ChatKind chat,
                                 bool large) {
  ReceiptAudience a;
  if (!advanced) return a;
  a.own_log = kind == UpdateKind::read;
  if (!member) return a;
  if (chat == ChatKind::group && large)
    a.broadcast = true;
  else
    a.other_members = true;
  return a;
}

std::vector<UserId> receipt_recipients(const ReceiptAudience& audience, const UserId& user,
                                       const std::vector<UserId>& members) {
  std::vector<UserId> to;
  if (audience.own_log) to.push_back(user);
  if (audience.other_members)
    for (const auto& m : members)
      if (m != user) to.push_back(m);
  return to;
}

}  // namespace parley::store::rules
