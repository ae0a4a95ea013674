#include "worker.h"

#include <algorithm>

#include "connection.h"
#include "system.h"

namespace parley::bench {

Worker::Worker(unsigned id, Shared& shared)
    : id_(id),
      shared_(shared),
      guard_(ioc_.get_executor()),
      open_limit_(
          std::max(1u, shared.options.connect_concurrency / std::max(1u, shared.options.threads))),
      sweep_timer_(ioc_) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    ioc_.stop();
    thread_.join();
  }
}

void Worker::start() {
  sweep_opens();
  thread_ = std::thread([this] {
    ioc_.run();
    done_ = true;
  });
}

void Worker::finish(std::chrono::milliseconds grace) {
  post([this] {
    stopping_ = true;
    sweep_timer_.cancel();
    for (auto& t : ticks_) t->timer.cancel();
    waiting_.clear();
  });
  guard_.reset();
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (!done_ && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

void Worker::queue_open(Connection* c) {
  waiting_.push_back(c);
  pump_opens();
}

void Worker::open_finished(Connection* c) {
  auto it = std::find(opening_.begin(), opening_.end(), c);
  if (it != opening_.end()) {
    *it = opening_.back();
    opening_.pop_back();
  }
  pump_opens();
}

void Worker::pump_opens() {
  while (opening_.size() < open_limit_ && !waiting_.empty()) {
    Connection* c = waiting_.front();
    waiting_.pop_front();
    opening_.push_back(c);
    c->open();
  }
}

// Gives up on opens that take longer than --connect-timeout (a SYN retried for minutes).
void Worker::sweep_opens() {
  sweep_timer_.expires_after(std::chrono::milliseconds(200));
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    auto limit = static_cast<uint64_t>(shared_.options.connect_timeout_s * 1e9);
    uint64_t now = now_ns();
    // Copy: abort() calls open_finished(), which edits opening_.
    std::vector<Connection*> late;
    for (auto* c : opening_)
      if (now - c->started_ns() > limit) late.push_back(c);
    for (auto* c : late) c->abort("connect/upgrade/auth timed out");
    sweep_opens();
  });
}

void Worker::every(std::chrono::nanoseconds period, std::function<void()> fn) {
  auto tick = std::make_unique<Tick>(ioc_);
  tick->period = period;
  tick->fn = std::move(fn);
  tick->timer.expires_after(std::chrono::nanoseconds(0));
  arm(tick.get());
  ticks_.push_back(std::move(tick));
}

void Worker::arm(Tick* t) {
  t->timer.expires_at(t->timer.expiry() + t->period);
  t->timer.async_wait([this, t](boost::system::error_code ec) {
    if (ec || stopping_) return;
    t->fn();
    arm(t);
  });
}

}  // namespace parley::bench
