#include "media_service/upload_guard.h"

namespace parley::media_service {

void UploadGuard::enter(const std::string& id) {
  std::unique_lock lock(mu_);
  removed_.wait(lock, [&] { return !removing_.contains(id); });
  ++uploading_[id];
}

void UploadGuard::leave(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = uploading_.find(id);
  if (it != uploading_.end() && --it->second == 0) uploading_.erase(it);
}

bool UploadGuard::begin_removal(const std::string& id) {
  std::lock_guard lock(mu_);
  if (uploading_.contains(id)) return false;
  removing_.insert(id);
  return true;
}

void UploadGuard::end_removal(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    removing_.erase(id);
  }
  removed_.notify_all();
}

}  // namespace parley::media_service
