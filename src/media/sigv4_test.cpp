// SigV4 against published vectors: the AWS Signature Version 4 test suite (the get-vanilla
// family, as vendored by SDKs under aws4_testsuite/<case>/<case>.{req,creq,authz}), and the
// four examples of the S3 API guide, "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk" (secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY).
#include "media/sigv4.h"

#include <gtest/gtest.h>

namespace parley::media::sigv4 {
namespace {

// ---- The SigV4 test suite: one credential, date, region and service for every case.

const Credentials kSuiteCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const Scope kSuiteScope{"20150830T123600Z", "us-east-1", "service"};

std::string suite_authz(const std::string& method, const std::string& path, Pairs query,
                        Pairs extra = {}) {
  Request req{method,
              path,
              std::move(query),
              {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
              std::string(kEmptyPayloadHash)};
  for (auto& h : extra) req.headers.push_back(std::move(h));
  return authorization(kSuiteCreds, kSuiteScope, req);
}

std::string suite_expected(const std::string& signed_names, const std::string& sig) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         signed_names + ", Signature=" + sig;
}

TEST(SigV4Suite, GetVanilla) {
  Request req{"GET",
              "/",
              {},
              {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
              std::string(kEmptyPayloadHash)};
  const std::string creq = canonical_request(req);
  EXPECT_EQ(creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(string_to_sign(kSuiteScope, creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(suite_authz("GET", "/", {}),
            suite_expected("host;x-amz-date",
                           "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(SigV4Suite, PostVanilla) {
  EXPECT_EQ(suite_authz("POST", "/", {}),
            suite_expected("host;x-amz-date",
                           "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
}

TEST(SigV4Suite, GetVanillaQueryOrder) {
  // get-vanilla-query-order-key-case: sorted by name.
  EXPECT_EQ(suite_authz("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}),
            suite_expected("host;x-amz-date",
                           "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
  // get-vanilla-query-order-key: one name twice, sorted by value, upper case first.
  EXPECT_EQ(suite_authz("GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}}),
            suite_expected("host;x-amz-date",
                           "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"));
  // get-vanilla-query-order-value.
  EXPECT_EQ(suite_authz("GET", "/", {{"Param1", "value2"}, {"Param1", "value1"}}),
            suite_expected("host;x-amz-date",
                           "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"));
  // get-vanilla-empty-query-key.
  EXPECT_EQ(suite_authz("GET", "/", {{"Param1", "value1"}}),
            suite_expected("host;x-amz-date",
                           "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"));
}

TEST(SigV4Suite, UnreservedAndUtf8) {
  const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(suite_authz("GET", "/" + unreserved, {}),
            suite_expected("host;x-amz-date",
                           "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"));
  EXPECT_EQ(suite_authz("GET", "/", {{unreserved, unreserved}}),
            suite_expected("host;x-amz-date",
                           "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"));
  // get-utf8 and get-vanilla-utf8-query: U+1234 is encoded byte by byte.
  EXPECT_EQ(suite_authz("GET", "/\xe1\x88\xb4", {}),
            suite_expected("host;x-amz-date",
                           "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"));
  EXPECT_EQ(suite_authz("GET", "/", {{"\xe1\x88\xb4", "bar"}}),
            suite_expected("host;x-amz-date",
                           "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"));
}

TEST(SigV4Suite, GetHeaderValueTrim) {
  EXPECT_EQ(
      suite_authz("GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}),
      suite_expected("host;my-header1;my-header2;x-amz-date",
                     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"));
}

// ---- The S3 API guide's examples: bucket examplebucket, 2013-05-24, us-east-1.

const Credentials kS3Creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
const Scope kS3Scope{"20130524T000000Z", "us-east-1", "s3"};

Request s3_request(const std::string& method, const std::string& path, Pairs query,
                   const std::string& payload_hash, Pairs extra = {}) {
  Request req{method,
              path,
              std::move(query),
              {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-content-sha256", payload_hash}},
              payload_hash};
  for (auto& h : extra) req.headers.push_back(std::move(h));
  return req;
}

TEST(SigV4S3Examples, GetObject) {
  auto req =
      s3_request("GET", "/test.txt", {}, std::string(kEmptyPayloadHash), {{"Range", "bytes=0-9"}});
  const std::string creq = canonical_request(req);
  EXPECT_EQ(creq,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string sts = string_to_sign(kS3Scope, creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(signature(kS3Creds, kS3Scope, sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(authorization(kS3Creds, kS3Scope, req),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3Examples, PutObject) {
  const std::string payload = sha256_hex("Welcome to Amazon S3.");
  EXPECT_EQ(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // '$' in the key is encoded once: /test%24file.text.
  auto req = s3_request(
      "PUT", "/test$file.text", {}, payload,
      {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}});
  const std::string creq = canonical_request(req);
  EXPECT_EQ(creq.substr(0, 22), "PUT\n/test%24file.text\n");
  EXPECT_EQ(sha256_hex(creq), "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(signed_headers(req.headers),
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(signature(kS3Creds, kS3Scope, string_to_sign(kS3Scope, creq)),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4S3Examples, GetBucketLifecycle) {
  // A parameter without a value signs as "lifecycle=".
  auto req = s3_request("GET", "/", {{"lifecycle", ""}}, std::string(kEmptyPayloadHash));
  const std::string creq = canonical_request(req);
  EXPECT_EQ(sha256_hex(creq), "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(signature(kS3Creds, kS3Scope, string_to_sign(kS3Scope, creq)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Examples, ListObjects) {
  // Given out of order on purpose: the canonical query sorts them.
  auto req =
      s3_request("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}, std::string(kEmptyPayloadHash));
  const std::string creq = canonical_request(req);
  EXPECT_EQ(sha256_hex(creq), "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(signature(kS3Creds, kS3Scope, string_to_sign(kS3Scope, creq)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, Encoding) {
  EXPECT_EQ(uri_encode("a b+c/d%e", true), "a%20b%2Bc%2Fd%25e");
  EXPECT_EQ(uri_encode("a b/c", false), "a%20b/c");
  EXPECT_EQ(uri_encode("\xc3\xbc", true), "%C3%BC");
  EXPECT_EQ(canonical_uri(""), "/");
  EXPECT_EQ(canonical_query({{"b", "2"}, {"a", ""}, {"a", "1"}}), "a=&a=1&b=2");
}

TEST(SigV4, AmzDate) {
  using namespace std::chrono;
  EXPECT_EQ(amz_date(system_clock::time_point(seconds(1440938160))), "20150830T123600Z");
  EXPECT_EQ(amz_date(system_clock::time_point(seconds(0))), "19700101T000000Z");
}

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(sha256_hex(""), kEmptyPayloadHash);
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Incremental, with a digest taken midway that does not end the hash.
  Sha256 h;
  h.update("a");
  EXPECT_EQ(h.hex_digest(), "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
  h.update("bc");
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace parley::media::sigv4
