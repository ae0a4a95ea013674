#include "push/test_receiver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "push/http_client.h"
#include "support/child_process.h"
#include "support/programs.h"

#ifndef PARLEY_TESTS_PUSH_DIR
#error "PARLEY_TESTS_PUSH_DIR must name tests/push"
#endif

namespace parley::push::test {

namespace json = boost::json;

namespace {

HttpClient& control_client() {
  static HttpClient client(HttpOptions{5000, "", HttpOptions::Http2::off});
  return client;
}

class ReceiverEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { Receiver::instance().stop(); }
};
[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new ReceiverEnvironment);

}  // namespace

Receiver& Receiver::instance() {
  static Receiver r;
  return r;
}

Receiver::~Receiver() { stop(); }

Status Receiver::ensure_started() {
  if (child_ || !skip_reason_.empty()) return ok_status();
  if (!failure_.empty()) return Error{Errc::internal, failure_};
  auto st = start();
  if (!st) {
    failure_ = st.error().message;
    stop();  // started but never listened
  }
  return st;
}

Status Receiver::start() {
  const std::string node = parley::test::find_in_path("node");
  if (node.empty()) {
    skip_reason_ = "node is not installed: the push tests need it for tests/push/receiver.js";
    return ok_status();
  }
  const char* env_dir = std::getenv("PARLEY_TESTS_PUSH_DIR");
  const std::string script =
      std::string(env_dir && *env_dir ? env_dir : PARLEY_TESTS_PUSH_DIR) + "/receiver.js";
  using parley::test::ChildProcess;
  // stdout is captured (the ports, and never a full pipe); stderr is the test's.
  try {
    child_ = std::make_unique<ChildProcess>(
        ChildProcess::Options{.argv = {node, script},
                              .err = ChildProcess::Output::inherit(),
                              .kill_grace = std::chrono::milliseconds(2500)});
  } catch (const std::exception& e) {
    return Error{Errc::internal, e.what()};
  }
  auto line = child_->wait_for_line(
      ChildProcess::Stream::out,
      [this](std::string_view l) {
        return std::sscanf(std::string(l).c_str(), "receiver listening http=%d h2c=%d", &http_port_,
                           &h2c_port_) == 2;
      },
      std::chrono::seconds(20));
  if (!line) {
    http_port_ = h2c_port_ = 0;
    return Error{Errc::internal, child_->running()
                                     ? "receiver.js did not start within 20 s"
                                     : "receiver.js exited before listening (see stderr)"};
  }
  return ok_status();
}

void Receiver::stop() {
  if (child_) child_->terminate();  // SIGTERM, SIGKILL after 2.5 s
  child_.reset();
}

std::string Receiver::http_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(http_port_) + path;
}

std::string Receiver::h2c_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(h2c_port_) + path;
}

json::value Receiver::control(const std::string& method, const std::string& path,
                              const std::string& body) {
  HttpRequest req;
  req.method = method;
  req.url = http_url(path);
  req.body = body;
  req.headers = {"Content-Type: application/json"};
  HttpResponse r = control_client().perform(req);
  if (!r.transport_ok() || r.status != 200) {
    ADD_FAILURE() << "receiver " << method << " " << path << ": " << r.error << " HTTP " << r.status
                  << " " << r.body;
    return nullptr;
  }
  json::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec) ADD_FAILURE() << "receiver " << path << ": not JSON: " << r.body;
  return v;
}

void Receiver::reset() { control("POST", "/_reset", "{}"); }

void Receiver::script(const std::string& key, const json::array& responses) {
  control("POST", "/_script",
          json::serialize(json::object{{"key", key}, {"responses", responses}}));
}

void Receiver::configure(const json::object& settings) {
  control("POST", "/_config", json::serialize(settings));
}

void Receiver::revoke_tokens() { control("POST", "/_revoke_tokens", "{}"); }

int Receiver::start_tls(const std::string& key_pem, const std::string& cert_pem) {
  json::value v =
      control("POST", "/_tls", json::serialize(json::object{{"key", key_pem}, {"cert", cert_pem}}));
  const json::value* port = v.is_object() ? v.get_object().if_contains("port") : nullptr;
  return port && port->is_int64() ? static_cast<int>(port->get_int64()) : 0;
}

json::array Receiver::requests(const std::string& server) {
  json::value v = control("GET", server.empty() ? "/_requests" : "/_requests?server=" + server, "");
  return v.is_array() ? v.get_array() : json::array();
}

json::object Receiver::stats() {
  json::value v = control("GET", "/_stats", "");
  return v.is_object() ? v.get_object() : json::object();
}

std::string str(const json::object& o, std::string_view key) {
  const json::value* f = o.if_contains(key);
  if (!f || !f->is_string()) {
    ADD_FAILURE() << "no string " << key << " in " << json::serialize(o);
    return {};
  }
  return std::string(f->get_string());
}

std::string str(const json::value& v, std::string_view key) {
  if (!v.is_object()) {
    ADD_FAILURE() << "not an object: " << json::serialize(v);
    return {};
  }
  return str(v.get_object(), key);
}

const json::object& obj(const json::object& o, std::string_view key) {
  static const json::object kEmpty;
  const json::value* f = o.if_contains(key);
  if (!f || !f->is_object()) {
    ADD_FAILURE() << "no object " << key << " in " << json::serialize(o);
    return kEmpty;
  }
  return f->get_object();
}

const json::object& obj(const json::value& v, std::string_view key) {
  static const json::object kEmpty;
  if (!v.is_object()) {
    ADD_FAILURE() << "not an object: " << json::serialize(v);
    return kEmpty;
  }
  return obj(v.get_object(), key);
}

int64_t num(const json::object& o, std::string_view key) {
  const json::value* f = o.if_contains(key);
  if (!f || !(f->is_int64() || f->is_uint64())) {
    ADD_FAILURE() << "no integer " << key << " in " << json::serialize(o);
    return 0;
  }
  return f->is_int64() ? f->get_int64() : static_cast<int64_t>(f->get_uint64());
}

int64_t num(const json::value& v, std::string_view key) {
  if (!v.is_object()) {
    ADD_FAILURE() << "not an object: " << json::serialize(v);
    return 0;
  }
  return num(v.get_object(), key);
}

}  // namespace parley::push::test
