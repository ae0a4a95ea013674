#include "media/sigv4.h"

#include <algorithm>
#include <ctime>
#include <map>

namespace parley::media::sigv4 {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims the value and turns every run of spaces or tabs into one space.
std::string canonical_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Lowercase name -> values in request order, joined with ','.
std::map<std::string, std::string> header_map(const Pairs& headers) {
  std::map<std::string, std::string> m;
  for (const auto& [name, value] : headers) {
    auto [it, fresh] = m.try_emplace(lower(name), canonical_value(value));
    if (!fresh) {
      it->second += ',';
      it->second += canonical_value(value);
    }
  }
  return m;
}

std::string date_of(const Scope& scope) { return scope.amz_date.substr(0, 8); }

std::string credential_scope(const Scope& scope) {
  return date_of(scope) + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

std::string_view view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace

std::string uri_encode(std::string_view s, bool encode_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !encode_slash);
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

std::string canonical_uri(std::string_view path) {
  if (path.empty()) return "/";
  return uri_encode(path, false);
}

std::string canonical_query(const Pairs& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, true), uri_encode(v, true));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k + "=" + v;
  }
  return out;
}

std::string signed_headers(const Pairs& headers) {
  std::string out;
  for (const auto& [name, value] : header_map(headers)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string canonical_request(const Request& req) {
  std::string out =
      req.method + "\n" + canonical_uri(req.path) + "\n" + canonical_query(req.query) + "\n";
  for (const auto& [name, value] : header_map(req.headers)) out += name + ":" + value + "\n";
  out += '\n';
  out += signed_headers(req.headers);
  out += '\n';
  out += req.payload_hash;
  return out;
}

std::string string_to_sign(const Scope& scope, std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + credential_scope(scope) + "\n" +
         sha256_hex(canonical_request);
}

std::string signature(const Credentials& creds, const Scope& scope,
                      std::string_view string_to_sign) {
  Digest k = hmac_sha256("AWS4" + creds.secret_key, date_of(scope));
  k = hmac_sha256(view(k), scope.region);
  k = hmac_sha256(view(k), scope.service);
  k = hmac_sha256(view(k), "aws4_request");
  return to_hex(hmac_sha256(view(k), string_to_sign));
}

std::string authorization(const Credentials& creds, const Scope& scope, const Request& req) {
  const std::string sts = string_to_sign(scope, canonical_request(req));
  return "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + credential_scope(scope) +
         ", SignedHeaders=" + signed_headers(req.headers) +
         ", Signature=" + signature(creds, scope, sts);
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace parley::media::sigv4
