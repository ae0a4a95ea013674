// The web client's static files (docs/WEB.md), served by parleyd from server.web_root on the
// same port as the API. Every file is read once at startup, so that a request never touches
// the disk and the tree cannot change under a running server: restart to publish a new build.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/errc.h"
#include "net/transport.h"

namespace parley::http {

class StaticFiles {
 public:
  struct Limits {
    uint64_t max_total_bytes = 32ull << 20;  // the whole tree
    uint32_t max_files = 2000;
  };

  // Loads every regular file under `root` (hidden files and folders excepted). An error
  // when `root` is not a directory or the tree is over a limit.
  static Result<std::unique_ptr<StaticFiles>> load(const std::string& root, Limits limits);

  // The answer for a GET or HEAD of `path` ("/" is "/index.html"), with ETag revalidation;
  // nullopt when no file has that path. Other methods get a 405.
  std::optional<net::HttpResponse> serve(const net::HttpRequest& request) const;

  size_t size() const { return files_.size(); }

  // The Content-Type for a file name, by its extension; application/octet-stream if unknown.
  static std::string content_type_of(std::string_view name);

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // "\"<blake2b-128 hex>\""
  };
  std::map<std::string, File, std::less<>> files_;  // by URL path, "/app.js"
};

}  // namespace parley::http
