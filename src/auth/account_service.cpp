#include "auth/account_service.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "auth/password.h"
#include "auth/tokens.h"
#include "common/clock.h"
#include "common/ids.h"

namespace parley::auth {
namespace {

constexpr uint32_t kMaxPendingHashesPerThread = 32;
constexpr size_t kMaxPasswordBytes = 1024;

Error invalid_credentials() {
  return Error{Errc::invalid_credentials, "wrong username or password"};
}

// JWT devices are not stored; their id is derived from user and device claim, so that it is
// stable across connections.
std::string jwt_device_id(const JwtClaims& c) {
  std::string id = "d";
  id += std::string_view(token_hash("jwt:" + c.user + ":" + c.device)).substr(0, 16);
  return id;
}

}  // namespace

AccountService::AccountService(store::Store& store, const AuthConfig& config, JwtVerifier jwt)
    : store_(store), config_(config), jwt_(std::move(jwt)), pool_(config.hash_threads) {
  dummy_hash_ =
      hash_password("parley-dummy-password", {config_.argon2_opslimit, config_.argon2_memlimit_kib})
          .value_or("");
}

AccountService::~AccountService() { stop(); }

void AccountService::stop() {
  stopped_ = true;
  pool_.join();
}

bool AccountService::start_hash_job() {
  if (stopped_) return false;
  if (pending_hashes_.fetch_add(1) >= config_.hash_threads * kMaxPendingHashesPerThread) {
    --pending_hashes_;
    return false;
  }
  return true;
}

void AccountService::register_user(std::string username, std::string password,
                                   store::Callback<Unit> done) {
  if (!config_.allow_registration)
    return done(Error{Errc::registration_closed, "registration is closed"});
  if (!valid_user_id(username))
    return done(Error{
        Errc::invalid_username,
        "username must be 3-32 characters of a-z 0-9 _ . -, starting with a letter or digit"});
  if (password.size() < config_.min_password_length || password.size() > kMaxPasswordBytes)
    return done(
        Error{Errc::weak_password, fmt::format("password must be {} to {} bytes long",
                                               config_.min_password_length, kMaxPasswordBytes)});
  if (!start_hash_job())
    return done(Error{Errc::rate_limited, "too many registrations in progress"});
  boost::asio::post(
      pool_, [this, username = std::move(username), password = std::move(password), done] {
        auto hash = hash_password(password, {config_.argon2_opslimit, config_.argon2_memlimit_kib});
        --pending_hashes_;
        if (!hash) return done(Error{Errc::internal, "password hashing failed"});
        store_.create_user(store::UserRecord{username, std::move(*hash), now_ms()}, done);
      });
}

void AccountService::login(std::string username, std::string password, std::string device_name,
                           store::Callback<LoginResult> done) {
  if (device_name.size() > 64)
    return done(Error{Errc::bad_request, "device_name is longer than 64 bytes"});
  if (password.size() > kMaxPasswordBytes) return done(invalid_credentials());
  if (!start_hash_job()) return done(Error{Errc::rate_limited, "too many logins in progress"});
  // The store may answer on any thread, later (a PostgreSQL worker): the check owns what it
  // needs, and runs on the hashing pool, not on the store's thread.
  auto check = [this, username, password = std::move(password),
                device_name = std::move(device_name),
                done](Result<store::UserRecord> user) mutable {
    // Unknown users and users without a password verify against a dummy hash, so that the
    // answer and its timing do not tell whether the user exists.
    bool ok = verify_password(
                  user.ok() && !user->password_hash.empty() ? user->password_hash : dummy_hash_,
                  password) &&
              user.ok() && !user->password_hash.empty();
    --pending_hashes_;
    if (!ok) return done(invalid_credentials());
    create_device(username, std::move(device_name), done);
  };
  store_.get_user(std::move(username), [this, check = std::move(check)](
                                           Result<store::UserRecord> user) mutable {
    boost::asio::post(pool_, [check = std::move(check), user = std::move(user)]() mutable {
      check(std::move(user));
    });
  });
}

void AccountService::create_device(std::string user, std::string device_name,
                                   store::Callback<LoginResult> done) {
  // The cursor is read before the device exists: an update that commits in between is then
  // after the cursor (synced, perhaps once more than needed) rather than lost to the device.
  store_.current_pts(
      user, [this, user, device_name = std::move(device_name), done](Result<uint64_t> pts) mutable {
        if (!pts) return done(pts.error());
        LoginResult result{user, new_device_id(), new_token(), pts.value()};
        store::DeviceRecord dev{std::move(user),          result.device_id, std::move(device_name),
                                token_hash(result.token), now_ms(),         false};
        store_.create_device(std::move(dev), config_.max_devices_per_user,
                             [result = std::move(result), done](Status st) {
                               if (!st) return done(st.error());
                               done(result);
                             });
      });
}

void AccountService::link_device(std::string token, std::string device_name,
                                 store::Callback<LoginResult> done) {
  // A bad token is 401 whatever else is wrong with the request (docs/PROTOCOL.md §2).
  if (looks_like_jwt(token)) {
    auto claims = jwt_.verify(token);
    if (!claims) return done(claims.error());
    return done(Error{Errc::bad_request, "a JWT names its device itself; link with a login token"});
  }
  authenticate(std::move(token),
               [this, device_name = std::move(device_name), done](Result<Identity> who) mutable {
                 if (!who) return done(who.error());
                 if (device_name.size() > 64)
                   return done(Error{Errc::bad_request, "device_name is longer than 64 bytes"});
                 create_device(who->user, std::move(device_name), done);
               });
}

void AccountService::list_devices(
    std::string token,
    store::Callback<std::pair<Identity, std::vector<store::DeviceRecord>>> done) {
  authenticate(std::move(token), [this, done](Result<Identity> who) {
    if (!who) return done(who.error());
    store_.list_devices(who->user,
                        [id = who.value(), done](Result<std::vector<store::DeviceRecord>> r) {
                          if (!r) return done(r.error());
                          done(std::make_pair(id, std::move(r.value())));
                        });
  });
}

void AccountService::revoke_device(std::string token, std::string device_id,
                                   store::Callback<Identity> done) {
  authenticate(std::move(token), [this, device_id = std::move(device_id),
                                  done](Result<Identity> who) mutable {
    if (!who) return done(who.error());
    // Only a live device of the caller's own user: a device id of someone else is "not
    // found", never "forbidden", so that ids of other users' devices cannot be probed.
    store_.list_devices(who->user, [this, user = who->user, device_id = std::move(device_id),
                                    done](Result<std::vector<store::DeviceRecord>> r) mutable {
      if (!r) return done(r.error());
      bool mine = std::any_of(r->begin(), r->end(), [&](const store::DeviceRecord& d) {
        return d.device_id == device_id;
      });
      if (!mine) return done(Error{Errc::not_found, "no such device"});
      store_.revoke_device(user, device_id, [user, device_id, done](Status st) {
        if (!st) return done(st.error());
        done(Identity{user, device_id});
      });
    });
  });
}

void AccountService::logout(std::string token, store::Callback<Identity> done) {
  if (looks_like_jwt(token)) {
    auto claims = jwt_.verify(token);
    if (!claims) return done(claims.error());
    return done(Error{Errc::bad_request, "a JWT cannot be revoked; let it expire"});
  }
  store_.find_device_by_token(token_hash(token), [this, done](Result<store::DeviceRecord> dev) {
    if (!dev) return done(dev.error());
    Identity id{dev->user, dev->device_id};
    store_.revoke_device(dev->user, dev->device_id, [id, done](Status st) {
      if (!st) return done(st.error());
      done(id);
    });
  });
}

void AccountService::authenticate(std::string token, store::Callback<Identity> done) {
  if (token.empty() || token.size() > 8192) return done(Error{Errc::unauthorized, "invalid token"});
  if (looks_like_jwt(token)) {
    auto claims = jwt_.verify(token);
    if (!claims) return done(claims.error());
    Identity id{claims->user, jwt_device_id(claims.value())};
    return store_.ensure_user(claims->user, [id, done](Status st) {
      if (!st) return done(st.error());
      done(id);
    });
  }
  store_.find_device_by_token(token_hash(token), [done](Result<store::DeviceRecord> dev) {
    if (!dev) return done(dev.error());
    done(Identity{dev->user, dev->device_id});
  });
}

void AccountService::delete_account(
    std::string token, std::string password,
    store::Callback<std::pair<Identity, store::DeleteUserResult>> done) {
  if (password.size() > kMaxPasswordBytes) return done(invalid_credentials());
  authenticate(std::move(token),
               [this, password = std::move(password), done](Result<Identity> who) mutable {
                 if (!who) return done(who.error());
                 auto erase = [this, id = who.value(), done] {
                   store_.delete_user(id.user, [id, done](Result<store::DeleteUserResult> r) {
                     if (!r) return done(r.error());
                     done(std::make_pair(id, std::move(r.value())));
                   });
                 };
                 store_.get_user(who->user, [this, password = std::move(password), erase,
                                             done](Result<store::UserRecord> user) mutable {
                   if (!user) return done(user.error());
                   if (user->password_hash.empty())
                     return erase();  // a JWT identity: the token suffices
                   if (!start_hash_job())
                     return done(Error{Errc::rate_limited, "too many requests in progress"});
                   boost::asio::post(pool_, [this, hash = user->password_hash,
                                             password = std::move(password), erase, done] {
                     bool ok = verify_password(hash, password);
                     --pending_hashes_;
                     if (!ok) return done(invalid_credentials());
                     erase();
                   });
                 });
               });
}

}  // namespace parley::auth
