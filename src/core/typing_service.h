// Typing indicators (docs/PROTOCOL.md §3.12): checked against membership, passed on to the
// chat's other members' live devices, rate-limited per user and chat, expired by a sweep.
// Nothing here touches the disk: state lives in memory while someone types.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "core/router.h"
#include "proto/frames.h"
#include "store/store.h"

namespace parley::core {

class TypingService {
 public:
  using Clock = std::chrono::steady_clock;
  TypingService(store::Store& store, Router& router, const TypingConfig& config);
  ~TypingService();

  // Starts the expiry sweep on `executor`; stop() cancels it.
  void start(boost::asio::any_io_executor executor);
  void stop();

  // A typing request from `user` on connection `conn_id`. Answers {"forwarded":bool}.
  void typing(const std::string& user, uint64_t conn_id, const proto::TypingRequest& req,
              std::function<void(Result<std::string>)> done);
  // The user's message committed: its typing in that chat stops.
  void message_sent(const store::Message& m);
  // The connection closed: whatever it was typing stops.
  void connection_closed(uint64_t conn_id);
  // Sends the stops that are due at `now` (the sweep calls it; tests may too).
  void expire(Clock::time_point now);
  size_t active() const;

 private:
  // Who types where. A direct chat with no message yet has chat_id 0 and is keyed by peer.
  struct Key {
    std::string user;
    uint64_t chat_id = 0;
    std::string peer;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    store::Audience audience;
    uint64_t conn_id = 0;
    Clock::time_point expires;
    Clock::time_point last_forward;
  };
  void forward(const Key& key, const Entry& e, bool start, uint64_t except_conn);
  void arm();

  store::Store& store_;
  Router& router_;
  const TypingConfig& config_;
  mutable std::mutex mu_;
  std::map<Key, Entry> entries_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  bool stopped_ = false;
};

}  // namespace parley::core
