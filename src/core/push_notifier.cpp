#include "core/push_notifier.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"

namespace parley::core {

PushNotifier::PushNotifier(store::Store& store, const PushConfig& config,
                           ConnectedDevices connected)
    : store_(store), config_(config), connected_(std::move(connected)) {}

void PushNotifier::message_committed(const store::AppendResult& r) {
  if (r.duplicate || r.message.kind == store::MessageKind::event) return;
  std::vector<store::PushEnqueue> items;
  const int64_t now = now_ms();
  for (const auto& d : r.deliveries) {
    if (d.user == r.message.sender) continue;
    store::PushEnqueue item;
    item.user = d.user;
    item.connected = connected_(d.user);
    item.chat_id = r.message.chat_id;
    item.seq = r.message.seq;
    item.sender = r.message.sender;
    item.due_at = now + config_.collapse_ms;
    items.push_back(std::move(item));
  }
  if (items.empty()) return;
  store_.enqueue_push(std::move(items), now, [](Result<uint32_t> n) {
    if (!n) spdlog::warn("push: cannot queue: {}", n.error().message);
  });
}

void PushNotifier::device_online(const std::string& user, const std::string& device_id) {
  store_.drop_device_pushes(user, device_id, [](Status st) {
    if (!st) spdlog::warn("push: cannot drop queued pushes: {}", st.error().message);
  });
}

}  // namespace parley::core
