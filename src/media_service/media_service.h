// Attachments end to end (docs/MEDIA.md): uploads streamed into the MediaStore with their
// type checked and a thumbnail made, downloads with access checks, signed URLs, and
// housekeeping. Every blocking step (disk, network, image decoding) runs on the service's
// own thread pool, never on an I/O thread; callbacks run on that pool or a store thread.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "media/media_store.h"
#include "media_inspect/thumbnail.h"
#include "media_service/upload_guard.h"
#include "media_service/url_signer.h"
#include "store/store.h"

namespace parley::media_service {

class MediaService;

// One upload in progress: chunks in order, then finish() or abort(). Destroying an
// unfinished job aborts it.
class UploadJob : public std::enable_shared_from_this<UploadJob> {
 public:
  ~UploadJob();
  // Appends a chunk on the pool; `done` runs there. `chunk` must stay valid until then.
  // too_large past media.max_upload_bytes; after an error the job is dead.
  void write(std::string_view chunk, std::function<void(Status)> done);
  // Checks, thumbnails and stores the upload; `done` gets the answer JSON (MEDIA.md).
  void finish(std::function<void(Result<std::string>)> done);
  void abort();

 private:
  friend class MediaService;
  UploadJob(MediaService& service, std::string user, std::string declared_type,
            std::unique_ptr<media::Upload> upload);
  Result<std::string> complete();  // on the pool

  MediaService& service_;
  std::string user_;
  std::string declared_type_;
  std::mutex mu_;  // write/finish/abort may come from different threads, one at a time
  std::unique_ptr<media::Upload> upload_;
};

// A download about to be streamed.
struct Download {
  store::MediaRecord record;
  uint64_t offset = 0;
  uint64_t length = 0;                    // bytes this response carries
  std::unique_ptr<media::Reader> reader;  // null for HEAD and 304
};

struct SweepStats {
  uint64_t records_removed = 0;  // unreferenced uploads past media.orphan_ttl_s
  uint64_t objects_removed = 0;  // their objects, and objects with no record
};

class MediaService {
 public:
  MediaService(store::Store& store, media::MediaStore& objects, const MediaConfig& config);
  ~MediaService();

  // Starts an upload for `user`: rate_limited over media.max_uploads_per_user or
  // media.max_uploads in progress, unavailable after stop().
  Result<std::shared_ptr<UploadJob>> start_upload(const std::string& user,
                                                  std::string declared_type);

  // Whether `user` may read `id` (not_found otherwise, as for a missing object), then the
  // record. For signed URLs, pass no user (the signature was checked).
  void authorize(std::optional<std::string> user, std::string id,
                 std::function<void(Result<store::MediaRecord>)> done);
  // Opens [offset, offset + length) of an authorized object on the pool.
  void open(store::MediaRecord record, uint64_t offset, uint64_t length,
            std::function<void(Result<Download>)> done);
  // Reads the next piece of a download on the pool: `done` gets the bytes read (0 = end).
  void read(media::Reader& reader, char* out, size_t n, std::function<void(Result<size_t>)> done);

  // A signed URL for `user`, who must be able to read `id`: {url, expires_at} JSON.
  void sign(const std::string& user, std::string id, std::function<void(Result<std::string>)> done);
  Status verify_signature(std::string_view id, std::string_view exp, std::string_view sig) const;

  // Removes objects whose records the store has dropped (delete_user), on the pool.
  void remove_objects(std::vector<std::string> ids);
  // One housekeeping pass (MEDIA.md, "Housekeeping"), on the pool.
  void sweep(std::function<void(SweepStats)> done);

  // Waits for the pool's work to finish; later calls fail with unavailable.
  void stop();

  const MediaConfig& config() const { return config_; }

 private:
  friend class UploadJob;
  void upload_ended(const std::string& user);
  Result<std::pair<store::MediaRecord, media_inspect::ImageInfo>> store_thumbnail(
      const std::string& user, const std::string& source);
  Status put_record(store::MediaRecord record, const std::string& user);
  void remove_object(const std::string& id, SweepStats& stats);

  store::Store& store_;
  media::MediaStore& objects_;
  const MediaConfig& config_;
  std::vector<std::string> allowed_types_;
  UrlSigner signer_;
  UploadGuard guard_;
  boost::asio::thread_pool pool_;
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> uploads_by_user_;
  uint32_t uploads_ = 0;
  bool stopped_ = false;
};

}  // namespace parley::media_service
