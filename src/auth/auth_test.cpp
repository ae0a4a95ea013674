#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <chrono>

#include <filesystem>
#include <fstream>
#include <jwt/jwt.hpp>

#include "auth/jwt_verifier.h"
#include "auth/password.h"
#include "auth/tokens.h"

namespace parley::auth {
namespace {

std::string make_jwt(const std::string& key, const std::string& sub, int exp_offset_s) {
  using namespace jwt::params;
  jwt::jwt_object obj{algorithm("HS256"), secret(key), payload({{"sub", sub}})};
  obj.add_claim("exp", std::chrono::system_clock::now() + std::chrono::seconds{exp_offset_s});
  return obj.signature();
}

TEST(Password, HashAndVerify) {
  auto h = hash_password("correct horse", {1, 8192});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(verify_password(*h, "correct horse"));
  EXPECT_FALSE(verify_password(*h, "wrong horse"));
  EXPECT_FALSE(verify_password("", "x"));
  EXPECT_FALSE(verify_password("garbage", "x"));
}

TEST(Tokens, RandomAndHashed) {
  auto a = new_token(), b = new_token();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 46u);
  EXPECT_FALSE(looks_like_jwt(a));
  EXPECT_EQ(token_hash(a).size(), 64u);
  EXPECT_EQ(token_hash(a), token_hash(a));
  EXPECT_NE(token_hash(a), token_hash(b));
}

TEST(Jwt, VerifiesHs256) {
  auto v = JwtVerifier::create("s3cret", "");
  ASSERT_TRUE(v.ok());
  auto good = v->verify(make_jwt("s3cret", "alice", 60));
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->user, "alice");
  EXPECT_EQ(good->device, "jwt");
  EXPECT_EQ(v->verify(make_jwt("s3cret", "alice", -60)).error().code, Errc::token_expired);
  EXPECT_EQ(v->verify(make_jwt("other", "alice", 60)).error().code, Errc::unauthorized);
  EXPECT_EQ(v->verify(make_jwt("s3cret", "Not Valid", 60)).error().code, Errc::unauthorized);
  EXPECT_EQ(v->verify("a.b.c").error().code, Errc::unauthorized);
  {  // no sub: refused, not a crash
    using namespace jwt::params;
    jwt::jwt_object obj{algorithm("HS256"), secret("s3cret"), payload({{"device", "x"}})};
    obj.add_claim("exp", std::chrono::system_clock::now() + std::chrono::seconds{60});
    EXPECT_EQ(v->verify(obj.signature()).error().code, Errc::unauthorized);
    jwt::jwt_object noexp{algorithm("HS256"), secret("s3cret"), payload({{"sub", "alice"}})};
    EXPECT_EQ(v->verify(noexp.signature()).error().code, Errc::unauthorized);
  }
  auto off = JwtVerifier::create("", "");
  EXPECT_FALSE(off->enabled());
  EXPECT_EQ(off->verify(make_jwt("s3cret", "alice", 60)).error().code, Errc::unauthorized);
  EXPECT_FALSE(JwtVerifier::create("", "/nonexistent/key.pem").ok());
}

// The device claim names the device; only a plain character set passes, so that nothing a
// token issuer puts there can break the JSON or the logs it reaches.
TEST(Jwt, DeviceClaimIsRestrictedToAPlainCharacterSet) {
  auto v = JwtVerifier::create("s3cret", "");
  ASSERT_TRUE(v.ok());
  auto with_device = [](const std::string& device) {
    using namespace jwt::params;
    jwt::jwt_object obj{algorithm("HS256"), secret("s3cret"),
                        payload({{"sub", "alice"}, {"device", device}})};
    obj.add_claim("exp", std::chrono::system_clock::now() + std::chrono::seconds{60});
    return obj.signature();
  };
  for (std::string ok : {std::string("phone"), std::string("web:tab-2"),
                         std::string("alice@laptop_1.0"), std::string(64, 'x')}) {
    auto r = v->verify(with_device(ok));
    ASSERT_TRUE(r.ok()) << ok << ": " << r.error().message;
    EXPECT_EQ(r->device, ok);
  }
  for (std::string bad : {std::string(), std::string(65, 'x'), std::string("a\"b"),
                          std::string("a\\b"), std::string("a b"), std::string("line\nbreak"),
                          std::string("caf\xc3\xa9"), std::string("x\",\"admin\":true")}) {
    auto r = v->verify(with_device(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::unauthorized);
  }
  EXPECT_TRUE(valid_jwt_device("A-Z.a_z:0@9"));
  EXPECT_FALSE(valid_jwt_device("tab/2"));
}

// An RSA key pair as PEM strings (private, public), made with OpenSSL for the test.
std::pair<std::string, std::string> rsa_pem() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  auto to_pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv)
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    else
      PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  };
  auto pair = std::make_pair(to_pem(true), to_pem(false));
  EVP_PKEY_free(key);
  return pair;
}

TEST(Jwt, VerifiesRs256WithAPublicKeyFile) {
  auto [priv, pub] = rsa_pem();
  auto path = std::filesystem::temp_directory_path() /
              ("parley-jwt-test-" + std::to_string(::getpid()) + ".pem");
  std::ofstream(path) << pub;
  auto v = JwtVerifier::create("", path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(v.ok()) << v.error().message;
  using namespace jwt::params;
  jwt::jwt_object obj{algorithm("RS256"), secret(priv),
                      payload({{"sub", "carol"}, {"device", "phone"}})};
  obj.add_claim("exp", std::chrono::system_clock::now() + std::chrono::seconds{60});
  auto good = v->verify(obj.signature());
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->user, "carol");
  EXPECT_EQ(good->device, "phone");
  // An HS256 token signed with the public key text must not pass (algorithm confusion).
  EXPECT_FALSE(v->verify(make_jwt(pub, "carol", 60)).ok());
}

}  // namespace
}  // namespace parley::auth
