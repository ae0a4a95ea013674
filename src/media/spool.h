// What both backends share for uploads: a spool file that hashes what is written to it, and
// an Upload that spools and hands the finished file to its backend to publish.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/errc.h"
#include "media/media_store.h"
#include "media/sha256.h"

namespace parley::media {

// Creates `dir` (and its parents) if missing and removes every file in it: spool files a
// crashed process left behind. Run once when a store opens, before any upload begins.
Status prepare_spool_dir(const std::string& dir);

// A temporary file `<dir>/upload-XXXXXX.part` (mode 0600) holding the bytes written so far and
// their running SHA-256. Removed on destruction or discard().
class Spool {
 public:
  static Result<std::unique_ptr<Spool>> create(const std::string& dir, uint64_t max_bytes);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // too_large (nothing of the chunk written) once size() would pass max_bytes.
  Status write(std::string_view chunk);
  // fsync of the file's data.
  Status sync();
  // Closes and unlinks the file now. Idempotent.
  void discard();

  uint64_t size() const { return size_; }
  std::string sha256_hex() const { return hash_.hex_digest(); }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  Spool(std::string path, int fd, uint64_t max_bytes)
      : path_(std::move(path)), fd_(fd), max_bytes_(max_bytes) {}

  std::string path_;
  int fd_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  Sha256 hash_;
};

// An Upload that spools locally; commit() passes the spool and its id to publish().
class SpoolingUpload : public Upload {
 public:
  explicit SpoolingUpload(std::unique_ptr<Spool> spool) : spool_(std::move(spool)) {}
  ~SpoolingUpload() override { abort(); }

  Status write(std::string_view chunk) final;
  uint64_t size() const final { return spool_->size(); }
  std::string sha256_hex() const final { return spool_->sha256_hex(); }
  const std::string& spool_path() const final { return spool_->path(); }
  Result<ObjectInfo> commit() final;
  void abort() final;

 protected:
  // Makes the spooled bytes visible under `id`, or finds them already there. The spool is
  // discarded afterwards either way.
  virtual Result<ObjectInfo> publish(Spool& spool, const std::string& id) = 0;

 private:
  enum class State { open, failed, committed, aborted };
  Status check_open() const;

  std::unique_ptr<Spool> spool_;
  State state_ = State::open;
};

}  // namespace parley::media
