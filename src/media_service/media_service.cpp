#include "media_service/media_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <fstream>
#include <future>

#include "common/clock.h"
#include "core/media_descriptor.h"
#include "media_inspect/content_type.h"
#include "media_inspect/thumbnail.h"

namespace parley::media_service {
namespace {

constexpr uint32_t kSweepPage = 256;
constexpr size_t kCopyChunk = 64 * 1024;

// Blocks a pool thread until a store call answers (store callbacks run on store threads).
template <class T, class Call>
Result<T> wait_for(Call&& call) {
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  call([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

bool decodable_image(const std::string& mime) {
  return mime == "image/jpeg" || mime == "image/png" || mime == "image/gif" || mime == "image/webp";
}

Error not_found(const std::string& id) {
  return Error{Errc::not_found, fmt::format("no media {}", id)};
}

}  // namespace

// --- UploadJob ---------------------------------------------------------------------------

UploadJob::UploadJob(MediaService& service, std::string user, std::string declared_type,
                     std::unique_ptr<media::Upload> upload)
    : service_(service),
      user_(std::move(user)),
      declared_type_(std::move(declared_type)),
      upload_(std::move(upload)) {}

UploadJob::~UploadJob() {
  abort();
  service_.upload_ended(user_);
}

void UploadJob::write(std::string_view chunk, std::function<void(Status)> done) {
  boost::asio::post(
      service_.pool_, [this, self = shared_from_this(), chunk, done = std::move(done)] {
        Status st = [&]() -> Status {
          std::lock_guard lock(mu_);
          if (!upload_) return Error{Errc::bad_request, "upload already ended"};
          auto written = upload_->write(chunk);
          if (!written && written.error().code == Errc::too_large)
            return Error{Errc::too_large,
                         fmt::format("upload over {} bytes", service_.config_.max_upload_bytes)};
          return written;
        }();
        done(std::move(st));
      });
}

void UploadJob::finish(std::function<void(Result<std::string>)> done) {
  boost::asio::post(service_.pool_, [this, self = shared_from_this(), done = std::move(done)] {
    Result<std::string> r = complete();
    std::lock_guard lock(mu_);
    upload_.reset();  // committed, or aborted by its destructor
    done(std::move(r));
  });
}

void UploadJob::abort() {
  std::lock_guard lock(mu_);
  if (upload_) upload_->abort();
  upload_.reset();
}

Result<std::string> UploadJob::complete() {
  std::lock_guard lock(mu_);
  if (!upload_) return Error{Errc::bad_request, "upload already ended"};
  media::Upload& up = *upload_;
  if (up.size() == 0) return Error{Errc::unsupported_type, "the file is empty"};
  auto type = media_inspect::check_type(up.spool_path(), declared_type_, service_.allowed_types_);
  if (!type) {
    if (type.error().code == Errc::bad_request)
      return Error{Errc::unsupported_type, type.error().message};
    return type.error();
  }

  store::MediaRecord record;
  record.id = up.sha256_hex();
  record.mime = type->mime;
  record.kind = std::string(media_inspect::media_kind_name(type->kind));
  record.size = up.size();
  std::optional<store::MediaRecord> thumb;
  if (type->kind == media_inspect::MediaKind::image && decodable_image(type->mime)) {
    auto made = service_.store_thumbnail(user_, up.spool_path());
    if (made) {
      const auto& [thumb_record, source] = made.value();
      thumb = thumb_record;
      record.width = source.width;
      record.height = source.height;
      record.thumb_id = thumb->id;
      record.thumb_width = thumb->width;
      record.thumb_height = thumb->height;
    } else if (made.error().code == Errc::bad_request || made.error().code == Errc::too_large) {
      // Corrupt, truncated or too many pixels to decode: kept as a plain file, which
      // clients offer for download instead of showing it.
      record.kind = "file";
    } else {
      return made.error();
    }
  }

  service_.guard_.enter(record.id);
  auto stored = up.commit();
  Status recorded = stored ? service_.put_record(record, user_) : Status(stored.error());
  service_.guard_.leave(record.id);
  if (!recorded) return recorded.error();
  return core::upload_result_json(record, thumb ? &*thumb : nullptr);
}

// --- MediaService ------------------------------------------------------------------------

MediaService::MediaService(store::Store& store, media::MediaStore& objects,
                           const MediaConfig& config)
    : store_(store),
      objects_(objects),
      config_(config),
      allowed_types_(config.allowed_types.empty() ? media_inspect::default_allowed_types()
                                                  : config.allowed_types),
      signer_(config.url_signing_key),
      pool_(config.threads) {
  for (auto& t : allowed_types_)
    if (t.find('*') == std::string::npos) t = media_inspect::canonical_mime(t);
}

MediaService::~MediaService() { stop(); }

void MediaService::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  pool_.join();
}

Result<std::shared_ptr<UploadJob>> MediaService::start_upload(const std::string& user,
                                                              std::string declared_type) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return Error{Errc::unavailable, "server shutting down"};
    if (uploads_ >= config_.max_uploads)
      return Error{Errc::rate_limited, "too many uploads in progress on this server"};
    auto& mine = uploads_by_user_[user];
    if (mine >= config_.max_uploads_per_user)
      return Error{Errc::rate_limited, fmt::format("at most {} uploads in progress per user",
                                                   config_.max_uploads_per_user)};
    ++mine;
    ++uploads_;
  }
  auto upload = objects_.begin(config_.max_upload_bytes);
  if (!upload) {
    upload_ended(user);
    return upload.error();
  }
  return std::shared_ptr<UploadJob>(
      new UploadJob(*this, user, std::move(declared_type), std::move(upload.value())));
}

void MediaService::upload_ended(const std::string& user) {
  std::lock_guard lock(mu_);
  if (uploads_) --uploads_;
  auto it = uploads_by_user_.find(user);
  if (it != uploads_by_user_.end() && --it->second == 0) uploads_by_user_.erase(it);
}

Status MediaService::put_record(store::MediaRecord record, const std::string& user) {
  record.uploaded_at = now_ms();
  return wait_for<Unit>([&](auto cb) { store_.put_media(std::move(record), user, std::move(cb)); });
}

// Makes, stores and records the thumbnail of the image at `source`; returns the thumbnail's
// record and the source's dimensions.
Result<std::pair<store::MediaRecord, media_inspect::ImageInfo>> MediaService::store_thumbnail(
    const std::string& user, const std::string& source) {
  const std::string dst = source + ".thumb.jpg";
  media_inspect::ThumbnailOptions options;
  options.max_px = static_cast<int>(config_.thumbnail_px);
  options.max_image_pixels = static_cast<int64_t>(config_.max_image_pixels);
  auto made = media_inspect::make_thumbnail(source, dst, options);
  if (!made) return made.error();
  struct Cleanup {
    const std::string& path;
    ~Cleanup() { std::remove(path.c_str()); }
  } cleanup{dst};

  auto upload = objects_.begin(config_.max_upload_bytes);
  if (!upload) return upload.error();
  std::ifstream in(dst, std::ios::binary);
  std::string buf(kCopyChunk, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() <= 0) break;
    auto st = upload.value()->write(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
    if (!st) return st.error();
  }
  if (in.bad()) return Error{Errc::internal, "cannot read the thumbnail"};

  store::MediaRecord thumb;
  thumb.id = upload.value()->sha256_hex();
  thumb.mime = "image/jpeg";
  thumb.kind = "image";
  thumb.size = upload.value()->size();
  thumb.width = made->width;
  thumb.height = made->height;
  guard_.enter(thumb.id);
  auto stored = upload.value()->commit();
  Status recorded = stored ? put_record(thumb, user) : Status(stored.error());
  guard_.leave(thumb.id);
  if (!recorded) return recorded.error();
  return std::make_pair(thumb, made->source);
}

void MediaService::authorize(std::optional<std::string> user, std::string id,
                             std::function<void(Result<store::MediaRecord>)> done) {
  if (!media::is_valid_id(id)) return done(not_found(id));
  auto fetch = [this, id, done] {
    store_.get_media(id, [id, done](Result<store::MediaRecord> r) {
      if (!r && r.error().code == Errc::not_found) return done(not_found(id));
      done(std::move(r));
    });
  };
  if (!user) return fetch();
  store_.media_access(*user, id, [id, fetch, done](Result<bool> allowed) {
    if (!allowed) return done(allowed.error());
    if (!allowed.value()) return done(not_found(id));  // as if absent: ids cannot be probed
    fetch();
  });
}

void MediaService::open(store::MediaRecord record, uint64_t offset, uint64_t length,
                        std::function<void(Result<Download>)> done) {
  boost::asio::post(pool_, [this, record = std::move(record), offset, length, done] {
    auto reader = objects_.open(record.id, offset, length);
    if (!reader) {
      if (reader.error().code == Errc::not_found) return done(not_found(record.id));
      return done(reader.error());
    }
    Download d;
    d.record = record;
    d.offset = offset;
    d.length = reader.value()->length();
    d.reader = std::move(reader.value());
    done(std::move(d));
  });
}

void MediaService::read(media::Reader& reader, char* out, size_t n,
                        std::function<void(Result<size_t>)> done) {
  boost::asio::post(pool_, [&reader, out, n, done] { done(reader.read(out, n)); });
}

void MediaService::sign(const std::string& user, std::string id,
                        std::function<void(Result<std::string>)> done) {
  authorize(user, std::move(id), [this, done](Result<store::MediaRecord> r) {
    if (!r) return done(r.error());
    int64_t exp = now_ms() / 1000 + config_.signed_url_ttl_s;
    done(boost::json::serialize(
        boost::json::object{{"url", signer_.url(r->id, exp)}, {"expires_at", exp}}));
  });
}

Status MediaService::verify_signature(std::string_view id, std::string_view exp,
                                      std::string_view sig) const {
  return signer_.verify(id, exp, sig, now_ms() / 1000);
}

// Removes an object unless an upload of it is in flight here, or its record came back (an
// upload of the same bytes committed since the caller decided).
void MediaService::remove_object(const std::string& id, SweepStats& stats) {
  if (!guard_.begin_removal(id)) return;
  auto record = wait_for<store::MediaRecord>([&](auto cb) { store_.get_media(id, std::move(cb)); });
  if (!record && record.error().code == Errc::not_found) {
    auto st = objects_.remove(id);
    if (st)
      ++stats.objects_removed;
    else
      spdlog::warn("media: cannot remove {}: {}", id, st.error().message);
  }
  guard_.end_removal(id);
}

void MediaService::remove_objects(std::vector<std::string> ids) {
  boost::asio::post(pool_, [this, ids = std::move(ids)] {
    SweepStats stats;
    for (const auto& id : ids) remove_object(id, stats);
    if (!ids.empty())
      spdlog::info("media: removed {} of {} objects of a deleted user", stats.objects_removed,
                   ids.size());
  });
}

void MediaService::sweep(std::function<void(SweepStats)> done) {
  boost::asio::post(pool_, [this, done] {
    SweepStats stats;
    const int64_t cutoff_ms = now_ms() - int64_t(config_.orphan_ttl_s) * 1000;
    // 1. Records no message refers to, past the grace period (the store decides atomically
    //    with appends), then their objects.
    for (;;) {
      auto ids = wait_for<std::vector<std::string>>(
          [&](auto cb) { store_.sweep_media(cutoff_ms, kSweepPage, std::move(cb)); });
      if (!ids) {
        spdlog::warn("media sweep: {}", ids.error().message);
        break;
      }
      stats.records_removed += ids->size();
      for (const auto& id : ids.value()) remove_object(id, stats);
      if (ids->size() < kSweepPage) break;
    }
    // 2. Objects with no record (a crash between storing and recording), past the grace.
    std::string after;
    for (;;) {
      auto page = objects_.list(after, kSweepPage);
      if (!page) {
        spdlog::warn("media sweep: {}", page.error().message);
        break;
      }
      for (const auto& o : page.value()) {
        if (o.modified * 1000 >= cutoff_ms) continue;
        auto record =
            wait_for<store::MediaRecord>([&](auto cb) { store_.get_media(o.id, std::move(cb)); });
        if (!record && record.error().code == Errc::not_found) remove_object(o.id, stats);
      }
      if (page->size() < kSweepPage) break;
      after = page->back().id;
    }
    if (stats.records_removed || stats.objects_removed)
      spdlog::info("media sweep: {} unreferenced uploads, {} objects removed",
                   stats.records_removed, stats.objects_removed);
    if (done) done(stats);
  });
}

}  // namespace parley::media_service
