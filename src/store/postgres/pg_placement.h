// Where rows live when the store spans several PostgreSQL servers (docs/SCALING.md,
// "Sharding the store"). Keys hash into a fixed number of buckets and each server holds a
// contiguous range of buckets: a user's rows (account, devices, update log, chat index,
// push) by the user id, a chat's rows (chat, members, read positions, messages, idempotency,
// outbox) by the chat id, a media record by its id. A chat id carries its bucket in its low
// bits, so that a direct chat can be placed with the pair of users that names it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/hash.h"
#include "store/types.h"

namespace parley::store::pg {

// Fixed for the life of a deployment: a chat id's low bits hold its bucket.
inline constexpr uint32_t kBuckets = 1024;

inline uint32_t user_bucket(std::string_view user) {
  return static_cast<uint32_t>(fnv1a64(user) % kBuckets);
}
inline uint32_t chat_bucket(ChatId chat) { return static_cast<uint32_t>(chat % kBuckets); }
inline uint32_t media_bucket(std::string_view id) {
  return static_cast<uint32_t>(fnv1a64(id) % kBuckets);
}
// The bucket of the direct chat of two users (the same whichever of them asks).
inline uint32_t pair_bucket(const UserId& a, const UserId& b) {
  const auto& [lo, hi] = std::minmax(a, b);
  std::string key = lo;
  key += '\n';
  key += hi;
  return static_cast<uint32_t>(fnv1a64(key) % kBuckets);
}

// One server's place in the list of `count` servers.
struct Placement {
  uint32_t index = 0;
  uint32_t count = 1;

  bool sharded() const { return count > 1; }
  uint32_t shard_of(uint32_t bucket) const { return bucket * count / kBuckets; }
  uint32_t user_shard(std::string_view user) const { return shard_of(user_bucket(user)); }
  uint32_t chat_shard(ChatId chat) const { return shard_of(chat_bucket(chat)); }
  uint32_t media_shard(std::string_view id) const { return shard_of(media_bucket(id)); }
  uint32_t pair_shard(const UserId& a, const UserId& b) const {
    return shard_of(pair_bucket(a, b));
  }
  bool local_user(std::string_view user) const { return user_shard(user) == index; }
};

}  // namespace parley::store::pg
