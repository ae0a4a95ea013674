// AWS Signature Version 4 for S3 requests, signed in the Authorization header.
// Reference: the S3 API guide, "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk"; sigv4_test.cpp checks it against the published
// examples. S3 flavour: the path is URI-encoded once and never normalized.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "media/sha256.h"

namespace parley::media::sigv4 {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

struct Scope {
  std::string amz_date;  // YYYYMMDDTHHMMSSZ, the request's x-amz-date
  std::string region;    // us-east-1
  std::string service;   // s3
};

struct Request {
  std::string method;        // GET
  std::string path;          // not encoded: "/bucket/a b"; signing encodes it
  Pairs query;               // not encoded
  Pairs headers;             // every one is signed; include host and x-amz-date
  std::string payload_hash;  // hex SHA-256 of the body (also sent as x-amz-content-sha256)
};

// SHA-256 of no bytes.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (and '/' unless encode_slash).
std::string uri_encode(std::string_view s, bool encode_slash);
// The path as sent and as signed: each segment encoded once, "/" if empty.
std::string canonical_uri(std::string_view path);
// name=value pairs encoded and sorted by name, then value, joined by '&'.
std::string canonical_query(const Pairs& query);
// "host;range;x-amz-date": the lowercase header names, sorted, without repeats.
std::string signed_headers(const Pairs& headers);
std::string canonical_request(const Request& req);
std::string string_to_sign(const Scope& scope, std::string_view canonical_request);
std::string signature(const Credentials& creds, const Scope& scope,
                      std::string_view string_to_sign);
// The Authorization header's value.
std::string authorization(const Credentials& creds, const Scope& scope, const Request& req);
// YYYYMMDDTHHMMSSZ in UTC.
std::string amz_date(std::chrono::system_clock::time_point t);

}  // namespace parley::media::sigv4
