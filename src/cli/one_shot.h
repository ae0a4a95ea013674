// A Client for one request of a short-lived command: no update tracking, and a first
// connection that fails ends the command at once instead of retrying until the timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>

#include "cli/cli.h"
#include "cli/profile.h"
#include "parley/client.h"

namespace parley::cli {

class OneShot {
 public:
  // customize: a last look at the options before the client starts (e.g. push callbacks).
  OneShot(const Globals& g, const Profile& profile, std::chrono::milliseconds timeout,
          const std::function<void(ClientOptions&)>& customize = {});
  ~OneShot();

  Client& client() { return *client_; }

  // The future's value, or throws its error or the connection error that came first.
  template <class T>
  T Wait(std::future<T> future) {
    while (future.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      std::lock_guard lock(mu_);
      if (connect_error_) throw *connect_error_;
    }
    return future.get();
  }

 private:
  std::mutex mu_;
  std::optional<Error> connect_error_;
  bool online_once_ = false;
  std::unique_ptr<Client> client_;
};

// Seconds from the command line -> milliseconds; throws UsageError if not positive.
std::chrono::milliseconds Seconds(double s, const char* option);

}  // namespace parley::cli
