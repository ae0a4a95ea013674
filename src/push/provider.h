// A push provider (docs/PUSH.md): turns one notification into one HTTP request to APNs, FCM
// or a webhook, and classifies the answer so that the worker knows what to do next.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/types.h"

namespace parley::push {

// What a notification says. No message content unless the user turned previews on.
struct Notification {
  store::PushTarget target;
  uint64_t chat_id = 0;
  uint32_t count = 0;   // messages of this chat since the last notification
  uint64_t badge = 0;   // the user's total unread messages
  std::string sender;   // the sender of the latest message (user id as display name)
  std::string preview;  // the latest message's text, cut to fit; empty unless enabled
  uint64_t last_seq = 0;
};

enum class SendStatus {
  ok,          // accepted by the provider
  retry,       // network error, timeout, 429, 5xx: try again later
  failed,      // refused for good (bad request, bad credentials): dead letter
  token_gone,  // APNs 410 / FCM UNREGISTERED (404): remove the target
};

struct SendResult {
  SendStatus status = SendStatus::ok;
  std::optional<int64_t> retry_after_ms;  // from a Retry-After header
  std::string error;                      // for logs and dead letters
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual store::PushProvider kind() const = 0;
  // Blocking; thread-safe (the worker calls it from up to `concurrency` threads at once).
  virtual SendResult send(const Notification& n) = 0;
};

}  // namespace parley::push
