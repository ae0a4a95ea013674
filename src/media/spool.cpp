#include "media/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace parley::media {

namespace fs = std::filesystem;

Status prepare_spool_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{Errc::internal, "media: cannot create " + dir + ": " + ec.message()};
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (rm) return Error{Errc::internal, "media: cannot remove " + it->path().string()};
  }
  if (ec) return Error{Errc::internal, "media: cannot list " + dir + ": " + ec.message()};
  return ok_status();
}

Result<std::unique_ptr<Spool>> Spool::create(const std::string& dir, uint64_t max_bytes) {
  std::string path = dir + "/upload-XXXXXX.part";
  int fd = ::mkostemps(path.data(), 5, O_CLOEXEC);
  if (fd < 0) {
    return Error{Errc::unavailable,
                 "media: cannot create a spool file in " + dir + ": " + std::strerror(errno)};
  }
  return std::unique_ptr<Spool>(new Spool(std::move(path), fd, max_bytes));
}

Spool::~Spool() { discard(); }

Status Spool::write(std::string_view chunk) {
  if (fd_ < 0) return Error{Errc::internal, "media: spool is closed"};
  if (chunk.size() > max_bytes_ - size_) {
    return Error{Errc::too_large,
                 "media: upload is larger than " + std::to_string(max_bytes_) + " bytes"};
  }
  const char* p = chunk.data();
  size_t left = chunk.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Disk full or I/O error: the upload cannot go on, and its bytes are no use.
      return Error{Errc::unavailable,
                   std::string("media: spool write failed: ") + std::strerror(errno)};
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  hash_.update(chunk);
  size_ += chunk.size();
  return ok_status();
}

Status Spool::sync() {
  if (fd_ < 0) return Error{Errc::internal, "media: spool is closed"};
  if (::fsync(fd_) != 0) {
    return Error{Errc::unavailable, std::string("media: fsync failed: ") + std::strerror(errno)};
  }
  return ok_status();
}

void Spool::discard() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(path_.c_str());  // ENOENT is fine: a backend may have renamed it into place
}

Status SpoolingUpload::check_open() const {
  switch (state_) {
    case State::open:
      return ok_status();
    case State::failed:
      return Error{Errc::bad_request, "media: the upload failed earlier"};
    case State::committed:
      return Error{Errc::bad_request, "media: the upload is already committed"};
    case State::aborted:
      break;
  }
  return Error{Errc::bad_request, "media: the upload was aborted"};
}

Status SpoolingUpload::write(std::string_view chunk) {
  if (auto st = check_open(); !st) return st;
  auto st = spool_->write(chunk);
  if (!st) {
    state_ = State::failed;
    spool_->discard();
  }
  return st;
}

Result<ObjectInfo> SpoolingUpload::commit() {
  if (auto st = check_open(); !st) return st.error();
  const std::string id = spool_->sha256_hex();
  auto r = publish(*spool_, id);
  spool_->discard();
  state_ = r ? State::committed : State::failed;
  return r;
}

void SpoolingUpload::abort() {
  if (state_ == State::open) state_ = State::aborted;
  spool_->discard();
}

}  // namespace parley::media
