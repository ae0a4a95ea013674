// Every setting of parleyd, with its default beside it (docs/CONFIG.md lists them).
#pragma once

#include <cstdint>
#include <string>

#include "common/errc.h"

namespace parley {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  uint32_t threads = 0;  // 0 = one per core
  uint32_t node_id = 0;
  std::string data_dir = "./data";
  std::string web_root;  // static files (web client); empty = none
};

struct WsConfig {
  uint32_t max_frame_bytes = 64 * 1024;
  uint32_t max_send_queue_bytes = 4 * 1024 * 1024;
  uint32_t idle_timeout_s = 60;
  uint32_t handshake_timeout_s = 10;
  uint32_t auth_timeout_s = 10;
};

struct LimitsConfig {
  uint32_t max_message_bytes = 4096;
  uint32_t requests_per_second = 200;
  uint32_t burst = 400;
  uint32_t max_inflight_sends = 256;
  uint32_t flood_close_after = 100;
  uint32_t max_history_page = 200;
  uint32_t max_sync_page = 1000;
  uint32_t max_chats_page = 500;
  uint32_t http_body_bytes = 16 * 1024;
  uint32_t max_connections = 100000;
};

struct AuthConfig {
  bool allow_registration = true;
  uint32_t min_password_length = 8;
  uint64_t argon2_opslimit = 2;          // crypto_pwhash_OPSLIMIT_INTERACTIVE
  uint64_t argon2_memlimit_kib = 65536;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  uint32_t hash_threads = 2;
  std::string jwt_hs256_secret;
  std::string jwt_rs256_public_key_file;
};

enum class Durability { fsync, flush, none };

struct StoreConfig {
  Durability durability = Durability::fsync;
  uint32_t max_batch = 1024;
};

struct SyncConfig {
  uint64_t update_log_retention = 100000;
  uint32_t snapshot_chats = 100;
  uint32_t snapshot_messages = 20;
};

struct GroupsConfig {
  uint32_t max_members = 1024;
  uint32_t max_groups_per_user = 1000;
  uint32_t large_threshold = 256;  // above: fan-out on read (one write per message)
  uint32_t max_name_bytes = 128;
};

struct PresenceConfig {
  uint32_t batch_ms = 1000;          // at most one presence push per connection per window
  uint32_t max_subscriptions = 500;  // users one connection may watch (~200 bytes each)
  uint32_t ttl_s = 90;               // a session not refreshed for this long counts as gone
};

struct TypingConfig {
  uint32_t ttl_ms = 6000;           // a start not renewed within this is stopped by the server
  uint32_t min_interval_ms = 1000;  // per user and chat: starts closer together are not passed on
};

struct Config {
  ServerConfig server;
  WsConfig ws;
  LimitsConfig limits;
  AuthConfig auth;
  StoreConfig store;
  SyncConfig sync;
  GroupsConfig groups;
  PresenceConfig presence;
  TypingConfig typing;
  std::string log_level = "info";
};

// Reads a TOML file over the defaults. Unknown keys and out-of-range values are errors,
// so that a typo never silently leaves a default in force.
Result<Config> load_config_file(const std::string& path, Config base = {});
Result<Config> parse_config(std::string_view toml_text, Config base = {});

}  // namespace parley
