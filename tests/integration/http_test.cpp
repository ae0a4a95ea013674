// HTTP endpoints of parleyd (PROTOCOL.md §2): register, login, logout, health, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <string>

#include "support/auth_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;

// Status, error code and the documented error body shape {"error":{"code","message"}}.
::testing::AssertionResult is_http_error(const HttpResponse& res, unsigned status,
                                         std::string_view code) {
  if (res.status != status || res.error_code() != code) {
    return ::testing::AssertionFailure() << "expected " << status << " " << code << ", got "
                                         << res.status << " " << res.body << res.transport_error;
  }
  const auto& err = res.object().at("error").as_object();
  const auto* message = err.if_contains("message");
  if (message == nullptr || !message->is_string()) {
    return ::testing::AssertionFailure() << "error without a string message: " << res.body;
  }
  return ::testing::AssertionSuccess();
}

HttpResponse register_raw(std::uint16_t port, std::string_view username,
                          std::string_view password) {
  return http_post_json(port, "/v1/register",
                        json::object{{"username", username}, {"password", password}});
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<ServerProcess>(); }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

TEST_F(HttpTest, RegisterLoginLogoutHappyPath) {
  const auto name = unique_username("alice");
  auto reg = register_raw(port(), name, kPassword);
  ASSERT_EQ(reg.status, 201u) << reg.body;
  EXPECT_EQ(reg.object(), (json::object{{"user", name}})) << reg.body;

  auto l1 = http_post_json(
      port(), "/v1/login",
      json::object{{"username", name}, {"password", kPassword}, {"device_name", "laptop"}});
  ASSERT_EQ(l1.status, 200u) << l1.body;
  EXPECT_EQ(str_field(l1.object(), "user"), name);
  const auto device1 = str_field(l1.object(), "device_id");
  const auto token1 = str_field(l1.object(), "token");
  EXPECT_TRUE(std::regex_match(device1, std::regex("d[0-9a-f]{16}"))) << device1;
  EXPECT_FALSE(token1.empty());

  // Each login is a new device with its own token.
  auto l2 = login(port(), name);
  EXPECT_NE(l2.device_id, device1);
  EXPECT_NE(l2.token, token1);

  {
    WsClient ws(port());
    auto res = ws.auth(token1);
    ASSERT_TRUE(is_ok(res)) << to_string(res);
    const auto& result = obj_field(res, "result");
    EXPECT_EQ(str_field(result, "user"), name);
    EXPECT_EQ(str_field(result, "device_id"), device1);
    EXPECT_EQ(int_field(result, "pts"), 0);
  }

  auto out = http_post_raw(port(), "/v1/logout", "", token1);
  EXPECT_EQ(out.status, 200u) << out.body;
  EXPECT_EQ(out.object(), json::object{}) << out.body;

  // The revoked token stops working at once; the other device's token does not.
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/logout", "", token1), 401, "unauthorized"));
  {
    WsClient ws(port());
    auto res = ws.auth(l2.token);
    ASSERT_TRUE(is_ok(res)) << to_string(res);
    EXPECT_EQ(str_field(obj_field(res, "result"), "device_id"), l2.device_id);
  }
}

TEST_F(HttpTest, DuplicateUsernameIs409) {
  const auto name = unique_username("dup");
  register_user(port(), name);
  EXPECT_TRUE(is_http_error(register_raw(port(), name, "another password"), 409, "username_taken"));
  // The original password still works: the second registration changed nothing.
  EXPECT_FALSE(login(port(), name).token.empty());
}

TEST_F(HttpTest, InvalidUsernameIs422) {
  const std::string bad[] = {
      "",
      "ab",                  // too short
      std::string(33, 'a'),  // too long
      "Alice",               // upper case
      "_alice",              // must start with a letter or digit
      ".alice",
      "-alice",
      "al ice",
      "al@ice",
      "al/ice",
      "al\u00e9ce",  // not ASCII
  };
  for (const auto& name : bad) {
    EXPECT_TRUE(is_http_error(register_raw(port(), name, kPassword), 422, "invalid_username"))
        << "username '" << name << "'";
  }
  // Edges that are valid (the suite runs once per fresh server, so fixed names are free).
  const std::string good[] = {
      "a.b",                                             // 3 chars
      "0_9",                                             // starts with a digit
      "a-b.c_d", unique_username(std::string(40, 'z')),  // 32 chars
  };
  for (const auto& name : good) {
    auto res = register_raw(port(), name, kPassword);
    EXPECT_EQ(res.status, 201u) << "username '" << name << "' (" << name.size()
                                << " chars): " << res.body;
  }
}

TEST_F(HttpTest, WeakPasswordIs422) {
  EXPECT_TRUE(is_http_error(register_raw(port(), unique_username("weak"), "1234567"), 422,
                            "weak_password"));
  EXPECT_TRUE(
      is_http_error(register_raw(port(), unique_username("weak"), ""), 422, "weak_password"));
  EXPECT_TRUE(is_http_error(register_raw(port(), unique_username("weak"), std::string(1025, 'p')),
                            422, "weak_password"));
  // The bounds themselves are accepted.
  EXPECT_EQ(register_raw(port(), unique_username("edge"), "12345678").status, 201u);
  const auto long_name = unique_username("edge");
  EXPECT_EQ(register_raw(port(), long_name, std::string(1024, 'p')).status, 201u);
  EXPECT_FALSE(login(port(), long_name, std::string(1024, 'p')).token.empty());
}

TEST_F(HttpTest, WrongPasswordAndUnknownUserGiveIdenticalAnswers) {
  const auto name = unique_username("creds");
  register_user(port(), name);
  auto wrong = http_post_json(port(), "/v1/login",
                              json::object{{"username", name}, {"password", "wrong password"}});
  auto unknown = http_post_json(
      port(), "/v1/login",
      json::object{{"username", unique_username("nobody")}, {"password", "wrong password"}});
  EXPECT_TRUE(is_http_error(wrong, 401, "invalid_credentials"));
  EXPECT_TRUE(is_http_error(unknown, 401, "invalid_credentials"));
  EXPECT_EQ(wrong.body, unknown.body) << "the answers must not tell which one was wrong";
}

TEST_F(HttpTest, MalformedBodyIs400) {
  const std::string bodies[] = {
      R"({"username":"alice","password":)",  // truncated
      "not json at all",
      "[]",  // not an object
      R"("alice")",
      R"({"username":"bad400"})",  // password missing
      R"({"password":"correct horse battery"})",
      R"({"username":42,"password":"correct horse battery"})",
      R"({"username":"bad400","password":12345678})",
      R"({"username":null,"password":"correct horse battery"})",
  };
  for (const auto& body : bodies) {
    EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/register", body), 400, "bad_request"))
        << "register body " << body;
    EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/login", body), 400, "bad_request"))
        << "login body " << body;
  }
}

TEST_F(HttpTest, OversizedBodyIs413) {
  // Default limits.http_body_bytes = 16 KiB.
  std::string body = json::serialize(
      json::object{{"username", unique_username("big")}, {"password", std::string(20000, 'p')}});
  auto res = http_post_raw(port(), "/v1/register", body);
  EXPECT_EQ(res.status, 413u) << res.body << res.transport_error;
  auto login_res = http_post_raw(port(), "/v1/login", body);
  EXPECT_EQ(login_res.status, 413u) << login_res.body << login_res.transport_error;
  // Just under the limit is parsed (and rejected for its 15000-byte password).
  std::string under = json::serialize(
      json::object{{"username", unique_username("big")}, {"password", std::string(15000, 'p')}});
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/register", under), 422, "weak_password"));
  EXPECT_EQ(http_get(port(), "/healthz").status, 200u);
}

TEST_F(HttpTest, UnknownPathIs404) {
  EXPECT_TRUE(is_http_error(http_get(port(), "/nope"), 404, "not_found"));
  EXPECT_TRUE(is_http_error(http_get(port(), "/v1"), 404, "not_found"));
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/nope", "{}"), 404, "not_found"));
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/register/x", "{}"), 404, "not_found"));
}

TEST_F(HttpTest, KnownPathWithOtherMethodIs405) {
  EXPECT_TRUE(is_http_error(http_get(port(), "/v1/register"), 405, "method_not_allowed"));
  EXPECT_TRUE(is_http_error(http_get(port(), "/v1/login"), 405, "method_not_allowed"));
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/healthz", "{}"), 405, "method_not_allowed"));
}

TEST_F(HttpTest, HealthAndReadiness) {
  auto health = http_get(port(), "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.object(), (json::object{{"status", "ok"}})) << health.body;
  auto ready = http_get(port(), "/readyz");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(str_field(ready.object(), "status"), "ready") << ready.body;
  // Each backend's health, by seam.
  const auto& backends = obj_field(ready.object(), "backends");
  for (const char* seam : {"store", "registry", "bus", "presence"})
    EXPECT_TRUE(obj_field(backends, seam).at("ok").as_bool()) << seam << ": " << ready.body;
}

TEST_F(HttpTest, LogoutWithBadTokenIs401) {
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/logout", "", "pt_not_a_real_token"), 401,
                            "unauthorized"));
  EXPECT_TRUE(is_http_error(http_post_raw(port(), "/v1/logout", ""), 401, "unauthorized"));
}

HttpResponse devices_request(std::uint16_t port, const std::string& method,
                             const std::string& target, std::optional<std::string> bearer,
                             std::string body = "") {
  HttpRequestOptions o;
  o.method = method;
  o.target = target;
  o.bearer = std::move(bearer);
  o.body = std::move(body);
  return http_request(port, o);
}

std::vector<std::string> device_ids(const HttpResponse& list) {
  std::vector<std::string> ids;
  for (const auto& d : list.object().at("devices").as_array())
    ids.push_back(std::string(d.as_object().at("device_id").as_string()));
  return ids;
}

TEST_F(HttpTest, LinkedDevicesHaveTheirOwnTokens) {
  const auto name = unique_username("linker");
  auto first = register_and_login(port(), name);
  auto linked =
      devices_request(port(), "POST", "/v1/devices", first.token, R"({"device_name":"tab 2"})");
  ASSERT_EQ(linked.status, 201u) << linked.body;
  EXPECT_EQ(str_field(linked.object(), "user"), name);
  const auto second_id = str_field(linked.object(), "device_id");
  const auto second_token = str_field(linked.object(), "token");
  EXPECT_NE(second_id, first.device_id);
  EXPECT_NE(second_token, first.token);

  // Both devices authenticate as themselves, at once.
  WsClient a(port()), b(port());
  ASSERT_TRUE(is_ok(a.auth(first.token)));
  auto res = b.auth(second_token);
  ASSERT_TRUE(is_ok(res)) << to_string(res);
  EXPECT_EQ(str_field(obj_field(res, "result"), "device_id"), second_id);

  // The list shows both, marks the caller's own, and never shows token hashes.
  auto list = devices_request(port(), "GET", "/v1/devices", second_token);
  ASSERT_EQ(list.status, 200u) << list.body;
  auto ids = device_ids(list);
  std::sort(ids.begin(), ids.end());
  auto expected = std::vector<std::string>{first.device_id, second_id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
  for (const auto& d : list.object().at("devices").as_array()) {
    const auto& o = d.as_object();
    EXPECT_EQ(o.at("current").as_bool(), o.at("device_id").as_string() == second_id);
    EXPECT_FALSE(o.contains("token_hash"));
    if (o.at("device_id").as_string() == second_id) {
      EXPECT_EQ(o.at("name").as_string(), "tab 2");
    }
  }
  EXPECT_EQ(list.body.find(second_token), std::string::npos);

  // Revoking the first device from the second closes its socket with 4003 and ends its token.
  auto revoked = devices_request(port(), "DELETE", "/v1/devices/" + first.device_id, second_token);
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  EXPECT_EQ(a.wait_close(std::chrono::seconds(10)), std::optional<std::uint16_t>(4003));
  EXPECT_TRUE(is_http_error(devices_request(port(), "GET", "/v1/devices", first.token), 401,
                            "unauthorized"));
  EXPECT_EQ(device_ids(devices_request(port(), "GET", "/v1/devices", second_token)),
            std::vector<std::string>{second_id});
  EXPECT_FALSE(b.closed());
}

TEST_F(HttpTest, DevicesOfOtherUsersAreNotFoundAndBadRequestsChangeNothing) {
  auto alice = register_and_login(port(), unique_username("alice"));
  auto bob = register_and_login(port(), unique_username("bob"));
  // Bob cannot revoke (or probe) alice's device: the same answer as for a device that
  // does not exist.
  EXPECT_TRUE(
      is_http_error(devices_request(port(), "DELETE", "/v1/devices/" + alice.device_id, bob.token),
                    404, "not_found"));
  EXPECT_TRUE(
      is_http_error(devices_request(port(), "DELETE", "/v1/devices/dffffffffffffffff", bob.token),
                    404, "not_found"));
  EXPECT_EQ(device_ids(devices_request(port(), "GET", "/v1/devices", alice.token)),
            std::vector<std::string>{alice.device_id});

  EXPECT_TRUE(is_http_error(devices_request(port(), "POST", "/v1/devices", std::nullopt), 401,
                            "unauthorized"));
  EXPECT_TRUE(is_http_error(devices_request(port(), "POST", "/v1/devices", "pt_nope"), 401,
                            "unauthorized"));
  EXPECT_TRUE(is_http_error(devices_request(port(), "GET", "/v1/devices", std::nullopt), 401,
                            "unauthorized"));
  EXPECT_TRUE(
      is_http_error(devices_request(port(), "POST", "/v1/devices", alice.token, "{not json"), 400,
                    "bad_request"));
  EXPECT_TRUE(is_http_error(devices_request(port(), "POST", "/v1/devices", alice.token,
                                            R"({"device_name":")" + std::string(65, 'x') + "\"}"),
                            400, "bad_request"));
  EXPECT_TRUE(is_http_error(devices_request(port(), "PUT", "/v1/devices", alice.token), 405,
                            "method_not_allowed"));
  EXPECT_TRUE(
      is_http_error(devices_request(port(), "GET", "/v1/devices/" + alice.device_id, alice.token),
                    405, "method_not_allowed"));
  EXPECT_TRUE(is_http_error(devices_request(port(), "DELETE", "/v1/devices/a/b", alice.token), 404,
                            "not_found"));
  EXPECT_EQ(device_ids(devices_request(port(), "GET", "/v1/devices", alice.token)),
            std::vector<std::string>{alice.device_id});
}

TEST(HttpDeviceLimitTest, LoginsAndLinksStopAtTheLimitUntilADeviceGoes) {
  ServerProcess server(TomlConfig::test_defaults().set("auth", "max_devices_per_user", "2"));
  const auto name = unique_username("limited");
  auto first = register_and_login(server.port(), name);
  auto second = login(server.port(), name);
  auto third = http_post_json(server.port(), "/v1/login",
                              json::object{{"username", name}, {"password", kPassword}});
  EXPECT_TRUE(is_http_error(third, 409, "too_many_devices"));
  EXPECT_TRUE(is_http_error(devices_request(server.port(), "POST", "/v1/devices", first.token), 409,
                            "too_many_devices"));
  ASSERT_EQ(http_post_raw(server.port(), "/v1/logout", "", second.token).status, 200u);
  auto linked = devices_request(server.port(), "POST", "/v1/devices", first.token);
  EXPECT_EQ(linked.status, 201u) << linked.body;
  EXPECT_TRUE(server.alive());
}

TEST(HttpRegistrationClosedTest, RegisterIs403WhenRegistrationIsClosed) {
  ServerProcess server(TomlConfig::test_defaults().set("auth", "allow_registration", "false"));
  EXPECT_TRUE(is_http_error(register_raw(server.port(), "closedreg", kPassword), 403,
                            "registration_closed"));
  EXPECT_TRUE(server.alive());
}

}  // namespace
}  // namespace parley::test
