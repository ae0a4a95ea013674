// Queues push notifications for the devices a message did not reach live (docs/PUSH.md,
// "The queue"): after a commit, every recipient's devices that are not connected get a
// job in the Store, collapsed per device and chat. Sending is the push workers' job.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/config.h"
#include "core/router.h"
#include "store/store.h"

namespace parley::core {

class PushNotifier {
 public:
  // `router.connected_devices`: the recipients' devices with a live session on any node
  // (their messages were pushed to them live): those get no notification.
  PushNotifier(store::Store& store, const PushConfig& config, Router& router);

  // A message committed: queues jobs for its recipients' other devices. Events (group
  // changes) and large groups (no per-user delivery) send none.
  void message_committed(const store::AppendResult& r);
  // The device is connected and syncs: what was queued for it is moot.
  void device_online(const std::string& user, const std::string& device_id);

 private:
  store::Store& store_;
  const PushConfig& config_;
  Router& router_;
};

}  // namespace parley::core
