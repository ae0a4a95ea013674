// The bits of JOSE and OpenSSL the push providers need: base64url, compact JWS signing with
// RS256 (FCM's OAuth assertion) and ES256 (the APNs provider token), HMAC-SHA256 (webhook
// signatures) and PEM private keys.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/errc.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace parley::push {

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const;
};
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

enum class KeyKind { rsa, ec_p256 };

// A PEM private key (PKCS#8 "PRIVATE KEY", or the traditional RSA / EC forms) of the given
// kind; bad_request when it does not parse or is another kind of key.
Result<PrivateKey> parse_private_key(std::string_view pem, KeyKind kind);

Result<std::string> read_file(const std::string& path);

std::string base64url(std::string_view bytes);
// Decodes base64url (padding optional); bad_request on any other character.
Result<std::string> base64url_decode(std::string_view text);

// "<b64url(header)>.<b64url(claims)>.<b64url(signature)>" for JSON header and claims.
// RS256: RSASSA-PKCS1-v1_5 with SHA-256. ES256: ECDSA P-256 with SHA-256, the signature
// as raw R||S (64 bytes, RFC 7518 §3.4), not OpenSSL's DER.
Result<std::string> sign_jwt_rs256(EVP_PKEY* key, std::string_view header_json,
                                   std::string_view claims_json);
Result<std::string> sign_jwt_es256(EVP_PKEY* key, std::string_view header_json,
                                   std::string_view claims_json);

// Lowercase hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace parley::push
