// The media endpoints (docs/MEDIA.md, "HTTP API"): streamed uploads, downloads with Range,
// ETag and caching headers, and signed URLs.
#pragma once

#include <string_view>

#include "auth/account_service.h"
#include "media_service/media_service.h"
#include "net/transport.h"

namespace parley::http {

class MediaRoutes {
 public:
  MediaRoutes(auth::AccountService& accounts, media_service::MediaService& media)
      : accounts_(accounts), media_(media) {}

  // Paths this class answers: /v1/media and below.
  static bool owns(std::string_view path);
  // POST /v1/media streams its body.
  static bool streams(const net::HttpRequestHeader& header);
  void open_stream(net::HttpRequestHeader header, std::function<void(net::StreamStart)> done);
  void handle(net::HttpRequest request, std::function<void(net::HttpReply)> done);

 private:
  void download(net::HttpRequest request, std::string id, std::function<void(net::HttpReply)> done);

  auth::AccountService& accounts_;
  media_service::MediaService& media_;
};

}  // namespace parley::http
