// Updates read back from the store as the frames live delivery sends for them: what the
// ordered streams of session/ read to fill a gap (session/ordered_stream.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace parley::core {

// One update as its push frame, at its position (a user's pts, or a chat's seq).
struct PtsFrame {
  uint64_t pts = 0;
  std::shared_ptr<const std::string> frame;
  // A message the reading user sent: its client_msg_id (the device that sent it learns the
  // pts from its answer, not from this push). Empty for everything else.
  std::string own_send;
};

struct UpdateFrames {
  std::vector<PtsFrame> updates;  // in position order
  bool limited = false;           // the log no longer holds the updates after the asked one
};

}  // namespace parley::core
