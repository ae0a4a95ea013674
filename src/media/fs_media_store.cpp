#include "media/fs_media_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "media/spool.h"

namespace parley::media {

namespace {

Error sys_error(Errc code, const std::string& what) {
  return Error{code, "media: " + what + ": " + std::strerror(errno)};
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error(Errc::unavailable, "cannot open " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return sys_error(Errc::unavailable, "fsync of " + dir + " failed");
  return ok_status();
}

// mkdir that makes a new directory's entry durable in its parent.
Status ensure_dir(const std::string& dir, const std::string& parent) {
  if (::mkdir(dir.c_str(), 0700) == 0) return fsync_dir(parent);
  if (errno == EEXIST) return ok_status();
  return sys_error(Errc::unavailable, "cannot create " + dir);
}

ObjectInfo info_of(const std::string& id, const struct stat& st) {
  return ObjectInfo{id, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)};
}

// Sorted names of the entries of dir that pass keep(); missing dir = none.
template <class Keep>
std::vector<std::string> sorted_entries(const std::string& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (keep(name)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool is_hex_pair(const std::string& s) {
  return s.size() == 2 && is_valid_id(s + std::string(62, '0'));
}

class FsReader final : public Reader {
 public:
  FsReader(int fd, uint64_t offset, uint64_t length, uint64_t size)
      : fd_(fd), pos_(offset), end_(offset + length), length_(length), size_(size) {}
  ~FsReader() override { ::close(fd_); }

  Result<size_t> read(char* out, size_t n) override {
    if (pos_ >= end_ || n == 0) return size_t{0};
    n = static_cast<size_t>(std::min<uint64_t>(n, end_ - pos_));
    for (;;) {
      ssize_t r = ::pread(fd_, out, n, static_cast<off_t>(pos_));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return sys_error(Errc::unavailable, "read failed");
      if (r == 0) return Error{Errc::internal, "media: object ended before its size"};
      pos_ += static_cast<uint64_t>(r);
      return static_cast<size_t>(r);
    }
  }
  uint64_t length() const override { return length_; }
  uint64_t object_size() const override { return size_; }

 private:
  int fd_;
  uint64_t pos_;
  uint64_t end_;
  uint64_t length_;
  uint64_t size_;
};

}  // namespace

class FsMediaStore::FsUpload final : public SpoolingUpload {
 public:
  FsUpload(std::unique_ptr<Spool> spool, std::string objects)
      : SpoolingUpload(std::move(spool)), objects_(std::move(objects)) {}

 protected:
  Result<ObjectInfo> publish(Spool& spool, const std::string& id) override {
    const std::string dir1 = objects_ + "/" + id.substr(0, 2);
    const std::string dir2 = dir1 + "/" + id.substr(2, 2);
    const std::string target = dir2 + "/" + id;
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) return info_of(id, st);  // dedupe
    if (auto s = ensure_dir(dir1, objects_); !s) return s.error();
    if (auto s = ensure_dir(dir2, dir1); !s) return s.error();
    if (auto s = spool.sync(); !s) return s.error();
    // link() never replaces: EEXIST means a concurrent upload of the same bytes won.
    if (::link(spool.path().c_str(), target.c_str()) != 0 && errno != EEXIST) {
      if (errno != EPERM && errno != EOPNOTSUPP) {
        return sys_error(Errc::unavailable, "cannot store " + id);
      }
      // A filesystem without hard links: rename without replacing, or replace identical bytes.
      if (::renameat2(AT_FDCWD, spool.path().c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) !=
              0 &&
          errno != EEXIST && ::rename(spool.path().c_str(), target.c_str()) != 0) {
        return sys_error(Errc::unavailable, "cannot store " + id);
      }
    }
    if (auto s = fsync_dir(dir2); !s) return s.error();
    if (::stat(target.c_str(), &st) != 0) return sys_error(Errc::internal, "stored " + id);
    return info_of(id, st);
  }

 private:
  std::string objects_;  // a copy: an upload may outlive its store
};

FsMediaStore::FsMediaStore(std::string root)
    : root_(std::move(root)), objects_(root_ + "/objects"), tmp_(root_ + "/tmp") {}

Result<std::unique_ptr<FsMediaStore>> FsMediaStore::open(const std::string& root) {
  std::unique_ptr<FsMediaStore> store(new FsMediaStore(root));
  std::error_code ec;
  std::filesystem::create_directories(store->objects_, ec);
  if (ec) return Error{Errc::internal, "media: cannot create " + store->objects_};
  if (auto st = prepare_spool_dir(store->tmp_); !st) return st.error();
  return store;
}

std::string FsMediaStore::object_path(const std::string& id) const {
  return objects_ + "/" + id.substr(0, 2) + "/" + id.substr(2, 2) + "/" + id;
}

Result<std::unique_ptr<Upload>> FsMediaStore::begin(uint64_t max_bytes) {
  auto spool = Spool::create(tmp_, max_bytes);
  if (!spool) return spool.error();
  return std::unique_ptr<Upload>(std::make_unique<FsUpload>(std::move(spool.value()), objects_));
}

Result<ObjectInfo> FsMediaStore::stat(const std::string& id) {
  if (auto st = check_id(id); !st) return st.error();
  struct stat st {};
  if (::stat(object_path(id).c_str(), &st) != 0) {
    if (errno == ENOENT) return Error{Errc::not_found, "media: no object " + id};
    return sys_error(Errc::unavailable, "cannot stat " + id);
  }
  return info_of(id, st);
}

Result<std::unique_ptr<Reader>> FsMediaStore::open(const std::string& id, uint64_t offset,
                                                   uint64_t length) {
  if (auto st = check_id(id); !st) return st.error();
  int fd = ::open(object_path(id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error{Errc::not_found, "media: no object " + id};
    return sys_error(Errc::unavailable, "cannot open " + id);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto err = sys_error(Errc::unavailable, "cannot stat " + id);
    ::close(fd);
    return err;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size) {
    ::close(fd);
    return Error{Errc::bad_request, "media: range starts past the end of " + id};
  }
  length = std::min(length, size - offset);
  if (length > 0) {
    ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length),
                    POSIX_FADV_SEQUENTIAL);
  }
  return std::unique_ptr<Reader>(std::make_unique<FsReader>(fd, offset, length, size));
}

Status FsMediaStore::remove(const std::string& id) {
  if (auto st = check_id(id); !st) return st;
  // Directories stay: removing one could race with a commit that just created it.
  if (::unlink(object_path(id).c_str()) != 0 && errno != ENOENT) {
    return sys_error(Errc::unavailable, "cannot remove " + id);
  }
  return ok_status();
}

Result<std::vector<ObjectInfo>> FsMediaStore::list(std::string_view after_id, uint32_t limit) {
  if (!after_id.empty()) {
    if (auto st = check_id(after_id); !st) return st.error();
  }
  const std::string after(after_id);
  std::vector<ObjectInfo> out;
  if (limit == 0) return out;
  // Ids sort like their paths: walk ab/, then cd/, then files, each level in order,
  // skipping the subtrees that sort before after_id.
  for (const auto& d1 : sorted_entries(objects_, is_hex_pair)) {
    if (!after.empty() && d1 < after.substr(0, 2)) continue;
    const std::string dir1 = objects_ + "/" + d1;
    for (const auto& d2 : sorted_entries(dir1, is_hex_pair)) {
      if (!after.empty() && d1 + d2 < after.substr(0, 4)) continue;
      const std::string dir2 = dir1 + "/" + d2;
      auto ids = sorted_entries(dir2, [&](const std::string& name) {
        return is_valid_id(name) && name.compare(0, 4, d1 + d2) == 0 && name > after;
      });
      for (const auto& id : ids) {
        struct stat st {};
        if (::stat((dir2 + "/" + id).c_str(), &st) != 0) continue;  // removed meanwhile
        out.push_back(info_of(id, st));
        if (out.size() >= limit) return out;
      }
    }
  }
  return out;
}

}  // namespace parley::media
