// Queues push notifications for the devices a message did not reach live (docs/PUSH.md,
// "The queue"): after a commit, every recipient's devices that are not connected get a
// job in the Store, collapsed per device and chat. Sending is the push workers' job.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/config.h"
#include "store/store.h"

namespace parley::core {

class PushNotifier {
 public:
  // `connected_devices(user)`: the user's devices with a live session (their messages were
  // pushed to them).
  using ConnectedDevices = std::function<std::vector<std::string>(const std::string& user)>;
  PushNotifier(store::Store& store, const PushConfig& config, ConnectedDevices connected);

  // A message committed: queues jobs for its recipients' other devices. Events (group
  // changes) and large groups (no per-user delivery) send none.
  void message_committed(const store::AppendResult& r);
  // The device is connected and syncs: what was queued for it is moot.
  void device_online(const std::string& user, const std::string& device_id);

 private:
  store::Store& store_;
  const PushConfig& config_;
  ConnectedDevices connected_;
};

}  // namespace parley::core
