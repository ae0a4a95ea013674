// The providers against tests/push/receiver.js on loopback: webhook signatures and answer
// classes, FCM's OAuth flow (assertion verified with the public key, token cache, refresh on
// expiry and on 401) and errors, APNs over h2c with a verified ES256 provider token.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/utf8.h"
#include "push/apns_provider.h"
#include "push/fcm_provider.h"
#include "push/http_client.h"
#include "push/jwt.h"
#include "push/payload.h"
#include "push/push_worker.h"
#include "push/test_receiver.h"
#include "push/webhook_provider.h"

namespace parley::push {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using test::num;
using test::obj;
using test::Receiver;
using test::str;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

json::object parse_object(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return v.is_object() ? v.get_object() : json::object();
}

// A key pair made for the test, as PEM.
struct KeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo
};

KeyPair make_keys(bool rsa) {
  EVP_PKEY* key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  EXPECT_NE(key, nullptr);
  auto to_pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv) {
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio, key);
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(bio);
    return out;
  };
  KeyPair kp{to_pem(true), to_pem(false)};
  EVP_PKEY_free(key);
  return kp;
}

// A self-signed certificate for 127.0.0.1 (CA:TRUE, so that it can be its own CA file).
std::string self_signed_cert(const std::string& private_pem) {
  BIO* in = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    EXPECT_NE(ext, nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  EXPECT_GT(X509_sign(x, key, EVP_sha256()), 0);
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, x);
  char* data = nullptr;
  const long len = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(out);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

// RSA key generation takes a while: one pair for the whole binary.
const KeyPair& rsa_keys() {
  static const KeyPair kp = make_keys(true);
  return kp;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("parley-push-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  fs::path path_;
};

Notification sample(store::PushProvider provider) {
  Notification n;
  n.target.user = "bob";
  n.target.device_id = "phone";
  n.target.provider = provider;
  n.target.token = "tok-abc123";
  n.target.app_id = "com.example.chat";
  n.chat_id = 12;
  n.count = 3;
  n.badge = 7;
  n.sender = "alice";
  n.last_seq = 41;
  return n;
}

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[mac[i] >> 4]);
    out.push_back(hex[mac[i] & 15]);
  }
  return out;
}

json::object response(int status, json::value body = nullptr, json::object headers = {},
                      int delay_ms = 0) {
  json::object r{{"status", status}};
  if (!body.is_null()) r["body"] = std::move(body);
  if (!headers.empty()) r["headers"] = std::move(headers);
  if (delay_ms) r["delay_ms"] = delay_ms;
  return r;
}

// ---- Helpers without a network.

TEST(PushPayload, Utf8PrefixNeverCutsASequence) {
  const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // a é € 😀
  EXPECT_EQ(utf8_prefix(s, 100), s);
  EXPECT_EQ(utf8_prefix(s, 1), "a");
  EXPECT_EQ(utf8_prefix(s, 2), "a");
  EXPECT_EQ(utf8_prefix(s, 3), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix(s, 5), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix(s, 6), "a\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(utf8_prefix(s, 9), "a\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(utf8_prefix(s, 0), "");
}

TEST(PushPayload, RetryAfterSecondsAndDates) {
  const int64_t now = 1'700'000'000'000;
  EXPECT_EQ(parse_retry_after("120", now), 120000);
  EXPECT_EQ(parse_retry_after(" 0 ", now), 0);
  // 2023-11-14T22:13:20Z is 1700000000; 30 s later:
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now), 30000);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now), 0);  // past: now
  EXPECT_FALSE(parse_retry_after("soon", now).has_value());
  EXPECT_FALSE(parse_retry_after("", now).has_value());
  EXPECT_FALSE(parse_retry_after("-5", now).has_value());
}

TEST(PushPayload, BackoffIsFullJitterUnderTheCap) {
  PushConfig c;
  c.backoff_base_ms = 100;
  c.backoff_max_ms = 1000;
  std::mt19937_64 rng(1);
  for (uint32_t attempts = 0; attempts < 40; ++attempts) {
    const int64_t ceiling = std::min<int64_t>(1000, int64_t{100} << std::min(attempts, 20u));
    int64_t top = 0;
    for (int i = 0; i < 200; ++i) {
      const int64_t d = PushWorker::retry_delay_ms(c, attempts, std::nullopt, rng);
      EXPECT_GE(d, 0);
      EXPECT_LE(d, ceiling);
      top = std::max(top, d);
    }
    EXPECT_GT(top, ceiling / 2) << "attempts " << attempts;  // spread over the whole range
  }
  EXPECT_EQ(PushWorker::retry_delay_ms(c, 3, 7000, rng), 7000);  // Retry-After wins
}

TEST(PushPayload, Es256SignatureIsRawRAndS) {
  const KeyPair kp = make_keys(false);
  auto key = parse_private_key(kp.private_pem, KeyKind::ec_p256);
  ASSERT_TRUE(key.ok()) << key.error().message;
  for (int i = 0; i < 20; ++i) {  // r or s with leading zero bytes must still be 32 bytes
    auto jwt =
        sign_jwt_es256(key->get(), R"({"alg":"ES256"})", R"({"i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(jwt.ok());
    const std::string sig = jwt->substr(jwt->rfind('.') + 1);
    auto raw = base64url_decode(sig);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw->size(), 64u);
  }
  EXPECT_FALSE(parse_private_key(rsa_keys().private_pem, KeyKind::ec_p256).ok());
  EXPECT_FALSE(parse_private_key(kp.private_pem, KeyKind::rsa).ok());
  EXPECT_FALSE(parse_private_key("not a key", KeyKind::rsa).ok());
}

// ---- Webhook.

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override { PARLEY_REQUIRE_RECEIVER(); }
  std::unique_ptr<WebhookProvider> make(uint32_t timeout_ms = 5000, uint32_t max_bytes = 4096) {
    PushConfig c;
    c.webhook_url = Receiver::instance().http_url("/hook");
    c.webhook_secret = "s3cret";
    c.timeout_ms = timeout_ms;
    c.webhook_max_bytes = max_bytes;
    auto p = WebhookProvider::create(c);
    EXPECT_TRUE(p.ok());
    return std::move(p.value());
  }
};

TEST_F(WebhookTest, PostsSignedJson) {
  auto p = make();
  Notification n = sample(store::PushProvider::webhook);
  n.preview = "h\xc3\xa9llo";
  const int64_t before = now_s();
  SendResult r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  auto reqs = Receiver::instance().requests("http");
  ASSERT_EQ(reqs.size(), 1u);
  const auto& req = reqs[0];
  EXPECT_EQ(str(req, "method"), "POST");
  EXPECT_EQ(str(req, "path"), "/hook");
  const auto& headers = obj(req, "headers");
  const std::string ts = str(headers, "x-parley-timestamp");
  const std::string body = str(req, "body");
  EXPECT_GE(std::stoll(ts), before);
  EXPECT_LE(std::stoll(ts), now_s());
  EXPECT_EQ(str(headers, "x-parley-signature"), "sha256=" + hmac_hex("s3cret", ts + "." + body));
  EXPECT_EQ(str(headers, "content-type"), "application/json");
  const json::object b = parse_object(body);
  EXPECT_EQ(str(b, "user"), "bob");
  EXPECT_EQ(str(b, "device_id"), "phone");
  EXPECT_EQ(str(b, "token"), "tok-abc123");
  EXPECT_EQ(str(b, "app_id"), "com.example.chat");
  EXPECT_EQ(num(b, "chat_id"), 12);
  EXPECT_EQ(num(b, "count"), 3);
  EXPECT_EQ(num(b, "badge"), 7);
  EXPECT_EQ(str(b, "sender"), "alice");
  EXPECT_EQ(num(b, "seq"), 41);
  EXPECT_EQ(str(b, "preview"), "h\xc3\xa9llo");

  // No preview: no field.
  Receiver::instance().reset();
  EXPECT_EQ(p->send(sample(store::PushProvider::webhook)).status, SendStatus::ok);
  reqs = Receiver::instance().requests("http");
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_FALSE(parse_object(str(reqs[0], "body")).contains("preview"));
}

TEST_F(WebhookTest, ClassifiesAnswers) {
  auto p = make();
  const int64_t now = now_s();
  char date[64];
  const time_t in_30s = static_cast<time_t>(now + 30);
  std::tm tm{};
  gmtime_r(&in_30s, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  Receiver::instance().script(
      "http /hook", json::array{response(500), response(429, nullptr, {{"Retry-After", "7"}}),
                                response(503, nullptr, {{"Retry-After", date}}), response(410),
                                response(400), response(404), response(204)});
  const Notification n = sample(store::PushProvider::webhook);

  SendResult r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_FALSE(r.retry_after_ms.has_value());
  EXPECT_NE(r.error.find("500"), std::string::npos) << r.error;

  r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_EQ(r.retry_after_ms, 7000);

  r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::retry);
  ASSERT_TRUE(r.retry_after_ms.has_value());
  EXPECT_GE(*r.retry_after_ms, 27000);
  EXPECT_LE(*r.retry_after_ms, 31000);

  EXPECT_EQ(p->send(n).status, SendStatus::token_gone);
  EXPECT_EQ(p->send(n).status, SendStatus::failed);
  EXPECT_EQ(p->send(n).status, SendStatus::failed);
  EXPECT_EQ(p->send(n).status, SendStatus::ok);
}

TEST_F(WebhookTest, TimeoutAndRefusedConnectionAreRetried) {
  auto p = make(300);
  Receiver::instance().script("http /hook", json::array{response(200, nullptr, {}, 2000)});
  const auto started = std::chrono::steady_clock::now();
  SendResult r = p->send(sample(store::PushProvider::webhook));
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_NE(r.error.find("timeout"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));

  // Nobody listens on this port (bound, never listening).
  PushConfig c;
  c.webhook_url = "http://127.0.0.1:9/hook";
  c.timeout_ms = 2000;
  auto closed = WebhookProvider::create(c);
  ASSERT_TRUE(closed.ok());
  r = closed.value()->send(sample(store::PushProvider::webhook));
  EXPECT_EQ(r.status, SendStatus::retry) << r.error;
}

TEST_F(WebhookTest, PreviewIsCutOnAUtf8BoundaryToFit) {
  auto p = make(5000, 400);
  Notification n = sample(store::PushProvider::webhook);
  for (int i = 0; i < 500; ++i) n.preview += "\xe2\x82\xac";  // € (3 bytes)
  auto body = p->body(n);
  ASSERT_TRUE(body.has_value());
  EXPECT_LE(body->size(), 400u);
  EXPECT_GT(body->size(), 380u);  // cut, not dropped
  const json::object b = parse_object(*body);
  const std::string preview = str(b, "preview");
  EXPECT_FALSE(preview.empty());
  EXPECT_TRUE(valid_utf8(preview));
  EXPECT_EQ(preview.size() % 3, 0u);

  // Too small for even the fixed fields: a dead letter, not a request.
  auto tiny = make(5000, 50);
  EXPECT_EQ(tiny->send(n).status, SendStatus::failed);
  EXPECT_TRUE(Receiver::instance().requests().empty());
}

// ---- FCM.

class FcmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PARLEY_REQUIRE_RECEIVER();
    Receiver::instance().configure({{"jwt_public_key", rsa_keys().public_pem}});
  }
  std::unique_ptr<FcmProvider> make(uint32_t timeout_ms = 5000) {
    json::object account{{"type", "service_account"},
                         {"client_email", "push@proj-1.iam.gserviceaccount.com"},
                         {"private_key_id", "key-1"},
                         {"private_key", rsa_keys().private_pem},
                         {"token_uri", Receiver::instance().http_url("/token")}};
    PushConfig c;
    c.fcm_endpoint = Receiver::instance().http_url();
    c.fcm_project_id = "proj-1";
    c.fcm_service_account_file = dir_.write("sa.json", json::serialize(account));
    c.timeout_ms = timeout_ms;
    auto p = FcmProvider::create(c);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p ? std::move(p.value()) : nullptr;
  }
  static constexpr char kSendPath[] = "/v1/projects/proj-1/messages:send";
  TempDir dir_;
};

TEST_F(FcmTest, SendsDataMessageWithAVerifiedOAuthAssertion) {
  auto p = make();
  ASSERT_TRUE(p);
  const int64_t before = now_s();
  SendResult r = p->send(sample(store::PushProvider::fcm));
  EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  auto reqs = Receiver::instance().requests("http");
  ASSERT_EQ(reqs.size(), 2u);

  // The token request: the JWT bearer grant, signed with the account's key.
  const auto& token_req = reqs[0];
  EXPECT_EQ(str(token_req, "path"), "/token");
  EXPECT_NE(
      str(token_req, "body")
          .find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="),
      std::string::npos);
  const auto& jwt = obj(token_req, "jwt");
  ASSERT_TRUE(jwt.contains("verified")) << json::serialize(jwt);
  EXPECT_TRUE(jwt.at("verified").as_bool()) << json::serialize(jwt);
  EXPECT_EQ(str(obj(jwt, "header"), "alg"), "RS256");
  EXPECT_EQ(str(obj(jwt, "header"), "kid"), "key-1");
  const auto& claims = obj(jwt, "claims");
  EXPECT_EQ(str(claims, "iss"), "push@proj-1.iam.gserviceaccount.com");
  EXPECT_EQ(str(claims, "scope"), "https://www.googleapis.com/auth/firebase.messaging");
  EXPECT_EQ(str(claims, "aud"), Receiver::instance().http_url("/token"));
  EXPECT_GE(num(claims, "iat"), before);
  EXPECT_EQ(num(claims, "exp") - num(claims, "iat"), 3600);

  // The message.
  const auto& send_req = reqs[1];
  EXPECT_EQ(str(send_req, "path"), kSendPath);
  EXPECT_EQ(str(obj(send_req, "headers"), "authorization"), "Bearer tok-1");
  const json::object body = parse_object(str(send_req, "body"));
  const auto& message = obj(body, "message");
  EXPECT_EQ(str(message, "token"), "tok-abc123");
  const auto& data = obj(message, "data");
  EXPECT_EQ(str(data, "chat_id"), "12");
  EXPECT_EQ(str(data, "count"), "3");
  EXPECT_EQ(str(data, "badge"), "7");
  EXPECT_EQ(str(data, "sender"), "alice");
  EXPECT_FALSE(data.contains("preview"));
  for (const auto& [k, v] : data) EXPECT_TRUE(v.is_string()) << k;  // FCM: strings only
  EXPECT_EQ(str(obj(message, "android"), "collapse_key"), "chat-12");
  EXPECT_EQ(num(obj(obj(obj(message, "apns"), "payload"), "aps"), "badge"), 7);

  // The token is cached.
  EXPECT_EQ(p->send(sample(store::PushProvider::fcm)).status, SendStatus::ok);
  EXPECT_EQ(num(Receiver::instance().stats(), "tokens_issued"), 1);
  EXPECT_EQ(p->oauth().fetches(), 1u);
}

TEST_F(FcmTest, RefreshesTheTokenAMinuteBeforeItExpires) {
  // expires_in 61: cached for one second.
  Receiver::instance().configure({{"token_expires_in", 61}});
  auto p = make();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->send(sample(store::PushProvider::fcm)).status, SendStatus::ok);
  EXPECT_EQ(p->send(sample(store::PushProvider::fcm)).status, SendStatus::ok);
  EXPECT_EQ(num(Receiver::instance().stats(), "tokens_issued"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(p->send(sample(store::PushProvider::fcm)).status, SendStatus::ok);
  EXPECT_EQ(num(Receiver::instance().stats(), "tokens_issued"), 2);
  auto reqs = Receiver::instance().requests("http");
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(str(obj(reqs[4], "headers"), "authorization"), "Bearer tok-2");
}

TEST_F(FcmTest, RefreshesOnceOn401) {
  auto p = make();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->send(sample(store::PushProvider::fcm)).status, SendStatus::ok);
  Receiver::instance().revoke_tokens();
  SendResult r = p->send(sample(store::PushProvider::fcm));
  EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  auto reqs = Receiver::instance().requests("http");
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(str(reqs[2], "path"), kSendPath);
  EXPECT_EQ(str(obj(reqs[2], "headers"), "authorization"), "Bearer tok-1");  // 401
  EXPECT_EQ(str(reqs[3], "path"), "/token");
  EXPECT_EQ(str(obj(reqs[4], "headers"), "authorization"), "Bearer tok-2");

  // A 401 for the fresh token too: refreshed once only, then a dead letter.
  Receiver::instance().reset();
  Receiver::instance().configure({{"fcm_auth", false}});
  Receiver::instance().script(
      "http /v1/projects/proj-1/messages:send",
      json::array{response(401, json::object{{"error", json::object{{"code", 401}}}}),
                  response(401, json::object{{"error", json::object{{"code", 401}}}})});
  r = p->send(sample(store::PushProvider::fcm));
  EXPECT_EQ(r.status, SendStatus::failed);
  EXPECT_EQ(Receiver::instance().requests("http").size(), 3u);  // send, token, send
}

TEST_F(FcmTest, ClassifiesErrors) {
  auto p = make();
  ASSERT_TRUE(p);
  auto fcm_error = [](int code, const std::string& status, const std::string& error_code) {
    json::object e{{"code", code}, {"message", "x"}, {"status", status}};
    if (!error_code.empty()) {
      e["details"] =
          json::array{json::object{{"@type", "type.googleapis.com/google.firebase.fcm.v1.FcmError"},
                                   {"errorCode", error_code}}};
    }
    return json::object{{"error", e}};
  };
  Receiver::instance().script(
      std::string("http ") + kSendPath,
      json::array{response(404, fcm_error(404, "NOT_FOUND", "UNREGISTERED")),
                  response(400, fcm_error(400, "INVALID_ARGUMENT", "UNREGISTERED")),
                  response(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")),
                  response(404, fcm_error(404, "NOT_FOUND", "")),
                  response(429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
                           {{"Retry-After", "3"}}),
                  response(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")),
                  response(500, fcm_error(500, "INTERNAL", "INTERNAL"))});
  const Notification n = sample(store::PushProvider::fcm);
  SendResult r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::token_gone) << r.error;
  EXPECT_EQ(p->send(n).status, SendStatus::token_gone);
  EXPECT_EQ(p->send(n).status, SendStatus::failed);
  EXPECT_EQ(p->send(n).status, SendStatus::failed);  // a 404 that is no UNREGISTERED
  r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_EQ(r.retry_after_ms, 3000);
  EXPECT_EQ(p->send(n).status, SendStatus::retry);
  EXPECT_EQ(p->send(n).status, SendStatus::retry);
}

TEST_F(FcmTest, TokenEndpointFailures) {
  auto p = make();
  ASSERT_TRUE(p);
  Receiver::instance().script(
      "http /token",
      json::array{response(503), response(400, json::object{{"error", "invalid_grant"}}),
                  response(200, json::object{{"token_type", "Bearer"}})});
  const Notification n = sample(store::PushProvider::fcm);
  EXPECT_EQ(p->send(n).status, SendStatus::retry);
  SendResult r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::failed);
  EXPECT_NE(r.error.find("invalid_grant"), std::string::npos) << r.error;
  EXPECT_EQ(p->send(n).status, SendStatus::failed);  // no access_token
  EXPECT_EQ(p->send(n).status, SendStatus::ok);      // the receiver's own token again
}

TEST_F(FcmTest, DataStaysUnder4096Bytes) {
  Notification n = sample(store::PushProvider::fcm);
  for (int i = 0; i < 3000; ++i) n.preview += "\xc3\xa9\"";  // é and a quote (escaped: 2)
  auto body = FcmProvider::body(n);
  ASSERT_TRUE(body.has_value());
  const json::object b = parse_object(*body);
  const auto& data = obj(obj(b, "message"), "data");
  const size_t data_bytes = json::serialize(data).size();
  EXPECT_LE(data_bytes, kFcmMaxDataBytes);
  EXPECT_GT(data_bytes, kFcmMaxDataBytes - 8);
  const std::string preview = str(data, "preview");
  EXPECT_TRUE(valid_utf8(preview));
  EXPECT_EQ(n.preview.compare(0, preview.size(), preview), 0);
}

TEST(FcmConfig, RejectsBadServiceAccounts) {
  TempDir dir;
  PushConfig c;
  c.fcm_project_id = "p";
  c.fcm_service_account_file = dir.write("none.json", "{}");
  EXPECT_FALSE(FcmProvider::create(c).ok());
  c.fcm_service_account_file = "/nonexistent/sa.json";
  EXPECT_EQ(FcmProvider::create(c).error().code, Errc::not_found);
  c.fcm_service_account_file = dir.write(
      "ec.json", json::serialize(json::object{{"client_email", "a@b"},
                                              {"private_key", make_keys(false).private_pem},
                                              {"token_uri", "https://x/token"}}));
  EXPECT_EQ(FcmProvider::create(c).error().code, Errc::bad_request);  // not an RSA key
}

// ---- APNs.

class ApnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PARLEY_REQUIRE_RECEIVER();
    keys_ = make_keys(false);
    Receiver::instance().configure({{"jwt_public_key", keys_.public_pem}});
  }
  std::unique_ptr<ApnsProvider> make(uint32_t timeout_ms = 5000, std::string endpoint = "",
                                     std::string ca_file = "") {
    PushConfig c;
    c.apns_endpoint = endpoint.empty() ? Receiver::instance().h2c_url() : endpoint;
    c.ca_file = ca_file;
    c.apns_key_file = dir_.write("AuthKey_KEY123.p8", keys_.private_pem);
    c.apns_key_id = "KEY123";
    c.apns_team_id = "TEAM456";
    c.apns_topic = "com.example.default";
    c.timeout_ms = timeout_ms;
    auto p = ApnsProvider::create(c);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p ? std::move(p.value()) : nullptr;
  }
  static constexpr char kPath[] = "/3/device/tok-abc123";
  KeyPair keys_;
  TempDir dir_;
};

TEST_F(ApnsTest, SendsOverHttp2WithAVerifiedProviderToken) {
  auto p = make();
  ASSERT_TRUE(p);
  const int64_t before = now_s();
  SendResult r = p->send(sample(store::PushProvider::apns));
  EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  auto reqs = Receiver::instance().requests("h2c");
  ASSERT_EQ(reqs.size(), 1u);
  const auto& req = reqs[0];
  EXPECT_EQ(str(req, "httpVersion"), "2.0");
  EXPECT_EQ(str(req, "method"), "POST");
  EXPECT_EQ(str(req, "path"), kPath);
  const auto& h = obj(req, "headers");
  EXPECT_EQ(str(h, "apns-topic"), "com.example.chat");
  EXPECT_EQ(str(h, "apns-push-type"), "alert");
  EXPECT_EQ(str(h, "apns-collapse-id"), "chat-12");
  const int64_t expiration = std::stoll(str(h, "apns-expiration"));
  EXPECT_GT(expiration, before);
  EXPECT_TRUE(str(h, "authorization").rfind("bearer ", 0) == 0);

  const auto& jwt = obj(req, "jwt");
  ASSERT_TRUE(jwt.contains("verified")) << json::serialize(jwt);
  EXPECT_TRUE(jwt.at("verified").as_bool()) << json::serialize(jwt);
  EXPECT_EQ(num(jwt, "signature_bytes"), 64);
  EXPECT_EQ(str(obj(jwt, "header"), "alg"), "ES256");
  EXPECT_EQ(str(obj(jwt, "header"), "kid"), "KEY123");
  EXPECT_EQ(str(obj(jwt, "claims"), "iss"), "TEAM456");
  EXPECT_GE(num(obj(jwt, "claims"), "iat"), before);
  EXPECT_LE(num(obj(jwt, "claims"), "iat"), now_s());

  const json::object body = parse_object(str(req, "body"));
  const auto& aps = obj(body, "aps");
  EXPECT_EQ(str(obj(aps, "alert"), "title"), "alice");
  EXPECT_EQ(str(obj(aps, "alert"), "body"), "3 new messages");
  EXPECT_EQ(num(aps, "badge"), 7);
  EXPECT_EQ(str(aps, "thread-id"), "chat-12");
  EXPECT_EQ(num(body, "chat_id"), 12);

  // With a preview it is the alert's body; without app_id the configured topic is used.
  Receiver::instance().reset();
  Notification n = sample(store::PushProvider::apns);
  n.preview = "see you at 8";
  n.target.app_id.clear();
  EXPECT_EQ(p->send(n).status, SendStatus::ok);
  reqs = Receiver::instance().requests("h2c");
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(str(obj(reqs[0], "headers"), "apns-topic"), "com.example.default");
  EXPECT_EQ(str(obj(obj(parse_object(str(reqs[0], "body")), "aps"), "alert"), "body"),
            "see you at 8");
}

TEST_F(ApnsTest, ReusesTheToken) {
  auto p = make();
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p->send(sample(store::PushProvider::apns)).status, SendStatus::ok);
  }
  auto reqs = Receiver::instance().requests("h2c");
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(str(obj(reqs[0], "headers"), "authorization"),
            str(obj(reqs[2], "headers"), "authorization"));
  EXPECT_EQ(p->token().issued(), 1u);
}

// As with the real APNs: HTTP/2 negotiated by ALPN over TLS (the endpoint's certificate
// trusted through push.ca_file), one connection for consecutive requests.
TEST_F(ApnsTest, OverTlsReusesOneHttp2Connection) {
  const KeyPair server_key = make_keys(false);
  const std::string cert = self_signed_cert(server_key.private_pem);
  const int port = Receiver::instance().start_tls(server_key.private_pem, cert);
  ASSERT_GT(port, 0);
  auto p = make(5000, "https://127.0.0.1:" + std::to_string(port), dir_.write("ca.pem", cert));
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) {
    SendResult r = p->send(sample(store::PushProvider::apns));
    EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  }
  auto reqs = Receiver::instance().requests("h2tls");
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& req : reqs) {
    EXPECT_EQ(str(req, "httpVersion"), "2.0");
    EXPECT_EQ(num(req, "remotePort"), num(reqs[0], "remotePort"));
    EXPECT_TRUE(obj(req, "jwt").at("verified").as_bool());
  }

  // Without the CA file the certificate is not trusted: a network error, retried.
  auto untrusted = make(5000, "https://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(untrusted);
  SendResult r = untrusted->send(sample(store::PushProvider::apns));
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_EQ(Receiver::instance().requests("h2tls").size(), 3u);
}

TEST_F(ApnsTest, ClassifiesAnswers) {
  auto p = make();
  ASSERT_TRUE(p);
  auto reason = [](const std::string& r) { return json::object{{"reason", r}}; };
  Receiver::instance().script(
      "h2c *",
      json::array{response(410, json::object{{"reason", "Unregistered"}, {"timestamp", 1}}),
                  response(400, reason("BadDeviceToken")), response(400, reason("Unregistered")),
                  response(400, reason("DeviceTokenNotForTopic")),
                  response(403, reason("InvalidProviderToken")),
                  response(429, reason("TooManyRequests")),
                  response(503, reason("ServiceUnavailable"), {{"retry-after", "2"}}),
                  response(500, reason("InternalServerError"))});
  const Notification n = sample(store::PushProvider::apns);
  SendResult r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::token_gone) << r.error;
  EXPECT_EQ(p->send(n).status, SendStatus::token_gone);
  EXPECT_EQ(p->send(n).status, SendStatus::token_gone);
  r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::failed);
  EXPECT_NE(r.error.find("DeviceTokenNotForTopic"), std::string::npos) << r.error;
  EXPECT_EQ(p->send(n).status, SendStatus::failed);
  EXPECT_EQ(p->send(n).status, SendStatus::retry);
  r = p->send(n);
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_EQ(r.retry_after_ms, 2000);
  EXPECT_EQ(p->send(n).status, SendStatus::retry);
}

TEST_F(ApnsTest, ExpiredProviderTokenIsRenewedOnce) {
  auto p = make();
  ASSERT_TRUE(p);
  Receiver::instance().script(
      "h2c *",
      json::array{response(403, json::object{{"reason", "ExpiredProviderToken"}}), response(200)});
  SendResult r = p->send(sample(store::PushProvider::apns));
  EXPECT_EQ(r.status, SendStatus::ok) << r.error;
  auto reqs = Receiver::instance().requests("h2c");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(str(obj(reqs[0], "headers"), "authorization"),
            str(obj(reqs[1], "headers"), "authorization"));
  EXPECT_TRUE(obj(reqs[1], "jwt").at("verified").as_bool());
  EXPECT_EQ(p->token().issued(), 2u);

  // Twice in a row: no loop, a dead letter.
  Receiver::instance().reset();
  Receiver::instance().script(
      "h2c *", json::array{response(403, json::object{{"reason", "ExpiredProviderToken"}}),
                           response(403, json::object{{"reason", "ExpiredProviderToken"}})});
  EXPECT_EQ(p->send(sample(store::PushProvider::apns)).status, SendStatus::failed);
  EXPECT_EQ(Receiver::instance().requests("h2c").size(), 2u);
}

TEST_F(ApnsTest, TimeoutIsRetried) {
  auto p = make(300);
  ASSERT_TRUE(p);
  Receiver::instance().script("h2c *", json::array{response(200, nullptr, {}, 2000)});
  SendResult r = p->send(sample(store::PushProvider::apns));
  EXPECT_EQ(r.status, SendStatus::retry);
  EXPECT_NE(r.error.find("timeout"), std::string::npos) << r.error;
  // The next request works (a new stream or connection).
  EXPECT_EQ(p->send(sample(store::PushProvider::apns)).status, SendStatus::ok);
}

TEST_F(ApnsTest, PayloadStaysUnder4096Bytes) {
  Notification n = sample(store::PushProvider::apns);
  for (int i = 0; i < 2000; ++i) n.preview += "\xf0\x9f\x98\x80";  // 😀
  auto body = ApnsProvider::body(n);
  ASSERT_TRUE(body.has_value());
  EXPECT_LE(body->size(), kApnsMaxPayloadBytes);
  EXPECT_GT(body->size(), kApnsMaxPayloadBytes - 8);
  const std::string text = str(obj(obj(parse_object(*body), "aps"), "alert"), "body");
  EXPECT_TRUE(valid_utf8(text));
  EXPECT_EQ(text.size() % 4, 0u);
}

}  // namespace
}  // namespace parley::push
