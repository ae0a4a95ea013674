// The providers the [push] settings configure: webhook when push.webhook_url is set, FCM
// when push.fcm_project_id is, APNs when push.apns_key_file is.
#pragma once

#include <map>
#include <memory>

#include "common/config.h"
#include "push/provider.h"

namespace parley::push {

// Errors: the first provider that is configured but cannot be set up (bad key, file).
Result<std::map<store::PushProvider, std::unique_ptr<Provider>>> make_providers(
    const PushConfig& config);

}  // namespace parley::push
