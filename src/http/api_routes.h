// The HTTP API (docs/PROTOCOL.md §2): accounts, logout, account deletion and health; the
// media endpoints (docs/MEDIA.md) go to MediaRoutes.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "auth/account_service.h"
#include "common/health.h"
#include "core/router.h"
#include "http/media_routes.h"
#include "http/static_files.h"
#include "net/transport.h"

namespace parley::http {

class ApiRoutes final : public net::HttpHandler {
 public:
  // `media` and `media_routes` are null when media is disabled, `web` when no web client
  // is served (server.web_root unset).
  ApiRoutes(auth::AccountService& accounts, core::Router& router,
            media_service::MediaService* media, MediaRoutes* media_routes,
            const StaticFiles* web = nullptr)
      : accounts_(accounts),
        router_(router),
        media_(media),
        media_routes_(media_routes),
        web_(web) {}

  void handle(net::HttpRequest request, std::function<void(net::HttpReply)> done) override;
  bool streams(const net::HttpRequestHeader& header) const override;
  void open_stream(net::HttpRequestHeader header,
                   std::function<void(net::StreamStart)> done) override;

  void set_ready(bool ready) { ready_ = ready; }
  void set_draining() { draining_ = true; }
  // The backends' health by seam name, for /readyz (docs/PROTOCOL.md §2).
  using HealthReport = std::function<std::vector<std::pair<std::string, Health>>()>;
  void set_health(HealthReport report) { health_ = std::move(report); }

 private:
  void handle_devices(net::HttpRequest req, std::string_view path,
                      std::function<void(net::HttpReply)> done);

  auth::AccountService& accounts_;
  core::Router& router_;
  media_service::MediaService* media_;
  MediaRoutes* media_routes_;
  const StaticFiles* web_;
  HealthReport health_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace parley::http
