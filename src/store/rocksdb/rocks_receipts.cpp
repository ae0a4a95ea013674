// Receipts: read and delivered positions, decided by store/rules/read_state.h.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/rocksdb/rocks_internal.h"
#include "store/rocksdb/rocks_write_txn.h"
#include "store/rules/read_state.h"

namespace parley::store::rocks {

struct ReceiptOp final : RocksStore::Op {
  ReceiptRequest req;
  Callback<ReceiptResult> done;
  std::optional<Result<ReceiptResult>> result;

  void apply(WriteTxn& txn) override { result = run(txn); }
  void finish(bool committed) override {
    if (!committed) return done(Error{Errc::unavailable, "commit failed"});
    done(std::move(*result));
  }

  Result<ReceiptResult> run(WriteTxn& txn) {
    auto& st = txn.state();
    ChatId chat_id = req.chat_id;
    if (chat_id == 0) {
      std::string pk = pair_key(req.user, req.with);
      auto pit = st.pairs.find(pk);
      if (pit != st.pairs.end()) {
        chat_id = pit->second;
      } else if (auto raw = txn.get(RocksStore::kPairs, pk)) {
        chat_id = decode_u64be(*raw);
      } else {
        return Error{Errc::not_found, fmt::format("no chat with {}", req.with)};
      }
    }
    ChatRecord* chat = txn.load_chat(chat_id);
    if (!chat) return Error{Errc::not_found, fmt::format("no such chat: {}", chat_id)};

    // What the user may read, and whether it is still an active member.
    rules::Visible visible = rules::direct_visible(chat->last_seq);
    if (chat->kind == ChatKind::direct) {
      if (std::find(chat->members.begin(), chat->members.end(), req.user) == chat->members.end())
        return Error{Errc::forbidden, "not a member of this chat"};
    } else {
      auto m = txn.get_member(chat_id, req.user);
      if (!m) return Error{Errc::forbidden, "not a member of this chat"};
      visible = rules::group_visible(chat->last_seq, chat->full_history, *m);
    }
    auto row = txn.get_user_chat(req.user, chat_id);
    if (!row) return Error{Errc::forbidden, "not a member of this chat"};

    auto decision = rules::decide_receipt(req.kind, req.seq, visible, positions(*row));
    if (decision.advanced) {
      set_positions(*row, decision.positions);
      txn.put_user_chat(req.user, chat_id, *row);
    }
    ReceiptResult r;
    r.receipt = Receipt{chat_id, req.user, req.kind, decision.seq, req.ts};
    r.advanced = decision.advanced;
    r.unread = decision.unread;

    auto audience = rules::receipt_audience(req.kind, decision.advanced, visible.member, chat->kind,
                                            chat->large);
    std::vector<UserId> members;
    if (audience.other_members) {
      if (chat->kind == ChatKind::direct)
        members = chat->members;
      else
        for (const auto& [member, m] : txn.active_members(chat_id)) members.push_back(member);
    }
    UpdateRecord rec{req.kind, chat_id, decision.seq, req.user, req.ts};
    for (const auto& u : rules::receipt_recipients(audience, req.user, members))
      r.deliveries.push_back(txn.log(u, rec));
    if (audience.own_log) r.user_pts = r.deliveries.front().pts;
    r.broadcast = audience.broadcast;
    return r;
  }
};

void RocksStore::mark(ReceiptRequest req, Callback<ReceiptResult> done) {
  auto op = std::make_unique<ReceiptOp>();
  op->req = std::move(req);
  op->done = done;
  enqueue(std::move(op), [done] { done(unavailable()); });
}

}  // namespace parley::store::rocks
