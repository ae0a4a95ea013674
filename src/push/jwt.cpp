#include "push/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <fstream>
#include <sstream>

namespace parley::push {

void PkeyDeleter::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// EVP_DigestSign with SHA-256: PKCS#1 v1.5 for RSA keys, DER-encoded ECDSA for EC keys.
Result<std::string> digest_sign(EVP_PKEY* key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return Error{Errc::internal, "EVP_DigestSignInit failed"};
  }
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
    return Error{Errc::internal, "EVP_DigestSign failed"};
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     data.size()) != 1) {
    return Error{Errc::internal, "EVP_DigestSign failed"};
  }
  sig.resize(len);
  return sig;
}

std::string signing_input(std::string_view header_json, std::string_view claims_json) {
  return base64url(header_json) + "." + base64url(claims_json);
}

}  // namespace

Result<PrivateKey> parse_private_key(std::string_view pem, KeyKind kind) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return Error{Errc::internal, "BIO_new_mem_buf failed"};
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Error{Errc::bad_request, "not a PEM private key"};
  if (kind == KeyKind::rsa) {
    if (!EVP_PKEY_is_a(key.get(), "RSA")) return Error{Errc::bad_request, "not an RSA key"};
    return key;
  }
  if (!EVP_PKEY_is_a(key.get(), "EC")) return Error{Errc::bad_request, "not an EC key"};
  std::array<char, 64> group{};
  size_t group_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.data(),
                                     group.size(), &group_len) != 1 ||
      std::string_view(group.data(), group_len) != "prime256v1") {
    return Error{Errc::bad_request, "not a P-256 EC key"};
  }
  return key;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Errc::not_found, "cannot read " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = at(i) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

Result<std::string> base64url_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return Error{Errc::bad_request, "bad base64url length"};
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return Error{Errc::bad_request, "bad base64url character"};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<std::string> sign_jwt_rs256(EVP_PKEY* key, std::string_view header_json,
                                   std::string_view claims_json) {
  std::string input = signing_input(header_json, claims_json);
  auto sig = digest_sign(key, input);
  if (!sig) return sig.error();
  return input + "." + base64url(sig.value());
}

Result<std::string> sign_jwt_es256(EVP_PKEY* key, std::string_view header_json,
                                   std::string_view claims_json) {
  std::string input = signing_input(header_json, claims_json);
  auto der = digest_sign(key, input);
  if (!der) return der.error();
  // OpenSSL gives ECDSA-Sig-Value (DER SEQUENCE of INTEGER r, s); JWS wants r and s as
  // 32-byte big-endian numbers, left-padded with zeros, one after the other.
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size())));
  if (!sig) return Error{Errc::internal, "cannot decode the ECDSA signature"};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::array<unsigned char, 64> raw{};
  if (BN_bn2binpad(r, raw.data(), 32) != 32 || BN_bn2binpad(s, raw.data() + 32, 32) != 32) {
    return Error{Errc::internal, "ECDSA signature component over 32 bytes"};
  }
  return input + "." + base64url(std::string_view(reinterpret_cast<char*>(raw.data()), raw.size()));
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

}  // namespace parley::push
