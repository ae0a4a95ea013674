#include "push/apns_token.h"

#include <boost/json.hpp>
#include <ctime>

namespace parley::push {

namespace json = boost::json;

Result<std::unique_ptr<ApnsToken>> ApnsToken::create(std::string_view key_pem, std::string key_id,
                                                     std::string team_id,
                                                     std::chrono::seconds renew_after) {
  if (key_id.empty() || team_id.empty()) {
    return Error{Errc::bad_request, "push.apns_key_id and push.apns_team_id are required"};
  }
  auto key = parse_private_key(key_pem, KeyKind::ec_p256);
  if (!key) return Error{Errc::bad_request, "push.apns_key_file: " + key.error().message};
  return std::unique_ptr<ApnsToken>(
      new ApnsToken(std::move(key.value()), std::move(key_id), std::move(team_id), renew_after));
}

ApnsToken::ApnsToken(PrivateKey key, std::string key_id, std::string team_id,
                     std::chrono::seconds renew)
    : key_(std::move(key)),
      key_id_(std::move(key_id)),
      team_id_(std::move(team_id)),
      renew_after_(renew) {}

Result<std::string> ApnsToken::get() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!token_.empty() && now - issued_at_ < renew_after_) return token_;
  const json::object header{{"alg", "ES256"}, {"kid", key_id_}};
  const json::object claims{{"iss", team_id_}, {"iat", static_cast<int64_t>(std::time(nullptr))}};
  auto jwt = sign_jwt_es256(key_.get(), json::serialize(header), json::serialize(claims));
  if (!jwt) return jwt.error();
  token_ = jwt.value();
  issued_at_ = now;
  issued_.fetch_add(1);
  return jwt;
}

void ApnsToken::invalidate(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token_ == token) token_.clear();
}

}  // namespace parley::push
