#include "cli/one_shot.h"

#include <algorithm>
#include <cmath>
#include <iostream>

namespace parley::cli {

OneShot::OneShot(const Globals& g, const Profile& profile, std::chrono::milliseconds timeout,
                 const std::function<void(ClientOptions&)>& customize) {
  ClientOptions o;
  o.server_url = profile.server;
  o.token = profile.token;
  o.receive_updates = false;
  o.connect_timeout = std::min(timeout, std::chrono::milliseconds(10000));
  o.request_timeout = timeout;
  o.send_timeout = timeout;
  bool verbose = g.verbose;
  o.on_state = [this, verbose](const ConnectionEvent& e) {
    if (verbose) {
      std::cerr << "parley: " << ToString(e.state)
                << (e.message.empty() ? "" : " (" + e.message + ")") << "\n";
    }
    std::lock_guard lock(mu_);
    if (e.state == ConnectionState::kOnline) online_once_ = true;
    if (e.state == ConnectionState::kWaiting && !online_once_ && !connect_error_) {
      connect_error_ = Error(e.code.empty() ? errc::kConnectionFailed : e.code, e.message);
    }
  };
  if (customize) customize(o);
  client_ = std::make_unique<Client>(std::move(o));
  client_->Start();
}

OneShot::~OneShot() { client_->Stop(); }

std::chrono::milliseconds Seconds(double s, const char* option) {
  if (!(s > 0) || !std::isfinite(s) || s > 1e7) {
    throw UsageError(std::string(option) + " must be a positive number of seconds");
  }
  return std::chrono::milliseconds(std::max<int64_t>(1, std::llround(s * 1000)));
}

}  // namespace parley::cli
