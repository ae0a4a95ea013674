// Updates put back in order: what one device receives of its user's update log, in pts order,
// and what a node fans out of a large group, in seq order (DESIGN.md G2).
//
// The store promises gapless pts per user, not an order of completions: a pool of
// database connections completes commits out of order, and pushes from several nodes
// arrive in the order the Bus brings them. The stream puts them back in order per device:
// a push whose predecessors have not arrived is held for a short while (sync.gap_hold_ms);
// if the gap is still open then, the missing updates are read from the store (a catch-up,
// as a sync would) and pushed first. An answer that carries a pts (send, group, mark) takes
// its place in the same order, so a device never sees an update before one it depends on.
//
// A gap that stays open through every retry (an update not yet readable after
// sync.gap_retries reads) is given up: what is held goes out, and the device, seeing a pts
// jump, syncs by itself (PROTOCOL.md §3.4). So is a log that no longer holds the missing
// updates (a snapshot is the client's answer then).
//
// A large group's messages reach a node's subscribers the same way, by the chat's seq: the
// node keeps one stream per chat it has subscribers of (session_hub.h), whose catch-up reads
// the chat's history. Its position is the chat's when the first subscriber came, or else the
// first message's. A gap may also be known without a later message: expect() says which
// updates exist (those published before the node's subscription to the chat took effect,
// which never arrive), and the stream reads them at once.
//
// Every method may be called from any thread; the work runs on the stream's executor (the
// connection's thread for a device).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/errc.h"
#include "core/update_frames.h"
#include "net/transport.h"

namespace parley::session {

using core::PtsFrame;
using CatchUpPage = core::UpdateFrames;

// Reads up to `limit` updates after `after` from the store, as push frames (the same bytes a
// live push carries). `done` runs once, on any thread.
using CatchUp = std::function<void(uint64_t after, uint32_t limit,
                                   std::function<void(Result<CatchUpPage>)> done)>;
// Where the ordered frames go, with the tag they were pushed with (a chat's: the connection
// that sent the message, which does not get it; 0 for frames a catch-up read).
using Sink = std::function<void(std::shared_ptr<const std::string> frame, net::FrameKind kind,
                                uint64_t tag)>;

struct StreamOptions {
  std::chrono::milliseconds hold{100};  // how long a gap may stay open before a catch-up
  uint32_t retries = 10;                // catch-ups of one gap before it is given up
  uint32_t max_held = 1000;             // frames held behind a gap; more: catch up at once
  // Entry points run on the caller's thread under a lock instead of hopping to the executor
  // (which then runs only the timer and the catch-up's answer). A large group's stream runs
  // so: a message in order goes out within the commit's PostBatch, in the commit's order
  // with the answers of the same commit, as it did before there was a stream.
  bool run_inline = false;
};

class OrderedStream : public std::enable_shared_from_this<OrderedStream> {
 public:
  // `label` names the stream in logs ("session 7 of alice", "chat 31").
  OrderedStream(boost::asio::any_io_executor executor, std::string label, StreamOptions options,
                CatchUp catch_up, Sink sink);
  // A device's stream: its frames go to the connection, the catch-up reads `user`'s log.
  static std::shared_ptr<OrderedStream> for_device(
      std::shared_ptr<net::Transport> transport, const std::string& user, StreamOptions options,
      std::function<void(const std::string& user, uint64_t after, uint32_t limit,
                         std::function<void(Result<CatchUpPage>)> done)>
          read_log);

  // The position is known: `first` (a device's auth answer; may be null) goes out, then
  // whatever was pushed or answered since, from `pts` + 1 on. No pts (it could not be read,
  // or a chat's, which is not read): the first push sets the position.
  void start(std::optional<uint64_t> pts, std::shared_ptr<const std::string> first);
  // A live update for the device's user at `pts` (0: not in the log, sent as it comes).
  void push(uint64_t pts, std::shared_ptr<const std::string> frame, uint64_t tag = 0);
  // The answer to one of the device's own writes; `pts` is the write's place in the user's
  // log (0: none). An answer is never dropped: one for a pts already passed goes at once.
  // `own_send`: the client_msg_id of a send announced with await_answer().
  void answer(uint64_t pts, std::shared_ptr<const std::string> frame, std::string own_send = {});
  // A send of this device (its client_msg_id) whose answer will come: until it does, a
  // catch-up that reads the message stops before it instead of pushing it, so that the
  // device learns its pts from the answer only (PROTOCOL.md §3.3), however slow the commit.
  void await_answer(std::string own_send);
  // Updates up to `pts` exist, whether or not any of them arrives: those past the position
  // are read from the store at once (then pushed in order, like a gap's). A later, higher
  // call raises it; a lower one changes nothing.
  void expect(uint64_t pts);
  // The connection closed: nothing more goes out, the timer stops.
  void stop();

  boost::asio::any_io_executor executor() const { return executor_; }
  // For tests: the next pts the device expects (0 before it is known).
  uint64_t next_pts_for_test() const { return next_; }

 private:
  struct Held {
    std::shared_ptr<const std::string> frame;
    net::FrameKind kind = net::FrameKind::push;
    uint64_t tag = 0;
  };
  // On the connection's thread.
  void on_start(std::optional<uint64_t> pts, std::shared_ptr<const std::string> first);
  void on_frame(uint64_t pts, Held held);
  void accept(uint64_t pts, Held held);
  void drain();
  void arm_timer();
  void disarm_timer();
  void catch_up();
  void on_caught_up(Result<CatchUpPage> page);
  // Whether the gap is at an update that an awaited answer carries (a catch-up stopped there).
  bool held_for_answer() const { return answer_gap_ != 0 && answer_gap_ == next_; }
  void give_up(const char* why);
  // Whether updates are missing: some are held behind a gap, or expect() named some.
  bool missing() const { return !held_.empty() || (next_ != 0 && expected_ >= next_); }
  // Runs fn on the executor, or (run_inline) here under mu_.
  template <class Fn>
  void run(Fn&& fn);

  const boost::asio::any_io_executor executor_;
  const std::string label_;
  const StreamOptions options_;
  const CatchUp catch_up_;
  const Sink sink_;
  boost::asio::steady_timer timer_;
  std::mutex mu_;  // run_inline: guards everything below

  bool started_ = false;
  bool stopped_ = false;
  bool timer_armed_ = false;
  uint64_t timer_generation_ = 0;
  bool catching_up_ = false;
  uint64_t next_ = 0;      // the pts the device gets next; 0: unknown yet
  uint64_t expected_ = 0;  // the highest pts known to exist (expect())
  std::map<uint64_t, Held> held_;
  std::multiset<std::string> awaited_;  // client_msg_ids of this device's sends in flight
  uint64_t answer_gap_ = 0;             // where a catch-up stopped for an awaited answer
  std::string answer_gap_send_;         // ... and the send whose answer it waits for
  uint64_t retried_gap_ = 0;            // the gap (its first pts) the retries count for
  uint32_t retries_ = 0;
};

}  // namespace parley::session
