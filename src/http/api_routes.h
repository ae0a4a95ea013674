// The HTTP API (docs/PROTOCOL.md §2): accounts, logout and health.
#pragma once

#include <atomic>

#include "auth/account_service.h"
#include "core/router.h"
#include "net/transport.h"

namespace parley::http {

class ApiRoutes final : public net::HttpHandler {
 public:
  ApiRoutes(auth::AccountService& accounts, core::Router& router)
      : accounts_(accounts), router_(router) {}

  void handle(net::HttpRequest request, std::function<void(net::HttpResponse)> done) override;

  void set_ready(bool ready) { ready_ = ready; }
  void set_draining() { draining_ = true; }

 private:
  auth::AccountService& accounts_;
  core::Router& router_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace parley::http
