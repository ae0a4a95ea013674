// Keeps housekeeping and uploads of the same bytes apart within this process: an object
// being uploaded is never removed, and an upload of an object being removed waits until the
// removal is over (then stores it again).
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace parley::media_service {

class UploadGuard {
 public:
  // Marks `id` as being uploaded; waits while a removal of it runs.
  void enter(const std::string& id);
  void leave(const std::string& id);
  // Marks `id` as being removed; false (nothing marked) while an upload of it is in flight.
  bool begin_removal(const std::string& id);
  void end_removal(const std::string& id);

 private:
  std::mutex mu_;
  std::condition_variable removed_;
  std::unordered_map<std::string, int> uploading_;
  std::unordered_set<std::string> removing_;
};

}  // namespace parley::media_service
