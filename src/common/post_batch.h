// Hand-offs to I/O threads, gathered per group commit. While a PostBatch lives on a thread,
// PostBatch::post holds what is posted from that thread and the batch posts it when it ends:
// one task per executor, running the held functions in the order they were posted. A commit
// completes hundreds of requests at once; one post each would wake their I/O threads once
// per request (a system call each on an idle thread), one post per thread wakes them once.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <utility>
#include <vector>

namespace parley {

class PostBatch {
 public:
  // Opens the batch of this thread; a batch opened inside another joins the outer one.
  PostBatch() : nested_(current_ != nullptr) {
    if (!nested_) current_ = this;
  }
  ~PostBatch() {
    if (nested_) return;
    current_ = nullptr;
    for (auto& [exec, fns] : groups_)
      boost::asio::post(exec, [fns = std::move(fns)]() mutable {
        for (auto& fn : fns) fn();
      });
  }
  PostBatch(const PostBatch&) = delete;
  PostBatch& operator=(const PostBatch&) = delete;

  // Runs `fn` on `exec`: held by this thread's open batch, or posted at once if none is open.
  template <class Fn>
  static void post(const boost::asio::any_io_executor& exec, Fn&& fn) {
    if (current_ == nullptr) return boost::asio::post(exec, std::forward<Fn>(fn));
    current_->hold(exec, std::function<void()>(std::forward<Fn>(fn)));
  }

 private:
  void hold(const boost::asio::any_io_executor& exec, std::function<void()> fn) {
    // A handful of I/O threads: a linear search beats a map.
    for (auto& [e, fns] : groups_)
      if (e == exec) return fns.push_back(std::move(fn));
    groups_.emplace_back(exec, std::vector<std::function<void()>>{})
        .second.push_back(std::move(fn));
  }

  static inline thread_local PostBatch* current_ = nullptr;
  bool nested_;
  std::vector<std::pair<boost::asio::any_io_executor, std::vector<std::function<void()>>>> groups_;
};

}  // namespace parley
