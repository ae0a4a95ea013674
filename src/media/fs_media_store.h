// MediaStore in the local filesystem (the single-node default).
//
// Layout under root (data_dir/media):
//   objects/ab/cd/<id>   the object whose id starts with "abcd", mode 0600, never modified
//   tmp/upload-*.part    uploads in progress; emptied when the store opens
// Durability: commit fsyncs the spool file, hard-links it to its final name (atomic, and
// never replacing: an existing id is the dedupe case) and fsyncs the directory, so a
// committed object survives a power cut and a crash never leaves a partial object.
#pragma once

#include <memory>
#include <string>

#include "media/media_store.h"

namespace parley::media {

class FsMediaStore final : public MediaStore {
 public:
  // Creates root/objects and root/tmp as needed and empties root/tmp.
  static Result<std::unique_ptr<FsMediaStore>> open(const std::string& root);

  Result<std::unique_ptr<Upload>> begin(uint64_t max_bytes) override;
  Result<ObjectInfo> stat(const std::string& id) override;
  Result<std::unique_ptr<Reader>> open(const std::string& id, uint64_t offset,
                                       uint64_t length) override;
  Status remove(const std::string& id) override;
  Result<std::vector<ObjectInfo>> list(std::string_view after_id, uint32_t limit) override;

  const std::string& spool_dir() const { return tmp_; }
  // root/objects/ab/cd/<id>; id must be valid.
  std::string object_path(const std::string& id) const;

 private:
  explicit FsMediaStore(std::string root);
  class FsUpload;

  std::string root_;
  std::string objects_;
  std::string tmp_;
};

}  // namespace parley::media
