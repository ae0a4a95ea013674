// Password hashing with argon2id (libsodium crypto_pwhash).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::auth {

struct HashCost {
  uint64_t opslimit = 2;
  uint64_t memlimit_kib = 65536;
};

// The encoded argon2id string (algorithm, cost and salt included), or nullopt if out of memory.
std::optional<std::string> hash_password(std::string_view password, HashCost cost);
bool verify_password(const std::string& encoded_hash, std::string_view password);

}  // namespace parley::auth
