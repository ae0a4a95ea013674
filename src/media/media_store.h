// The MediaStore seam: content-addressed, streamed blob storage for attachments.
//
// Contract every backend keeps (media_store_conformance.h tests it):
// - An object's id is the lowercase hex SHA-256 of its bytes (64 characters). The store
//   computes it from the bytes it received; a client's claimed hash is never trusted.
// - Objects are immutable. Storing bytes whose id already exists stores nothing new (dedupe)
//   and returns the same id, also when several uploads of the same bytes commit at once.
// - Data moves in bounded pieces both ways: an upload spools to a local file while it is
//   hashed, a Reader streams a byte range; no call holds a whole object in memory.
// - Nothing is visible under an id until commit() has returned it, and then all of it is.
//   An aborted, oversized, destroyed or crashed upload leaves nothing behind: its spool file
//   is removed at once, and files a crash left in the spool directory are removed when the
//   store opens.
// - Every id argument is validated (is_valid_id); anything else is bad_request, so no id
//   can name a path or key outside the store.
// - MediaStore is thread-safe. An Upload or a Reader is used by one thread at a time. Every
//   call blocks (disk or network): the server runs them on its media thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/errc.h"

namespace parley::media {

// True for exactly 64 characters of [0-9a-f].
bool is_valid_id(std::string_view id);
// ok, or bad_request naming the problem.
Status check_id(std::string_view id);

struct ObjectInfo {
  std::string id;
  uint64_t size = 0;
  int64_t modified = 0;  // Unix seconds when the object was stored (for housekeeping by age)
};

// A streamed upload: write() chunks in order, then commit() or abort().
class Upload {
 public:
  virtual ~Upload() = default;  // an uncommitted upload aborts

  // Appends a chunk. too_large once the total would pass the upload's max_bytes: the
  // upload is then dead (its spool file is already gone) and every later call fails.
  virtual Status write(std::string_view chunk) = 0;
  // Bytes written so far.
  virtual uint64_t size() const = 0;
  // Lowercase hex SHA-256 of the bytes written so far: the id commit() will return.
  virtual std::string sha256_hex() const = 0;
  // Local file holding exactly the bytes written so far, for inspection before commit
  // (content sniffing, thumbnails). Read it, never change it; it is gone after commit/abort.
  virtual const std::string& spool_path() const = 0;
  // Stores the object durably and returns its id and size. Dedupes. After commit (ok or
  // not) the upload is finished; a failed commit stored nothing and may be retried with a
  // new upload.
  virtual Result<ObjectInfo> commit() = 0;
  // Drops the upload and its spool file. Idempotent.
  virtual void abort() = 0;
};

// A byte range of one object, streamed.
class Reader {
 public:
  virtual ~Reader() = default;
  // Up to n bytes into out; 0 at the end of the range. An error (unavailable when the
  // backend failed mid-way) ends the stream.
  virtual Result<size_t> read(char* out, size_t n) = 0;
  // Bytes this reader delivers in all: the requested range clipped to the object
  // (Content-Length).
  virtual uint64_t length() const = 0;
  // Size of the whole object (Content-Range).
  virtual uint64_t object_size() const = 0;
};

class MediaStore {
 public:
  virtual ~MediaStore() = default;

  // Starts an upload of at most max_bytes.
  virtual Result<std::unique_ptr<Upload>> begin(uint64_t max_bytes) = 0;
  // not_found if absent.
  virtual Result<ObjectInfo> stat(const std::string& id) = 0;
  // Bytes [offset, offset + length) of the object, length clipped to the object's end.
  // offset == size gives an empty reader; offset > size is bad_request; not_found if absent.
  virtual Result<std::unique_ptr<Reader>> open(const std::string& id, uint64_t offset,
                                               uint64_t length) = 0;
  // ok if absent. A Reader already open may still finish its range.
  virtual Status remove(const std::string& id) = 0;
  // Up to `limit` objects with ids greater than after_id (empty = from the start), in
  // ascending id order; fewer than `limit` means the end. For housekeeping: the caller
  // decides by `modified` which unreferenced objects are old enough to remove.
  virtual Result<std::vector<ObjectInfo>> list(std::string_view after_id, uint32_t limit) = 0;
};

}  // namespace parley::media
