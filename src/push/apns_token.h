// The APNs provider authentication token: an ES256 JWT signed with the team's .p8 key
// (header alg ES256 + kid = key id; claims iss = team id, iat). Apple rejects tokens older
// than an hour and refreshes more often than every 20 minutes, so one token is shared by
// every request and renewed after 50 minutes.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/errc.h"
#include "push/jwt.h"

namespace parley::push {

class ApnsToken {
 public:
  static constexpr std::chrono::seconds kRenewAfter{50 * 60};

  // key_pem: the .p8 file's text (a PKCS#8 EC P-256 private key).
  static Result<std::unique_ptr<ApnsToken>> create(std::string_view key_pem, std::string key_id,
                                                   std::string team_id,
                                                   std::chrono::seconds renew_after = kRenewAfter);

  // The current token, signed anew when none is cached or it is renew_after old.
  Result<std::string> get();
  // Drops the cached token if it still is `token` (APNs answered ExpiredProviderToken).
  void invalidate(const std::string& token);

  // How many tokens were signed so far.
  uint64_t issued() const { return issued_.load(); }

 private:
  ApnsToken(PrivateKey key, std::string key_id, std::string team_id, std::chrono::seconds renew);

  PrivateKey key_;
  std::string key_id_;
  std::string team_id_;
  std::chrono::seconds renew_after_;
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point issued_at_{};
  std::atomic<uint64_t> issued_{0};
};

}  // namespace parley::push
