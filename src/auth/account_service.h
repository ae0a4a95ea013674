// Accounts and devices: registration, login, logout and token authentication.
// Password hashing runs on its own small thread pool so that it never blocks I/O threads.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <string>

#include "auth/jwt_verifier.h"
#include "common/config.h"
#include "store/store.h"

namespace parley::auth {

struct Identity {
  std::string user;
  std::string device_id;
};

struct LoginResult {
  std::string user;
  std::string device_id;
  std::string token;
  // The user's committed update position just before the device was created: the device's
  // first cursor. A sync from it returns every update the device has not seen.
  uint64_t pts = 0;
};

class AccountService {
 public:
  AccountService(store::Store& store, const AuthConfig& config, JwtVerifier jwt);
  ~AccountService();

  // Callbacks run on a hashing or store thread.
  void register_user(std::string username, std::string password, store::Callback<Unit> done);
  void login(std::string username, std::string password, std::string device_name,
             store::Callback<LoginResult> done);
  // Revokes the token's device and returns who it was.
  void logout(std::string token, store::Callback<Identity> done);
  // A login token or a JWT. JWT users are created on first use.
  void authenticate(std::string token, store::Callback<Identity> done);

  // Devices of the token's own user (docs/PROTOCOL.md §2, "Devices"). link_device creates a
  // new device with its own token without the password (a second browser tab, a new phone
  // paired from a logged-in one); only a login token may link, not a JWT (whose issuer
  // names the devices). revoke_device revokes one of the user's own live devices (not_found
  // for anything else) and returns who it belonged to.
  void link_device(std::string token, std::string device_name, store::Callback<LoginResult> done);
  void list_devices(std::string token,
                    store::Callback<std::pair<Identity, std::vector<store::DeviceRecord>>> done);
  void revoke_device(std::string token, std::string device_id, store::Callback<Identity> done);

  // Deletes the token's account (docs/MEDIA.md, "Deleting a user's data"). Accounts with a
  // password must give it again (invalid_credentials otherwise); JWT-only accounts need only
  // the token. Returns the store's result (devices to close, media objects to remove).
  void delete_account(std::string token, std::string password,
                      store::Callback<std::pair<Identity, store::DeleteUserResult>> done);
  // Joins the hashing threads; later calls fail with unavailable.
  void stop();

 private:
  bool start_hash_job();  // false when too many hashes are queued (rate_limited)
  void create_device(std::string user, std::string device_name, store::Callback<LoginResult> done);

  store::Store& store_;
  AuthConfig config_;
  JwtVerifier jwt_;
  std::string dummy_hash_;  // verified against for unknown users: same time as a wrong password
  boost::asio::thread_pool pool_;
  std::atomic<uint32_t> pending_hashes_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace parley::auth
