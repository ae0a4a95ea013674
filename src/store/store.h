// The Store seam: durable accounts, chats, messages and per-user update logs.
//
// Contract every backend keeps (store_conformance tests check it):
// - append_message assigns the chat's next seq (gapless from 1), and for every member the
//   next pts of that member's update log (gapless from 1), atomically with the message,
//   the idempotency record and the log entries. Its callback runs only once all of that is
//   durable under the configured durability.
// - No order of callbacks is promised: writes may complete in any order and on any thread
//   (a pool of database connections, several nodes). What is promised is gapless seq and
//   pts; the delivery path orders by them (session/ordered_stream.h), and reads fill gaps.
// - Reads never show a seq or pts whose write has not committed, and never a hole: a read
//   stops before the first position not committed yet.
// - A second append with the same (sender, client_msg_id) stores nothing and returns the
//   first result with duplicate = true.
// - Callbacks may run on any thread, also inline before the call returns.
#pragma once

#include <cstdint>
#include <functional>

#include "common/errc.h"
#include "common/health.h"
#include "store/types.h"

namespace parley::store {

template <class T>
using Callback = std::function<void(Result<T>)>;

class Store {
 public:
  virtual ~Store() = default;

  // Accounts. create_user fails with username_taken if the id exists.
  virtual void create_user(UserRecord user, Callback<Unit> done) = 0;
  virtual void get_user(UserId id, Callback<UserRecord> done) = 0;  // not_found
  // Creates a user with no password if missing (JWT identities); ok if it exists.
  virtual void ensure_user(UserId id, Callback<Unit> done) = 0;
  // too_many_devices when the user has `max_devices` live (not revoked) devices already
  // (0: no limit); the count and the insert are one commit.
  virtual void create_device(DeviceRecord device, uint32_t max_devices, Callback<Unit> done) = 0;
  // unauthorized if no live device has this token hash.
  virtual void find_device_by_token(std::string token_hash, Callback<DeviceRecord> done) = 0;
  // The user's live devices, by device id; empty for an unknown user.
  virtual void list_devices(UserId user, Callback<std::vector<DeviceRecord>> done) = 0;
  // Also removes the device's push target and its queued pushes.
  virtual void revoke_device(UserId user, std::string device_id, Callback<Unit> done) = 0;

  // Messages. Errors: not_found (no such user or chat), forbidden (not a member),
  // bad_request (to oneself), unavailable (store closed).
  virtual void append_message(AppendRequest req, Callback<AppendResult> done) = 0;

  // Groups: permission checks, the membership change and its event message (in the
  // chat's seq) in one commit. Errors: not_found, forbidden, conflict (already a member,
  // not a member), bad_request, too_large (over a limit).
  virtual void group_op(GroupRequest req, Callback<GroupResult> done) = 0;
  // The group with its active members; forbidden unless `user` is an active member.
  virtual void group_info(UserId user, ChatId chat, Callback<ChatInfo> done) = 0;

  // The groups the user is an active member of; with large_only, the large ones.
  virtual void member_groups(UserId user, bool large_only, Callback<std::vector<ChatId>> done) = 0;

  // Receipts: moves the user's read or delivered position in a chat forward and logs the
  // receipt for whom docs/PROTOCOL.md §3.11 says. A position that would not advance
  // stores nothing (advanced = false). Errors: not_found, forbidden, bad_request.
  virtual void mark(ReceiptRequest req, Callback<ReceiptResult> done) = 0;
  // Who hears a typing signal in the chat; forbidden unless `user` is an active member.
  virtual void audience(UserId user, ChatId chat, UserId with, Callback<Audience> done) = 0;

  // Presence support. get_settings: not_found if the user does not exist.
  virtual void get_settings(UserId user, Callback<UserSettings> done) = 0;
  virtual void set_presence_visibility(UserId user, PresenceVisibility v, Callback<Unit> done) = 0;
  virtual void set_last_seen(UserId user, int64_t ts, Callback<Unit> done) = 0;
  // Whether the two users share a chat: a direct chat, or a group both are active in.
  virtual void shares_chat(UserId a, UserId b, Callback<bool> done) = 0;

  // Media (docs/MEDIA.md). put_media records an upload by `uploader`: creates the record
  // or refreshes uploaded_at (the bytes' metadata never changes: same id, same bytes), and
  // marks `uploader` as an owner. get_media: not_found if absent.
  virtual void put_media(MediaRecord record, UserId uploader, Callback<Unit> done) = 0;
  virtual void get_media(std::string id, Callback<MediaRecord> done) = 0;
  // Whether `user` may read the object: an owner (uploaded it), or an active member of a
  // chat where a message refers to it. false (not an error) when the record is absent.
  virtual void media_access(UserId user, std::string id, Callback<bool> done) = 0;
  // Removes up to `limit` records that no message refers to and whose uploaded_at is
  // before `uploaded_before` (ms), with their owner marks, in one commit, and returns their
  // ids so that the caller removes the objects. An append that refers to one of them and
  // commits first keeps it; one that commits after fails with not_found.
  virtual void sweep_media(int64_t uploaded_before, uint32_t limit,
                           Callback<std::vector<std::string>> done) = 0;

  // Deletes a user's data (docs/MEDIA.md, "Deleting a user's data"): the account can no
  // longer log in or be registered again, every device is revoked, the presence and push
  // settings go, so do the push targets, queued pushes and chat mutes, and the user's media
  // marks go: uploads (owner marks) and references from the user's messages. Records nothing
  // else refers to are removed and returned. Messages the user sent stay in their chats.
  // not_found if the user does not exist (or is deleted).
  virtual void delete_user(UserId user, Callback<DeleteUserResult> done) = 0;

  // Push notifications (docs/PUSH.md). Targets: one per device; set replaces, remove drops
  // the target (only if its token is `token`, when given) and the device's jobs.
  virtual void set_push_target(PushTarget target, Callback<Unit> done) = 0;
  virtual void remove_push_target(UserId user, std::string device_id, std::string token,
                                  Callback<Unit> done) = 0;
  virtual void push_targets(UserId user, Callback<std::vector<PushTarget>> done) = 0;
  // Per-chat mute for `user`: until `muted_until` (ms); 0 unmutes. forbidden unless a member.
  virtual void set_chat_mute(UserId user, ChatId chat, int64_t muted_until,
                             Callback<Unit> done) = 0;
  // Do-not-disturb (until dnd_until ms, 0 = off) and message previews in pushes.
  virtual void set_push_settings(UserId user, int64_t dnd_until, bool preview,
                                 Callback<Unit> done) = 0;
  // Creates or collapses jobs, one commit: for each item, one per target device of the user
  // not in `connected`. Skips a chat the user muted and a user in do-not-disturb (at `now`). A
  // collapse adds 1 to count, sets last_seq/last_sender, bumps version and keeps due_at. Returns
  // how many were queued.
  virtual void enqueue_push(std::vector<PushEnqueue> items, int64_t now,
                            Callback<uint32_t> done) = 0;
  // The device is connected again and syncs: its queued jobs go.
  virtual void drop_device_pushes(UserId user, std::string device_id, Callback<Unit> done) = 0;
  // Leases up to `limit` jobs due at `now` (due_at <= now, lease expired) until
  // `lease_until`, in due order, with their targets. Several nodes may claim from one
  // store: a leased job is not returned again until its lease expires.
  virtual void claim_push_jobs(int64_t now, uint32_t limit, int64_t lease_until,
                               Callback<std::vector<PushJob>> done) = 0;
  // Ends a claimed job (`job` as claimed). sent: removes it, unless its version moved (new
  // messages collapsed in while it was sent): then it stays with count = the new messages
  // only and due now. retry: due at retry_at, attempts + 1, lease cleared. dead: a
  // dead-letter record (job + error), job removed. token_gone: target and its jobs removed
  // (if the device registered another token since the claim, only the job's lease is
  // cleared, so that it goes to the new one). A job removed since the claim, or replaced by a
  // newer one (another created_at), is left alone.
  virtual void finish_push_job(PushJob job, PushOutcome outcome, int64_t retry_at,
                               std::string error, Callback<Unit> done) = 0;
  virtual void push_queue_stats(Callback<PushQueueStats> done) = 0;

  // Sync and reads.
  virtual void current_pts(UserId user, Callback<uint64_t> done) = 0;
  virtual void read_updates(UserId user, uint64_t after_pts, uint32_t limit,
                            Callback<UpdatesPage> done) = 0;
  // The user's most recently active chats with their last messages (docs/PROTOCOL.md §3.5);
  // each window says how many readable messages come before it (older).
  virtual void snapshot(UserId user, uint32_t max_chats, uint32_t messages_per_chat,
                        Callback<Snapshot> done) = 0;
  virtual void history(HistoryQuery query, Callback<HistoryPage> done) = 0;
  // The user's chats, newest activity first, after `after`; unread_total and unread_chats
  // count over all of them. A chat the user is no longer a member of has unread 0.
  virtual void list_chats(UserId user, uint32_t limit, ChatListCursor after,
                          Callback<ChatList> done) = 0;

  // Stops accepting writes, commits everything queued, and returns when it is durable.
  virtual void close() = 0;
  // Whether it serves (for /readyz). An embedded store that opened is healthy.
  virtual Health health() const { return {}; }
};

}  // namespace parley::store
