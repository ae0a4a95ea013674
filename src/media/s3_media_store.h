// MediaStore in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, R2, s3rver), over
// libcurl, signed with SigV4 (sigv4.h). For deployments of several nodes.
//
// Object <id> is the key <prefix><id> in the bucket. An upload spools to a local file while it
// is hashed (so the id is known before the PUT), then commit() HEADs the key (dedupe: an
// existing key skips the PUT) and PUTs the file streaming, with x-amz-content-sha256 = id, so
// the server verifies the bytes too. S3 writes are atomic: a key is absent or complete.
// Readers GET with a Range header and read the body through a bounded buffer (curl pauses the
// transfer while it is full). list() is ListObjectsV2.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "media/media_store.h"

namespace parley::media {

struct S3Config {
  std::string endpoint;  // http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com
  std::string region = "us-east-1";
  std::string bucket;
  std::string access_key;
  std::string secret_key;
  bool path_style = true;  // endpoint/bucket/key; false: bucket.endpoint/key (virtual host)
  std::string prefix;      // key prefix inside the bucket, e.g. "media/"; "" = none
  std::string spool_dir;   // local directory for uploads in progress (data_dir/media/tmp)
  uint32_t connect_timeout_ms = 5000;
  uint32_t request_timeout_ms = 30000;      // HEAD, DELETE and list requests in all
  uint32_t stall_timeout_s = 60;            // a PUT or GET ends when no byte moved this long
  uint32_t read_buffer_bytes = 256 * 1024;  // per open Reader
  uint32_t max_idle_connections = 16;       // kept for reuse between requests
};

class S3MediaStore final : public MediaStore {
 public:
  // Checks the config and prepares (empties) the spool directory. Does not contact the
  // server: a store that is down shows up as unavailable on the first request.
  static Result<std::unique_ptr<S3MediaStore>> open(S3Config config);
  ~S3MediaStore() override;

  Result<std::unique_ptr<Upload>> begin(uint64_t max_bytes) override;
  Result<ObjectInfo> stat(const std::string& id) override;
  Result<std::unique_ptr<Reader>> open(const std::string& id, uint64_t offset,
                                       uint64_t length) override;
  Status remove(const std::string& id) override;
  Result<std::vector<ObjectInfo>> list(std::string_view after_id, uint32_t limit) override;

  struct Impl;

 private:
  explicit S3MediaStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;  // shared with open Readers and Uploads
};

}  // namespace parley::media
