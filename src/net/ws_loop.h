// What the WebSocket connections of one I/O thread share: the buffer they read into, the
// buffer they serialise frames through, and one timing wheel for all their timeouts. Kept
// per thread so that an idle connection holds neither buffers nor a timer of its own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace parley::net {

using WsClock = std::chrono::steady_clock;

// Something the wheel wakes up at (or a little after) the time it asked for.
class WsTimed {
 public:
  // Called on the loop's thread; the entry is no longer scheduled when this runs.
  virtual void on_due(WsClock::time_point now) = 0;
  bool scheduled() const { return hook_.is_linked(); }

 protected:
  virtual ~WsTimed() = default;

 private:
  friend class WsLoop;
  // Unlinks itself when destroyed (only once the loop is gone: otherwise the owner cancels
  // on its own thread first).
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
      hook_;
};

// Something that writes what it has queued when the loop asks it to.
class WsFlushable {
 public:
  virtual void flush_now() = 0;

 protected:
  virtual ~WsFlushable() = default;
};

// An io_context service: one per I/O thread's io_context. Every method runs on that thread.
class WsLoop final : public boost::asio::io_context::service {
 public:
  static boost::asio::io_context::id id;
  // The granularity of every WebSocket timeout.
  static constexpr auto kTick = std::chrono::milliseconds(250);
  static constexpr size_t kReadBufferBytes = 64 * 1024;

  explicit WsLoop(boost::asio::io_context& ioc);
  ~WsLoop() override;

  // The loop of the io_context behind `executor` (which must be an io_context's).
  static WsLoop& of(const boost::asio::any_io_executor& executor);

  // Scratch space shared by the thread's connections; valid until the caller returns to
  // the event loop. read_buffer() is kReadBufferBytes long.
  char* read_buffer() { return read_buffer_.get(); }
  std::string& write_buffer() { return write_buffer_; }

  // Wakes `entry` at `due`, rounded up to the next tick (replacing an earlier schedule).
  // Deadlines further away than the wheel spans wake early; on_due checks the real time.
  void schedule(WsTimed& entry, WsClock::time_point due);
  void cancel(WsTimed& entry) { entry.hook_.unlink(); }

  // Calls `entry->flush_now()` once the tasks queued so far have run: every connection that
  // queued frames in this turn of the event loop is flushed by one posted task, not one each.
  void request_flush(std::shared_ptr<WsFlushable> entry);

 private:
  using Hook = boost::intrusive::member_hook<WsTimed, decltype(WsTimed::hook_), &WsTimed::hook_>;
  using Slot = boost::intrusive::list<WsTimed, Hook, boost::intrusive::constant_time_size<false>>;
  static constexpr size_t kSlots = 512;  // 128 s at 250 ms

  void shutdown() override;
  static uint64_t tick_of(WsClock::time_point t);
  void arm();
  void on_tick();
  void run_flushes();

  std::unique_ptr<char[]> read_buffer_;
  std::string write_buffer_;
  std::vector<Slot> slots_;
  uint64_t next_tick_ = 0;  // the next tick whose slot has not been run
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  std::vector<std::shared_ptr<WsFlushable>> flushes_;  // requested since the last run
  std::vector<std::shared_ptr<WsFlushable>> flushing_;
};

}  // namespace parley::net
