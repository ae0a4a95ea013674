// The chat core: sending with seq assignment and idempotency, fan-out after commit, sync,
// history and the chat list. It talks only to the Store seam and the Router.
#pragma once

#include <functional>
#include <string>

#include "common/config.h"
#include "common/ids.h"
#include "core/router.h"
#include "proto/frames.h"
#include "store/store.h"

namespace parley::core {

// Results are the JSON `result` objects of docs/PROTOCOL.md, ready to wrap in an ok frame.
using JsonCallback = std::function<void(Result<std::string>)>;

class ChatService {
 public:
  ChatService(store::Store& store, Router& router, SnowflakeGenerator& ids, const Config& config);

  // Commits the message, answers `done`, then pushes it to every live device of every
  // member except connection `conn_id`. Runs `done` on the store's commit thread, before
  // the pushes, so that per user everything leaves in pts order.
  void send(const std::string& sender, uint64_t conn_id, proto::SendRequest req, JsonCallback done);
  void sync(const std::string& user, const proto::SyncRequest& req, JsonCallback done);
  void history(const std::string& user, const proto::HistoryRequest& req, JsonCallback done);
  void chats(const std::string& user, const proto::ChatsRequest& req, JsonCallback done);
  void current_pts(const std::string& user, store::Callback<uint64_t> done);
  // Group management; like send, `done` runs on the commit thread before the pushes.
  void group(const std::string& actor, uint64_t conn_id, proto::GroupRequest req,
             JsonCallback done);
  void group_info(const std::string& user, uint64_t chat_id, JsonCallback done);
  void large_groups(const std::string& user, store::Callback<std::vector<store::ChatId>> done);

 private:
  void snapshot(const std::string& user, bool limited, JsonCallback done);

  store::Store& store_;
  Router& router_;
  SnowflakeGenerator& ids_;
  const Config& config_;
};

}  // namespace parley::core
