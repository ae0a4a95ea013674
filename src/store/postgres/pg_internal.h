// Internals of the PostgreSQL backend that more than one of its files uses: the typed op,
// row readers and the helpers that lock and write update logs, chats and members. Not part
// of the Store seam; only src/store/postgres includes it.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_store.h"
#include "store/rules/groups.h"
#include "store/rules/read_state.h"

namespace parley::store::pg {

inline Error unavailable(std::string why = "store is closed") {
  return Error{Errc::unavailable, std::move(why)};
}
inline Error no_user(const UserId& u) {
  return Error{Errc::not_found, fmt::format("no such user: {}", u)};
}
inline Error no_chat(ChatId c) {
  return Error{Errc::not_found, fmt::format("no such chat: {}", c)};
}
inline Error not_member() { return Error{Errc::forbidden, "not a member of this chat"}; }

template <class T>
struct FnOp final : PgStore::Op {
  std::function<Result<T>(PgConn&)> fn;
  Callback<T> done;
  std::optional<Result<T>> result;

  void apply(PgConn& conn) override { result = fn(conn); }
  bool failed() const override { return result && !result->ok(); }
  void fail(Error e) override { result = std::move(e); }
  void complete() override {
    if (!result) result = Error{Errc::internal, "operation did not run"};
    done(std::move(*result));
  }
};

template <class T>
void PgStore::submit(bool write, std::function<Result<T>(PgConn&)> fn, Callback<T> done,
                     std::string order_key) {
  auto op = std::make_unique<FnOp<T>>();
  op->write = write;
  op->order_key = std::move(order_key);
  op->fn = std::move(fn);
  op->done = std::move(done);
  enqueue(std::move(op));
}

// Rows ------------------------------------------------------------------------------------

// The columns of a message, in the order message_at reads them.
inline constexpr const char* kMessageCols =
    "chat_id, seq, message_id, ts, sender, recipient, kind, body, client_msg_id";
Message message_at(const PgResult& r, int row, int col0 = 0);

// A chat row: the group rules' view plus a direct chat's two members.
struct ChatRow {
  rules::GroupState g;
  std::string peer_a, peer_b;
  bool has_member(const UserId& u) const { return u == peer_a || u == peer_b; }
};
// lock: FOR UPDATE (the chat's seq is about to move, or its membership checked for a write).
std::optional<ChatRow> load_chat(PgConn& c, ChatId id, bool lock);
std::optional<Member> get_member(PgConn& c, ChatId chat, const UserId& user);
// Active members of a group, by user id.
std::vector<Member> active_members(PgConn& c, ChatId chat);
std::vector<UserId> active_member_ids(PgConn& c, ChatId chat);

// Whether the user exists and is not deleted (a deleted user keeps its row: the name stays
// taken).
bool live_user(PgConn& c, const UserId& user);
// The direct chat of two users, if any.
std::optional<ChatId> direct_chat(PgConn& c, const UserId& a, const UserId& b);

// What `user` may read of `chat`: forbidden / not_found otherwise.
Result<rules::Visible> visible_range(PgConn& c, ChatId chat, const UserId& user);

// Update logs -----------------------------------------------------------------------------

// Locks the users' user_logs rows in id order (the order every transaction locks them in)
// and returns their group counts (users without a row are absent).
std::vector<std::pair<UserId, uint64_t>> lock_logs(PgConn& c, std::vector<UserId> users);
// Appends one entry to each user's log; pts come from the user_logs rows, incremented in
// this transaction. Deliveries in the order of `users`.
struct LogEntry {
  UpdateKind kind = UpdateKind::message;
  ChatId chat = 0;
  uint64_t seq = 0;
  UserId by;  // receipts
  int64_t ts = 0;
};
std::vector<Delivery> log_updates(PgConn& c, const std::vector<UserId>& users,
                                  const LogEntry& entry, uint64_t retention);

// Read state rows (user_chats) ------------------------------------------------------------

// lock: FOR UPDATE (a write reads, changes and writes them back).
std::optional<rules::ReadPositions> read_positions(PgConn& c, const UserId& user, ChatId chat,
                                                   bool lock = false);
void set_positions(PgConn& c, const UserId& user, ChatId chat, const rules::ReadPositions& p);
// A user (re)joins a chat at `seq` (rules::joined_at).
void join_user_chat(PgConn& c, const UserId& user, ChatId chat, ChatKind kind, const UserId& peer,
                    uint64_t seq);
// The user's own message at `seq` (rules::after_own_message).
void own_message(PgConn& c, const UserId& user, ChatId chat, uint64_t seq);

// Push (pg_push.cpp) ------------------------------------------------------------------------

// The device's target and its queued jobs go (logout, revocation, a dead token).
void drop_push_device(PgConn& c, const UserId& user, const std::string& device);
// Everything push keeps for the user: targets, jobs and mutes (delete_user).
void drop_push_user(PgConn& c, const UserId& user);

}  // namespace parley::store::pg
