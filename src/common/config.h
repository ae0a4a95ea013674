// Every setting of parleyd, with its default beside it (docs/CONFIG.md lists them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/errc.h"

namespace parley {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  uint32_t threads = 0;  // 0 = one per core
  uint32_t node_id = 0;
  std::string data_dir = "./data";
  std::string web_root;                  // static files (web client); empty = none
  uint64_t web_max_bytes = 32ull << 20;  // all of web_root, held in memory
  uint32_t web_max_files = 2000;
};

struct WsConfig {
  uint32_t max_frame_bytes = 64 * 1024;
  uint32_t max_send_queue_bytes = 4 * 1024 * 1024;    // pushes a client has not read yet
  uint32_t max_answer_queue_bytes = 8 * 1024 * 1024;  // answers a client has not read yet
  uint32_t idle_timeout_s = 60;
  uint32_t handshake_timeout_s = 10;
  uint32_t auth_timeout_s = 10;
  uint32_t max_batch_bytes = 64 * 1024;  // one batched message (clients that ask, §3.1)
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
  // One answer (a sync, history or chats page) stops early beyond this many bytes and says
  // has_more; at least one item is always in it.
  uint32_t max_response_bytes = 1024 * 1024;
  uint32_t http_body_bytes = 16 * 1024;
  uint32_t max_connections = 100000;
};

struct AuthConfig {
  bool allow_registration = true;
  uint32_t min_password_length = 8;
  uint64_t argon2_opslimit = 2;          // crypto_pwhash_OPSLIMIT_INTERACTIVE
  uint64_t argon2_memlimit_kib = 65536;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  uint32_t hash_threads = 2;
  uint32_t max_devices_per_user = 100;  // live devices (logins, linked devices); 0 = no limit
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
  // A device's pushes arrive out of pts order (commits completing out of order, several
  // nodes): a push after a gap is held this long, then the gap is read from the store.
  uint32_t gap_hold_ms = 100;
  uint32_t gap_retries = 10;         // reads of one gap before it is left to the client's sync
  uint32_t max_held_updates = 1000;  // per device; more held: read the gap at once
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

// Attachments (docs/MEDIA.md).
struct MediaConfig {
  bool enabled = true;
  std::string backend = "fs";                // "fs" (DATA_DIR/media) or "s3"
  uint64_t max_upload_bytes = 100ull << 20;  // per upload
  std::vector<std::string> allowed_types;    // empty: the built-in list (MEDIA.md)
  uint32_t thumbnail_px = 320;               // thumbnails fit in this square
  uint64_t max_image_pixels = 50'000'000;    // width * height of an uploaded image
  uint32_t threads = 2;                      // blocking storage and image work
  uint32_t max_uploads_per_user = 4;         // in progress at once
  uint32_t max_uploads = 64;                 // in progress at once on the node
  uint32_t signed_url_ttl_s = 300;
  std::string url_signing_key;    // empty: random per process (one node only)
  uint32_t orphan_ttl_s = 86400;  // unreferenced uploads live this long
  uint32_t sweep_interval_s = 3600;
  // backend = "s3"
  std::string s3_endpoint;
  std::string s3_region = "us-east-1";
  std::string s3_bucket;
  std::string s3_access_key;
  std::string s3_secret_key;
  bool s3_path_style = true;
  std::string s3_prefix;
};

// Push notifications for offline devices (docs/PUSH.md). A provider is on when its
// credentials are set.
struct PushConfig {
  bool enabled = true;
  uint32_t collapse_ms = 1000;  // a job waits this long for more messages of its chat
  uint32_t lease_s = 60;        // a claimed job returns to the queue after this
  uint32_t poll_ms = 200;       // how often workers look for due jobs
  uint32_t concurrency = 8;     // requests in flight per provider
  uint32_t timeout_ms = 10000;  // per request
  uint32_t max_attempts = 8;
  uint32_t backoff_base_ms = 1000;
  uint32_t backoff_max_ms = 300000;
  uint32_t stats_interval_s = 60;  // queue depth and counters to the log
  // Webhook
  std::string webhook_url;
  std::string webhook_secret;
  uint32_t webhook_max_bytes = 4096;
  // FCM HTTP v1
  std::string fcm_endpoint = "https://fcm.googleapis.com";
  std::string fcm_project_id;
  std::string fcm_service_account_file;
  std::string fcm_token_uri;  // "" = the service account file's token_uri
  // APNs
  std::string apns_endpoint = "https://api.push.apple.com";
  std::string apns_key_file;  // the .p8 EC private key
  std::string apns_key_id;
  std::string apns_team_id;
  std::string apns_topic;  // default bundle id when a device gives none
  std::string ca_file;     // extra CA bundle for provider endpoints (tests); "" = system
};

// Many nodes (docs/SCALING.md). Without Redis and PostgreSQL servers a node runs alone: the
// Store is RocksDB in data_dir and Registry, Bus and Presence live in the process.
struct ClusterConfig {
  // Redis servers ("host:port"). Keys and channels are spread over them by a stable hash of
  // the user, chat or node id, so their order is part of the layout: append, never reorder.
  std::vector<std::string> redis;
  // PostgreSQL servers (libpq connection strings). Same rule for the order.
  std::vector<std::string> postgres;
  uint32_t postgres_pool = 4;       // connections per PostgreSQL server
  uint32_t postgres_batch = 64;     // appends per group commit
  uint32_t postgres_queue = 10000;  // queued operations per server before `unavailable`
  uint32_t connect_timeout_ms = 2000;
  uint32_t command_timeout_ms = 5000;  // one Redis command or PostgreSQL statement
  uint32_t reconnect_min_ms = 100;     // backoff between reconnects, doubling, with jitter
  uint32_t reconnect_max_ms = 5000;
  bool enabled() const { return !redis.empty() || !postgres.empty(); }
};

struct Config {
  ServerConfig server;
  ClusterConfig cluster;
  WsConfig ws;
  LimitsConfig limits;
  AuthConfig auth;
  StoreConfig store;
  SyncConfig sync;
  GroupsConfig groups;
  PresenceConfig presence;
  TypingConfig typing;
  MediaConfig media;
  PushConfig push;
  std::string log_level = "info";
};

// Reads a TOML file over the defaults. Unknown keys and out-of-range values are errors,
// so that a typo never silently leaves a default in force.
Result<Config> load_config_file(const std::string& path, Config base = {});
Result<Config> parse_config(std::string_view toml_text, Config base = {});

}  // namespace parley
