// The chat core: sending with seq assignment and idempotency, fan-out after commit, sync,
// history and the chat list. It talks only to the Store seam and the Router.
#pragma once

#include <functional>
#include <string>

#include "common/config.h"
#include "common/ids.h"
#include "core/push_notifier.h"
#include "core/router.h"
#include "core/update_frames.h"
#include "proto/frames.h"
#include "store/store.h"

namespace parley::core {

// Results are the JSON `result` objects of docs/PROTOCOL.md, ready to wrap in an ok frame.
using JsonCallback = std::function<void(Result<std::string>)>;

// A write's answer, with the write's place in the writer's update log (0: none), so that the
// session sends it in pts order with the pushes (session/ordered_stream.h).
struct Committed {
  std::string json;
  uint64_t pts = 0;
};
using CommitCallback = std::function<void(Result<Committed>)>;

class ChatService {
 public:
  ChatService(store::Store& store, Router& router, SnowflakeGenerator& ids, const Config& config);

  // Commits the message, answers `done`, then pushes it to every live device of every
  // member except connection `conn_id`. `done` runs before the pushes are routed; the
  // order a device sees is its stream's (session/ordered_stream.h), by pts.
  void send(const std::string& sender, uint64_t conn_id, proto::SendRequest req,
            CommitCallback done);
  void sync(const std::string& user, const proto::SyncRequest& req, JsonCallback done);
  void history(const std::string& user, const proto::HistoryRequest& req, JsonCallback done);
  void chats(const std::string& user, const proto::ChatsRequest& req, JsonCallback done);
  void current_pts(const std::string& user, store::Callback<uint64_t> done);
  // Up to `limit` of the user's updates after `after_pts`, as push frames: what a device
  // stream reads to fill a gap.
  void update_frames(const std::string& user, uint64_t after_pts, uint32_t limit,
                     std::function<void(Result<UpdateFrames>)> done);
  // Up to `limit` of a chat's messages after `after_seq` as `user` may read them, as the
  // frames a large group's broadcast carries: what a node's chat stream reads to fill a gap.
  void chat_frames(const std::string& user, uint64_t chat_id, uint64_t after_seq, uint32_t limit,
                   std::function<void(Result<UpdateFrames>)> done);
  // The chat's last seq, as `user` (a member) sees it.
  void chat_position(const std::string& user, uint64_t chat_id,
                     std::function<void(Result<uint64_t>)> done);
  // Group management; like send, `done` runs before the pushes are routed.
  void group(const std::string& actor, uint64_t conn_id, proto::GroupRequest req,
             CommitCallback done);
  void group_info(const std::string& user, uint64_t chat_id, JsonCallback done);
  void large_groups(const std::string& user, store::Callback<std::vector<store::ChatId>> done);
  // mark_read / mark_delivered; like send, `done` runs before the receipts are routed.
  void mark(const std::string& user, uint64_t conn_id, proto::MarkRequest req, CommitCallback done);
  // Reads or changes the user's settings (§3.14); a changed presence visibility is
  // reported to the hook, so that current subscribers are re-checked.
  void settings(const std::string& user, const proto::SettingsRequest& req, JsonCallback done);
  void set_on_visibility_changed(std::function<void(const std::string&)> fn) {
    on_visibility_changed_ = std::move(fn);
  }
  // Called with the users whose set of chat partners may have changed (joined or left a
  // group, first message of a direct chat): presence "contacts" visibility is re-checked.
  void set_on_relations_changed(std::function<void(std::vector<std::string>)> fn) {
    on_relations_changed_ = std::move(fn);
  }
  // Push notifications (docs/PUSH.md): register or drop the device's target, mute a chat.
  void push_target(const std::string& user, const std::string& device_id,
                   const proto::PushRequest& req, JsonCallback done);
  void mute(const std::string& user, const proto::MuteRequest& req, JsonCallback done);
  // Queues pushes for recipients' offline devices after each commit; null: no pushes.
  void set_push_notifier(PushNotifier* notifier) { push_ = notifier; }
  // Called after a message commits (typing stops when its author sends).
  void set_on_sent(std::function<void(const store::Message&)> fn) { on_sent_ = std::move(fn); }

 private:
  // Stamps, commits and fans out a message whose content is settled.
  void commit_send(store::AppendRequest append, uint64_t conn_id, CommitCallback done);
  void snapshot(const std::string& user, bool limited, JsonCallback done);
  size_t max_response_bytes() const { return config_.limits.max_response_bytes; }

  store::Store& store_;
  Router& router_;
  SnowflakeGenerator& ids_;
  const Config& config_;
  std::function<void(const store::Message&)> on_sent_;
  PushNotifier* push_ = nullptr;
  std::function<void(const std::string&)> on_visibility_changed_;
  std::function<void(std::vector<std::string>)> on_relations_changed_;
};

}  // namespace parley::core
