// Test helper: tests/push/receiver.js (node) as the far end of the push providers, started
// once per test binary on loopback ports and scripted over its control endpoints.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "common/errc.h"

namespace parley::test {
class ChildProcess;
}

namespace parley::push::test {

class Receiver {
 public:
  static Receiver& instance();

  // Starts node unless it runs already. skip_reason() is set (and this succeeds) when node
  // is not installed; anything else that goes wrong is an error.
  Status ensure_started();
  const std::string& skip_reason() const { return skip_reason_; }
  void stop();

  // http://127.0.0.1:<port><path> of the HTTP/1.1 server and of the h2c server.
  std::string http_url(const std::string& path = "") const;
  std::string h2c_url(const std::string& path = "") const;

  // Control endpoints. Each one fails the current test (ADD_FAILURE) if it does not answer.
  void reset();
  void script(const std::string& key, const boost::json::array& responses);
  void configure(const boost::json::object& settings);
  void revoke_tokens();
  // Starts the HTTP/2-over-TLS server (once) with this key and certificate; its port.
  int start_tls(const std::string& key_pem, const std::string& cert_pem);
  boost::json::array requests(const std::string& server = "");
  boost::json::object stats();

 private:
  Receiver() = default;
  ~Receiver();
  Status start();
  boost::json::value control(const std::string& method, const std::string& path,
                             const std::string& body);

  std::unique_ptr<parley::test::ChildProcess> child_;  // node receiver.js while it runs
  int http_port_ = 0;
  int h2c_port_ = 0;
  std::string skip_reason_;
  std::string failure_;
};

// GTEST_SKIP()s the current test when node is missing; fails it when the receiver cannot
// start. Use at the top of a test body (or SetUp).
#define PARLEY_REQUIRE_RECEIVER()                                               \
  do {                                                                          \
    auto st_ = ::parley::push::test::Receiver::instance().ensure_started();     \
    ASSERT_TRUE(st_.ok()) << st_.error().message;                               \
    if (!::parley::push::test::Receiver::instance().skip_reason().empty())      \
      GTEST_SKIP() << ::parley::push::test::Receiver::instance().skip_reason(); \
    ::parley::push::test::Receiver::instance().reset();                         \
  } while (0)

// Helpers for tests: JSON field access that fails loudly. The object overloads matter: a
// reference into a json::object must not go through a temporary json::value copy.
std::string str(const boost::json::object& o, std::string_view key);
std::string str(const boost::json::value& v, std::string_view key);
const boost::json::object& obj(const boost::json::object& o, std::string_view key);
const boost::json::object& obj(const boost::json::value& v, std::string_view key);
int64_t num(const boost::json::object& o, std::string_view key);
int64_t num(const boost::json::value& v, std::string_view key);

}  // namespace parley::push::test
