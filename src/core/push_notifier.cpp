#include "core/push_notifier.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"

namespace parley::core {

PushNotifier::PushNotifier(store::Store& store, const PushConfig& config, Router& router)
    : store_(store), config_(config), router_(router) {}

void PushNotifier::message_committed(const store::AppendResult& r) {
  if (r.duplicate || r.message.kind == store::MessageKind::event) return;
  std::vector<store::PushEnqueue> items;
  const int64_t now = now_ms();
  std::vector<std::string> users;
  for (const auto& d : r.deliveries) {
    if (d.user == r.message.sender) continue;
    store::PushEnqueue item;
    item.user = d.user;
    item.chat_id = r.message.chat_id;
    item.seq = r.message.seq;
    item.sender = r.message.sender;
    item.due_at = now + config_.collapse_ms;
    users.push_back(d.user);
    items.push_back(std::move(item));
  }
  if (items.empty()) return;
  // A device connected to any node got the message live; the others get a job.
  router_.connected_devices(std::move(users), [this, items = std::move(items),
                                               now](std::vector<UserLocation> found) mutable {
    for (size_t i = 0; i < items.size() && i < found.size(); ++i)
      for (const auto& d : found[i].devices) items[i].connected.push_back(d.device_id);
    store_.enqueue_push(std::move(items), now, [](Result<uint32_t> n) {
      if (!n) spdlog::warn("push: cannot queue: {}", n.error().message);
    });
  });
}

void PushNotifier::device_online(const std::string& user, const std::string& device_id) {
  store_.drop_device_pushes(user, device_id, [](Status st) {
    if (!st) spdlog::warn("push: cannot drop queued pushes: {}", st.error().message);
  });
}

}  // namespace parley::core
