// The delivery checker of the multi-node tests: every acknowledged message reaches every
// watched device exactly once, in seq order in its chat, with gapless pts per device
// (DESIGN.md G2, G3, G4 across nodes).
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "support/ws_client.h"

namespace parley::test {

class DeliveryChecker {
 public:
  // A device that must receive every acknowledged message (as pushes with pts).
  void watch(WsClient& device) { devices_[&device]; }
  // The `result` of a send that was acknowledged.
  void acked(const boost::json::object& send_result);
  // Reads each device's pushes until it has every acknowledged message or `timeout` passes;
  // adds a test failure for a message missing, seen twice, out of seq order in its chat, or
  // a pts that is not the previous one + 1.
  void expect_all_delivered(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Messages the device received so far.
  size_t count(WsClient& device) const;

 private:
  struct Seen {
    std::set<std::pair<std::int64_t, std::int64_t>> messages;  // (chat, seq)
    std::map<std::int64_t, std::int64_t> last_seq;             // per chat
    std::int64_t last_pts = 0;
  };
  std::set<std::pair<std::int64_t, std::int64_t>> acked_;
  std::map<WsClient*, Seen> devices_;
};

}  // namespace parley::test
