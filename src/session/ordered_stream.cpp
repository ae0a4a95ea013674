#include "session/ordered_stream.h"

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/post_batch.h"

namespace parley::session {

OrderedStream::OrderedStream(boost::asio::any_io_executor executor, std::string label,
                             StreamOptions options, CatchUp catch_up, Sink sink)
    : executor_(std::move(executor)),
      label_(std::move(label)),
      options_(options),
      catch_up_(std::move(catch_up)),
      sink_(std::move(sink)),
      timer_(executor_) {}

std::shared_ptr<OrderedStream> OrderedStream::for_device(
    std::shared_ptr<net::Transport> transport, const std::string& user, StreamOptions options,
    std::function<void(const std::string& user, uint64_t after, uint32_t limit,
                       std::function<void(Result<CatchUpPage>)> done)>
        read_log) {
  auto executor = transport->executor();
  auto label = fmt::format("session {} of {}", transport->id(), user);
  // On the connection's thread, send() queues at once: the order here is the wire's.
  return std::make_shared<OrderedStream>(
      std::move(executor), std::move(label), options,
      [user, read_log = std::move(read_log)](uint64_t after, uint32_t limit,
                                             std::function<void(Result<CatchUpPage>)> done) {
        read_log(user, after, limit, std::move(done));
      },
      [transport = std::move(transport)](std::shared_ptr<const std::string> frame,
                                         net::FrameKind kind,
                                         uint64_t) { transport->send(std::move(frame), kind); });
}

// Each entry point hops to the stream's thread (a device's: its connection's), through the
// caller's PostBatch when it has one: what one commit sends reaches the thread in one task, in
// the order it was sent. A stream that runs inline does the work here, under its lock.
template <class Fn>
void OrderedStream::run(Fn&& fn) {
  if (options_.run_inline) {
    std::lock_guard lock(mu_);
    return fn();
  }
  PostBatch::post(executor_,
                  [self = shared_from_this(), fn = std::forward<Fn>(fn)]() mutable { fn(); });
}

void OrderedStream::start(std::optional<uint64_t> pts, std::shared_ptr<const std::string> first) {
  run([this, pts, first = std::move(first)]() mutable { on_start(pts, std::move(first)); });
}

void OrderedStream::push(uint64_t pts, std::shared_ptr<const std::string> frame, uint64_t tag) {
  run([this, pts, frame = std::move(frame), tag]() mutable {
    on_frame(pts, Held{std::move(frame), net::FrameKind::push, tag});
  });
}

void OrderedStream::answer(uint64_t pts, std::shared_ptr<const std::string> frame,
                           std::string own_send) {
  run([this, pts, frame = std::move(frame), own_send = std::move(own_send)]() mutable {
    if (!own_send.empty())
      if (auto it = awaited_.find(own_send); it != awaited_.end()) awaited_.erase(it);
    if (own_send == answer_gap_send_) answer_gap_ = 0;  // the gap's own answer: look again
    on_frame(pts, Held{std::move(frame), net::FrameKind::answer, 0});
    // An answer without a pts (an error) may leave the gap open: its update, if it was
    // stored, is pushed by the next catch-up.
    if (started_ && !stopped_ && pts == 0) drain();
  });
}

void OrderedStream::await_answer(std::string own_send) {
  if (own_send.empty()) return;
  run([this, own_send = std::move(own_send)]() mutable {
    if (!stopped_) awaited_.insert(std::move(own_send));
  });
}

void OrderedStream::expect(uint64_t pts) {
  run([this, pts] {
    if (stopped_ || pts <= expected_) return;
    expected_ = pts;
    if (started_) drain();  // else on_start() drains
  });
}

void OrderedStream::stop() {
  run([this] {
    stopped_ = true;
    held_.clear();
    disarm_timer();
  });
}

void OrderedStream::on_start(std::optional<uint64_t> pts,
                             std::shared_ptr<const std::string> first) {
  if (stopped_ || started_) return;
  started_ = true;
  if (first) sink_(std::move(first), net::FrameKind::answer, 0);
  // What arrived meanwhile is held; pushes at or below the position are in the device's
  // sync already, answers go regardless.
  if (pts)
    next_ = *pts + 1;
  else if (!held_.empty())
    next_ = held_.begin()->first;
  drain();
}

void OrderedStream::on_frame(uint64_t pts, Held held) {
  if (stopped_) return;
  if (pts == 0) return sink_(std::move(held.frame), held.kind, held.tag);  // not in the order
  if (!started_) {
    held_.try_emplace(pts, std::move(held));
    // A flood before the position is known: the oldest pushes go (a catch-up reads them).
    while (held_.size() > options_.max_held) {
      auto oldest = std::find_if(held_.begin(), held_.end(), [](const auto& h) {
        return h.second.kind == net::FrameKind::push;
      });
      if (oldest == held_.end()) break;
      held_.erase(oldest);
    }
    return;
  }
  accept(pts, std::move(held));
  drain();
}

void OrderedStream::accept(uint64_t pts, Held held) {
  if (next_ == 0) next_ = pts;  // the position is not known: the first update sets it
  if (pts < next_) {
    // A push the device has (a catch-up read it first); an answer is still awaited.
    if (held.kind == net::FrameKind::answer) sink_(std::move(held.frame), held.kind, 0);
    return;
  }
  // One place, two frames: a catch-up's push of the device's own send, and that send's
  // answer held until its turn. The answer takes the place (it is never dropped), the push
  // goes nowhere: the sending device learns of its message from the answer only.
  if (held.kind == net::FrameKind::push)
    if (auto h = held_.find(pts); h != held_.end() && h->second.kind == net::FrameKind::answer)
      return;
  if (pts == next_) {
    sink_(std::move(held.frame), held.kind, held.tag);
    ++next_;
    return;
  }
  auto [at, fresh] = held_.try_emplace(pts, std::move(held));
  if (!fresh && held.kind == net::FrameKind::answer) at->second = std::move(held);
}

void OrderedStream::drain() {
  while (!held_.empty() && held_.begin()->first <= next_) {
    auto node = held_.extract(held_.begin());
    accept(node.key(), std::move(node.mapped()));
  }
  if (!missing()) {
    disarm_timer();
    retries_ = 0;
    return;
  }
  if (held_.empty()) {
    // Nothing arrived past the gap, but it is known to exist (expect()): it does not come by
    // itself, so it is read at once, unless a read or a retry of one is under way.
    if (!timer_armed_ && !held_for_answer()) catch_up();
    return;
  }
  if (held_.size() > 2 * static_cast<size_t>(options_.max_held))
    return give_up("too many updates held behind it");
  if (held_.size() > options_.max_held && !catching_up_) {
    disarm_timer();
    return catch_up();
  }
  arm_timer();
}

void OrderedStream::arm_timer() {
  // A gap that an awaited answer fills needs no timer: the answer comes (or the connection
  // closes), and drains then.
  if (timer_armed_ || catching_up_ || held_for_answer()) return;
  timer_armed_ = true;
  timer_.expires_after(options_.hold);
  const uint64_t generation = ++timer_generation_;
  timer_.async_wait([weak = weak_from_this(), generation](boost::system::error_code) {
    auto self = weak.lock();
    if (!self) return;
    std::unique_lock lock(self->mu_, std::defer_lock);
    if (self->options_.run_inline) lock.lock();
    // Disarmed since (a cancel does not stop a handler that is queued already), or stopped.
    if (self->stopped_ || generation != self->timer_generation_) return;
    self->timer_armed_ = false;
    self->catch_up();
  });
}

void OrderedStream::disarm_timer() {
  if (!timer_armed_) return;
  timer_armed_ = false;
  ++timer_generation_;
  timer_.cancel();
}

void OrderedStream::catch_up() {
  if (stopped_ || catching_up_ || next_ == 0 || !missing()) return;
  // Up to the first held update, or to the last expected one: drain() sent everything before.
  const uint64_t gap = held_.empty() ? expected_ + 1 - next_ : held_.begin()->first - next_;
  catching_up_ = true;
  const auto limit =
      static_cast<uint32_t>(std::min<uint64_t>(gap, std::max(options_.max_held, 1u)));
  catch_up_(next_ - 1, limit, [self = shared_from_this()](Result<CatchUpPage> page) mutable {
    // Never inline here: the read may complete before catch_up_ returns, under the lock.
    PostBatch::post(self->executor_, [self, page = std::move(page)]() mutable {
      std::unique_lock lock(self->mu_, std::defer_lock);
      if (self->options_.run_inline) lock.lock();
      self->on_caught_up(std::move(page));
    });
  });
}

void OrderedStream::on_caught_up(Result<CatchUpPage> page) {
  catching_up_ = false;
  if (stopped_) return;
  if (page && page->limited) return give_up("the update log no longer holds it");
  if (page)
    for (auto& u : page->updates) {
      // The device's own send whose answer is on its way: that answer carries this pts, so
      // nothing from here on goes before it.
      if (!u.own_send.empty() && u.pts >= next_ && awaited_.count(u.own_send)) {
        answer_gap_ = u.pts;
        answer_gap_send_ = u.own_send;
        break;
      }
      accept(u.pts, Held{std::move(u.frame), net::FrameKind::push, 0});
    }
  while (!held_.empty() && held_.begin()->first <= next_) {
    auto node = held_.extract(held_.begin());
    accept(node.key(), std::move(node.mapped()));
  }
  if (!missing()) {
    retries_ = 0;
    return;
  }
  if (held_for_answer()) return;  // answer() drains
  // The gap is open still: its update is not readable yet (committed out of order), or the
  // read failed. Another hold, up to sync.gap_retries times.
  if (retried_gap_ != next_) {
    retried_gap_ = next_;
    retries_ = 0;
  }
  if (++retries_ > options_.retries)
    return give_up(page ? "it did not become readable" : page.error().message.c_str());
  arm_timer();
}

void OrderedStream::give_up(const char* why) {
  if (!missing()) return;
  const uint64_t resume = held_.empty() ? expected_ + 1 : held_.begin()->first;
  spdlog::info("{}: gave up on updates {}..{}: {}; the client syncs", label_, next_, resume - 1,
               why);
  next_ = resume;
  retries_ = 0;
  drain();
}

}  // namespace parley::session
