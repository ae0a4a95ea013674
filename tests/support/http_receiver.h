// A tiny HTTP/1.1 server on 127.0.0.1:0 for tests that need something to call back into
// (push webhooks): records every request and answers with scripted statuses.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace parley::test {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpReceiver {
 public:
  HttpReceiver();  // listens at once
  ~HttpReceiver();
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const;
  // The next answers, in order (status codes); once used up, `default_status`.
  void script(std::vector<unsigned> statuses);
  void set_default_status(unsigned status);
  // Waits until at least `n` requests arrived; returns all so far.
  std::vector<ReceivedRequest> wait_for(size_t n, std::chrono::milliseconds timeout);
  std::vector<ReceivedRequest> received();

 private:
  void serve();

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReceivedRequest> received_;
  std::deque<unsigned> script_;
  unsigned default_status_ = 200;
  bool stop_ = false;
};

}  // namespace parley::test
