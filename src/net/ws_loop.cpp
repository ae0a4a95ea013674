#include "net/ws_loop.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cassert>

namespace asio = boost::asio;

namespace parley::net {

asio::io_context::id WsLoop::id;

WsLoop::WsLoop(asio::io_context& ioc)
    : asio::io_context::service(ioc),
      read_buffer_(std::make_unique<char[]>(kReadBufferBytes)),
      slots_(kSlots),
      timer_(ioc) {}

WsLoop::~WsLoop() = default;

WsLoop& WsLoop::of(const asio::any_io_executor& executor) {
  auto* io = executor.target<asio::io_context::executor_type>();
  assert(io != nullptr && "WebSocket connections run on an io_context");
  return asio::use_service<WsLoop>(io->context());
}

void WsLoop::shutdown() {
  // The io_context is going away: forget every entry (their owners are being destroyed
  // with the handlers that held them) and the pending tick.
  for (auto& slot : slots_) slot.clear();
  armed_ = false;
  flushes_.clear();
  flushing_.clear();
}

void WsLoop::request_flush(std::shared_ptr<WsFlushable> entry) {
  if (flushes_.empty())
    asio::post(static_cast<asio::io_context&>(context()), [this] { run_flushes(); });
  flushes_.push_back(std::move(entry));
}

void WsLoop::run_flushes() {
  // Swapped out first: a flush that cannot finish in this turn asks again, for the next.
  flushing_.swap(flushes_);
  for (size_t i = 0; i < flushing_.size(); ++i) {
    try {
      flushing_[i]->flush_now();
    } catch (...) {
      // Keep the rest: they are flushed in the next turn.
      for (size_t j = i + 1; j < flushing_.size(); ++j) request_flush(std::move(flushing_[j]));
      flushing_.clear();
      throw;
    }
  }
  flushing_.clear();
}

uint64_t WsLoop::tick_of(WsClock::time_point t) {
  return static_cast<uint64_t>(t.time_since_epoch() / kTick);
}

void WsLoop::schedule(WsTimed& entry, WsClock::time_point due) {
  entry.hook_.unlink();
  const uint64_t now_tick = tick_of(WsClock::now());
  if (!armed_) next_tick_ = now_tick + 1;
  // Rounded up, never into a slot that has run already (nor the one running), never past
  // the wheel's span.
  const uint64_t first = std::max(next_tick_, now_tick + 1);
  const uint64_t span_end = std::max(first, next_tick_ + kSlots - 1);
  const uint64_t tick = std::min(std::max(tick_of(due) + 1, first), span_end);
  slots_[tick % kSlots].push_back(entry);
  arm();
}

void WsLoop::arm() {
  if (armed_) return;
  armed_ = true;
  timer_.expires_at(WsClock::time_point(
      std::chrono::duration_cast<WsClock::duration>(kTick * static_cast<int64_t>(next_tick_))));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_tick();  // (an error: the io_context is shutting down)
  });
}

void WsLoop::on_tick() {
  const auto now = WsClock::now();
  const uint64_t last = tick_of(now);
  // After a long stall every slot is run once, not once per missed tick.
  if (last >= next_tick_ + kSlots) next_tick_ = last + 1 - kSlots;
  while (next_tick_ <= last) {
    Slot due;
    due.splice(due.end(), slots_[next_tick_++ % kSlots]);
    while (!due.empty()) {
      WsTimed& entry = due.front();
      due.pop_front();
      try {
        entry.on_due(now);  // may schedule itself again, in a later slot
      } catch (...) {
        // The I/O thread logs it and runs on: keep the wheel turning for the others.
        slots_[next_tick_ % kSlots].splice(slots_[next_tick_ % kSlots].end(), due);
        armed_ = false;
        arm();
        throw;
      }
    }
  }
  // Still armed while the slots ran, so that schedule() kept next_tick_; now re-armed only
  // if anything is left to wake.
  armed_ = false;
  for (const auto& slot : slots_)
    if (!slot.empty()) return arm();
}

}  // namespace parley::net
