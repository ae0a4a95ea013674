#include "multinode/delivery_checker.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/json_util.h"

namespace parley::test {

void DeliveryChecker::acked(const boost::json::object& r) {
  ASSERT_FALSE(r.empty()) << "a send was not acknowledged";
  acked_.emplace(int_field(r, "chat_id"), int_field(r, "seq"));
}

void DeliveryChecker::expect_all_delivered(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int index = 0;
  for (auto& [device, seen] : devices_) {
    ++index;
    while (
        !std::includes(seen.messages.begin(), seen.messages.end(), acked_.begin(), acked_.end())) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto f = device->wait_for(
          [](const WsClient::Frame& frame) {
            return str_field(frame, "type") == "message" && frame.contains("pts");
          },
          left);
      if (!f) break;
      const auto& m = obj_field(*f, "message");
      const std::int64_t chat = int_field(m, "chat_id"), seq = int_field(m, "seq");
      const std::int64_t pts = int_field(*f, "pts");
      EXPECT_TRUE(seen.messages.emplace(chat, seq).second)
          << "device " << index << ": chat " << chat << " seq " << seq << " twice";
      auto& last = seen.last_seq[chat];
      EXPECT_GT(seq, last) << "device " << index << ": chat " << chat << " seq " << seq << " after "
                           << last;
      last = seq;
      if (seen.last_pts != 0) {
        EXPECT_EQ(pts, seen.last_pts + 1) << "device " << index << ": a pts gap or reorder";
      }
      seen.last_pts = pts;
    }
    for (const auto& [chat, seq] : acked_)
      EXPECT_TRUE(seen.messages.count({chat, seq}))
          << "device " << index << " never got chat " << chat << " seq " << seq;
  }
}

size_t DeliveryChecker::count(WsClient& device) const {
  auto it = devices_.find(&device);
  return it == devices_.end() ? 0 : it->second.messages.size();
}

}  // namespace parley::test
