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
#include "store/postgres/pg_outbox.h"
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
// An append's one statement on the chat row: locks it, moves its seq counter by one and
// sets last_ts, and returns the row with the new seq in g.last_seq. nullopt: no such chat,
// or deleted (nothing changed).
std::optional<ChatRow> bump_chat(PgConn& c, ChatId id, int64_t ts);
// The same for the direct chat of users a and b found through its pair row; nullopt also
// when the pair has no chat yet.
std::optional<ChatRow> bump_direct_chat(PgConn& c, const UserId& a, const UserId& b, int64_t ts);
std::optional<Member> get_member(PgConn& c, ChatId chat, const UserId& user);
// Active members of a group, by user id.
std::vector<Member> active_members(PgConn& c, ChatId chat);
std::vector<UserId> active_member_ids(PgConn& c, ChatId chat);

// A new chat id in `bucket` (pg_placement.h): the bucket's next counter * kBuckets + bucket.
ChatId new_chat_id(PgConn& c, uint32_t bucket);

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

// Outbox (pg_outbox.cpp): what a commit on a chat's server owes to other servers ----------

// Queues rows in this (the chat's) server's outbox: one per server that `targets` (users, or
// media ids for media_ref) live on, as `p` places them; nothing if `targets` is empty.
void write_outbox(PgConn& c, const Placement& p, ChatId chat, OutboxKind kind, uint64_t seq,
                  const UserId& by, int64_t ts, const std::vector<std::string>& targets,
                  const std::string& note = {});
// The chat's pending rows for `servers` (places in the list): each one's first `limit` rows,
// all in id order.
constexpr uint32_t kOutboxPage = 1000;  // rows one fan-out applies (per server)
std::vector<OutboxRow> read_outbox(PgConn& c, ChatId chat, uint32_t limit,
                                   const std::vector<uint32_t>& servers);
void delete_outbox(PgConn& c, ChatId chat, const std::vector<int64_t>& ids);
// Chats with rows queued before `before` (ms), at most `limit`.
std::vector<ChatId> stale_outbox_chats(PgConn& c, int64_t before, uint32_t limit);
// Applies rows (this server's) in order, each at most once: an update-log entry that
// exists is reported with its pts, not written again.
std::vector<AppliedEntry> apply_outbox(PgConn& c, ChatId chat, const std::vector<OutboxRow>& rows,
                                       uint64_t retention);

// Appends (pg_messages.cpp) ----------------------------------------------------------------

struct ShardAppend {
  AppendResult r;
  bool owes = false;           // the chat's outbox may hold rows for other servers
  bool check_user = false;     // nothing written: check to_user on its server, then ask again
  std::vector<UserId> remote;  // members whose logs live on other servers
  // The chat's outbox as this commit left it (read under the chat's lock): what the fan-out
  // applies next, without reading it again. Not for a duplicate (no lock taken).
  std::shared_ptr<const std::vector<OutboxRow>> pending;
};
// The append on the chat's server (for a direct chat named by its users: the pair's). With
// one server (placement not sharded) it is the whole append in one commit.
Result<ShardAppend> append_on_shard(PgConn& c, AppendRequest& req, uint64_t retention,
                                    const Placement& p, bool to_user_checked);

// Groups and receipts (pg_groups.cpp) ---------------------------------------------------------

struct ShardGroup {
  GroupResult r;
  bool owes = false;
  std::vector<UserId> remote;  // event recipients whose logs live on other servers
};
// The group op on the chat's server (a new group: its creator's). `remote`: the facts of
// named users whose accounts live on other servers, read there just before.
Result<ShardGroup> group_on_shard(PgConn& c, const GroupRequest& req, uint64_t retention,
                                  const Placement& p, const std::vector<rules::UserFacts>& remote);
struct ShardReceipt {
  ReceiptResult r;
  bool owes = false;
  std::vector<UserId> remote;  // recipients whose logs live on other servers
};
Result<ShardReceipt> mark_on_shard(PgConn& c, const ReceiptRequest& req, uint64_t retention,
                                   const Placement& p);

// Reads (pg_messages.cpp) ------------------------------------------------------------------

// The user's update log after `after_pts`. A message entry whose chat lives on another
// server comes with only chat_id and seq set, and its index in `elsewhere` (when given;
// without it such an entry is left out, as one whose message is gone).
Result<UpdatesPage> read_updates_in(PgConn& c, const UserId& user, uint64_t after_pts,
                                    uint32_t limit, const Placement& p,
                                    std::vector<size_t>* elsewhere);
// The messages at these (chat, seq), those that exist, in no particular order.
std::vector<Message> read_messages(PgConn& c, const std::vector<std::pair<ChatId, uint64_t>>& at);
// The user's chats on this server (only those listed, if given) with their positions, last
// seq and unread count; left groups included, never-joined ones not.
std::vector<ChatSummary> chat_summaries(PgConn& c, const UserId& user,
                                        const std::optional<std::vector<ChatId>>& only);
// A chat of the list, filled in: its last message and the other members' positions.
void chat_details(PgConn& c, const UserId& user, ChatSummary& s);
// The newest messages of a chat for the login snapshot; nullopt if the user may not read it.
std::optional<ChatWindow> chat_window(PgConn& c, const UserId& user, ChatSummary chat,
                                      uint32_t messages_per_chat);

// How long a pending media mark (media_pending) holds its record against sweeps.
inline constexpr int64_t kPendingHoldMs = 3600 * 1000;

// Push (pg_push.cpp) ------------------------------------------------------------------------

// The device's target and its queued jobs go (logout, revocation, a dead token).
void drop_push_device(PgConn& c, const UserId& user, const std::string& device);
// Everything push keeps for the user: targets, jobs and mutes (delete_user).
void drop_push_user(PgConn& c, const UserId& user);

// Steps of single-server ops, split for ShardedPgStore (pg_sharded_accounts.cpp) -----------

// set_chat_mute (pg_push.cpp). On the chat's server: whether `user` is an active member of
// `chat` (not_found for no such chat, else forbidden).
Status check_active_member(PgConn& c, ChatId chat, const UserId& user);
// On the user's server: the mute row as rules::mute_row gives it (nullopt: unmute).
void write_chat_mute(PgConn& c, const UserId& user, ChatId chat,
                     std::optional<int64_t> muted_until);

// Media (pg_media.cpp).
bool valid_media_id(const std::string& id);
// put_media on the record's server: bad_request for a bad id; with check_user, not_found
// unless the uploader is live here (without: the caller checked on the user's server).
Status put_media_record(PgConn& c, const MediaRecord& rec, const UserId& uploader, bool check_user);
// media_access's first step, on the record's server.
struct MediaHolders {
  bool exists = false;
  bool owner = false;         // `user` uploaded it
  std::vector<ChatId> chats;  // unless owner: the chats whose messages refer to it
};
MediaHolders media_holders(PgConn& c, const std::string& id, const UserId& user);

// delete_user (pg_accounts.cpp). On the user's server: the row marked deleted, devices
// revoked (returned), push data dropped; not_found if no live user. Then on every server:
// the user's owner marks and references go, and the records nothing holds any more
// (returned).
Result<DeleteUserResult> delete_user_account(PgConn& c, const UserId& user);
std::vector<std::string> delete_user_media(PgConn& c, const UserId& user);

}  // namespace parley::store::pg
