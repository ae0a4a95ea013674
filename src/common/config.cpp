#include "common/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace parley {
namespace {

using Setter = std::function<std::string(const toml::node&)>;  // "" = ok, else error

template <class T>
Setter uint_field(T* out, uint64_t min, uint64_t max) {
  return [=](const toml::node& n) -> std::string {
    auto v = n.value<int64_t>();
    if (!v || *v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max)
      return fmt::format("must be an integer in [{}, {}]", min, max);
    *out = static_cast<T>(*v);
    return "";
  };
}

Setter string_field(std::string* out) {
  return [=](const toml::node& n) -> std::string {
    auto v = n.value<std::string>();
    if (!v) return "must be a string";
    *out = *v;
    return "";
  };
}

Setter bool_field(bool* out) {
  return [=](const toml::node& n) -> std::string {
    auto v = n.value<bool>();
    if (!v) return "must be true or false";
    *out = *v;
    return "";
  };
}

Setter string_list_field(std::vector<std::string>* out) {
  return [=](const toml::node& n) -> std::string {
    auto* arr = n.as_array();
    if (!arr) return "must be an array of strings";
    std::vector<std::string> values;
    for (const auto& item : *arr) {
      auto v = item.value<std::string>();
      if (!v || v->empty()) return "must be an array of non-empty strings";
      values.push_back(*v);
    }
    *out = std::move(values);
    return "";
  };
}

std::map<std::string, Setter> setters(Config& c) {
  constexpr uint64_t k32 = UINT32_MAX;
  return {
      {"server.listen", string_field(&c.server.listen)},
      {"server.threads", uint_field(&c.server.threads, 0, 256)},
      {"server.node_id", uint_field(&c.server.node_id, 0, 1023)},
      {"server.data_dir", string_field(&c.server.data_dir)},
      {"server.web_root", string_field(&c.server.web_root)},
      {"server.web_max_bytes", uint_field(&c.server.web_max_bytes, 1024, 1ull << 32)},
      {"server.web_max_files", uint_field(&c.server.web_max_files, 1, 1u << 20)},
      {"ws.max_frame_bytes", uint_field(&c.ws.max_frame_bytes, 1024, 64u << 20)},
      {"ws.max_send_queue_bytes", uint_field(&c.ws.max_send_queue_bytes, 4096, 1u << 30)},
      {"ws.max_answer_queue_bytes", uint_field(&c.ws.max_answer_queue_bytes, 16384, 1u << 30)},
      {"ws.idle_timeout_s", uint_field(&c.ws.idle_timeout_s, 2, 86400)},
      {"ws.handshake_timeout_s", uint_field(&c.ws.handshake_timeout_s, 1, 3600)},
      {"ws.auth_timeout_s", uint_field(&c.ws.auth_timeout_s, 1, 3600)},
      {"ws.max_batch_bytes", uint_field(&c.ws.max_batch_bytes, 1024, 16u << 20)},
      {"limits.max_message_bytes", uint_field(&c.limits.max_message_bytes, 1, 1u << 20)},
      {"limits.requests_per_second", uint_field(&c.limits.requests_per_second, 1, k32)},
      {"limits.burst", uint_field(&c.limits.burst, 1, k32)},
      {"limits.max_inflight_sends", uint_field(&c.limits.max_inflight_sends, 1, 1u << 20)},
      {"limits.flood_close_after", uint_field(&c.limits.flood_close_after, 1, k32)},
      {"limits.max_history_page", uint_field(&c.limits.max_history_page, 1, 10000)},
      {"limits.max_sync_page", uint_field(&c.limits.max_sync_page, 1, 100000)},
      {"limits.max_chats_page", uint_field(&c.limits.max_chats_page, 1, 100000)},
      {"limits.max_response_bytes", uint_field(&c.limits.max_response_bytes, 16384, 1u << 30)},
      {"limits.http_body_bytes", uint_field(&c.limits.http_body_bytes, 256, 64u << 20)},
      {"limits.max_connections", uint_field(&c.limits.max_connections, 1, 100000000)},
      {"auth.allow_registration", bool_field(&c.auth.allow_registration)},
      {"auth.min_password_length", uint_field(&c.auth.min_password_length, 1, 1024)},
      {"auth.argon2_opslimit", uint_field(&c.auth.argon2_opslimit, 1, 100)},
      {"auth.argon2_memlimit_kib", uint_field(&c.auth.argon2_memlimit_kib, 8, 4u << 20)},
      {"auth.max_devices_per_user", uint_field(&c.auth.max_devices_per_user, 0, 1u << 20)},
      {"auth.hash_threads", uint_field(&c.auth.hash_threads, 1, 64)},
      {"auth.jwt_hs256_secret", string_field(&c.auth.jwt_hs256_secret)},
      {"auth.jwt_rs256_public_key_file", string_field(&c.auth.jwt_rs256_public_key_file)},
      {"store.max_batch", uint_field(&c.store.max_batch, 1, 1u << 20)},
      {"sync.update_log_retention", uint_field(&c.sync.update_log_retention, 100, 1ull << 40)},
      {"sync.snapshot_chats", uint_field(&c.sync.snapshot_chats, 1, 10000)},
      {"sync.snapshot_messages", uint_field(&c.sync.snapshot_messages, 1, 1000)},
      {"sync.gap_hold_ms", uint_field(&c.sync.gap_hold_ms, 1, 60000)},
      {"sync.gap_retries", uint_field(&c.sync.gap_retries, 0, 1000)},
      {"sync.max_held_updates", uint_field(&c.sync.max_held_updates, 1, 1000000)},
      {"groups.max_members", uint_field(&c.groups.max_members, 2, 1000000)},
      {"groups.max_groups_per_user", uint_field(&c.groups.max_groups_per_user, 1, 1000000)},
      {"groups.large_threshold", uint_field(&c.groups.large_threshold, 2, 1000000)},
      {"groups.max_name_bytes", uint_field(&c.groups.max_name_bytes, 1, 1024)},
      {"presence.batch_ms", uint_field(&c.presence.batch_ms, 10, 60000)},
      {"presence.max_subscriptions", uint_field(&c.presence.max_subscriptions, 1, 100000)},
      {"presence.ttl_s", uint_field(&c.presence.ttl_s, 5, 86400)},
      {"typing.ttl_ms", uint_field(&c.typing.ttl_ms, 100, 600000)},
      {"typing.min_interval_ms", uint_field(&c.typing.min_interval_ms, 1, 600000)},
      {"media.enabled", bool_field(&c.media.enabled)},
      {"media.backend", string_field(&c.media.backend)},
      {"media.max_upload_bytes", uint_field(&c.media.max_upload_bytes, 1, 1ull << 40)},
      {"media.allowed_types", string_list_field(&c.media.allowed_types)},
      {"media.thumbnail_px", uint_field(&c.media.thumbnail_px, 16, 4096)},
      {"media.max_image_pixels", uint_field(&c.media.max_image_pixels, 1, 1ull << 32)},
      {"media.threads", uint_field(&c.media.threads, 1, 256)},
      {"media.max_uploads_per_user", uint_field(&c.media.max_uploads_per_user, 1, 100000)},
      {"media.max_uploads", uint_field(&c.media.max_uploads, 1, 1000000)},
      {"media.signed_url_ttl_s", uint_field(&c.media.signed_url_ttl_s, 1, 7 * 86400)},
      {"media.url_signing_key", string_field(&c.media.url_signing_key)},
      {"media.orphan_ttl_s", uint_field(&c.media.orphan_ttl_s, 1, 365u * 86400)},
      {"media.sweep_interval_s", uint_field(&c.media.sweep_interval_s, 1, 30u * 86400)},
      {"media.s3_endpoint", string_field(&c.media.s3_endpoint)},
      {"media.s3_region", string_field(&c.media.s3_region)},
      {"media.s3_bucket", string_field(&c.media.s3_bucket)},
      {"media.s3_access_key", string_field(&c.media.s3_access_key)},
      {"media.s3_secret_key", string_field(&c.media.s3_secret_key)},
      {"media.s3_path_style", bool_field(&c.media.s3_path_style)},
      {"media.s3_prefix", string_field(&c.media.s3_prefix)},
      {"push.enabled", bool_field(&c.push.enabled)},
      {"push.collapse_ms", uint_field(&c.push.collapse_ms, 0, 3600000)},
      {"push.lease_s", uint_field(&c.push.lease_s, 1, 86400)},
      {"push.poll_ms", uint_field(&c.push.poll_ms, 10, 60000)},
      {"push.concurrency", uint_field(&c.push.concurrency, 1, 1024)},
      {"push.timeout_ms", uint_field(&c.push.timeout_ms, 100, 600000)},
      {"push.max_attempts", uint_field(&c.push.max_attempts, 1, 100)},
      {"push.backoff_base_ms", uint_field(&c.push.backoff_base_ms, 1, 3600000)},
      {"push.backoff_max_ms", uint_field(&c.push.backoff_max_ms, 1, 86400000)},
      {"push.stats_interval_s", uint_field(&c.push.stats_interval_s, 1, 86400)},
      {"push.webhook_url", string_field(&c.push.webhook_url)},
      {"push.webhook_secret", string_field(&c.push.webhook_secret)},
      {"push.webhook_max_bytes", uint_field(&c.push.webhook_max_bytes, 256, 1u << 20)},
      {"push.fcm_endpoint", string_field(&c.push.fcm_endpoint)},
      {"push.fcm_project_id", string_field(&c.push.fcm_project_id)},
      {"push.fcm_service_account_file", string_field(&c.push.fcm_service_account_file)},
      {"push.fcm_token_uri", string_field(&c.push.fcm_token_uri)},
      {"push.apns_endpoint", string_field(&c.push.apns_endpoint)},
      {"push.apns_key_file", string_field(&c.push.apns_key_file)},
      {"push.apns_key_id", string_field(&c.push.apns_key_id)},
      {"push.apns_team_id", string_field(&c.push.apns_team_id)},
      {"push.apns_topic", string_field(&c.push.apns_topic)},
      {"push.ca_file", string_field(&c.push.ca_file)},
      {"cluster.redis", string_list_field(&c.cluster.redis)},
      {"cluster.postgres", string_list_field(&c.cluster.postgres)},
      {"cluster.postgres_pool", uint_field(&c.cluster.postgres_pool, 1, 256)},
      {"cluster.postgres_batch", uint_field(&c.cluster.postgres_batch, 1, 10000)},
      {"cluster.postgres_queue", uint_field(&c.cluster.postgres_queue, 1, 10000000)},
      {"cluster.connect_timeout_ms", uint_field(&c.cluster.connect_timeout_ms, 10, 600000)},
      {"cluster.command_timeout_ms", uint_field(&c.cluster.command_timeout_ms, 10, 600000)},
      {"cluster.reconnect_min_ms", uint_field(&c.cluster.reconnect_min_ms, 1, 600000)},
      {"cluster.reconnect_max_ms", uint_field(&c.cluster.reconnect_max_ms, 1, 3600000)},
      {"log.level", string_field(&c.log_level)},
  };
}

}  // namespace

Result<Config> parse_config(std::string_view text, Config c) {
  toml::table tbl;
  try {
    tbl = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return Error{Errc::bad_request,
                 fmt::format("config: {} at line {}", e.description(), e.source().begin.line)};
  }
  auto set = setters(c);
  std::string durability;
  set["store.durability"] = string_field(&durability);
  for (auto& [section, node] : tbl) {
    auto* inner = node.as_table();
    if (!inner)
      return Error{Errc::bad_request, fmt::format("config: [{}] must be a table", section.str())};
    for (auto& [key, value] : *inner) {
      std::string name = fmt::format("{}.{}", section.str(), key.str());
      auto it = set.find(name);
      if (it == set.end())
        return Error{Errc::bad_request, fmt::format("config: unknown key {}", name)};
      if (auto err = it->second(value); !err.empty())
        return Error{Errc::bad_request, fmt::format("config: {} {}", name, err)};
    }
  }
  if (!durability.empty()) {
    if (durability == "fsync")
      c.store.durability = Durability::fsync;
    else if (durability == "flush")
      c.store.durability = Durability::flush;
    else if (durability == "none")
      c.store.durability = Durability::none;
    else
      return Error{Errc::bad_request, "config: store.durability must be fsync, flush or none"};
  }
  if (c.limits.burst < 1) c.limits.burst = 1;
  // One answer must always fit in what a connection may queue of answers (findings of
  // 2026-12-05: a page larger than the queue closed the connection that asked for it).
  if (c.limits.max_response_bytes > c.ws.max_answer_queue_bytes)
    return Error{Errc::bad_request,
                 "config: limits.max_response_bytes must not exceed ws.max_answer_queue_bytes"};
  if (c.media.backend != "fs" && c.media.backend != "s3")
    return Error{Errc::bad_request, "config: media.backend must be fs or s3"};
  if (c.media.backend == "s3" && (c.media.s3_endpoint.empty() || c.media.s3_bucket.empty()))
    return Error{Errc::bad_request,
                 "config: media.backend = \"s3\" needs media.s3_endpoint and media.s3_bucket"};
  if (!c.cluster.redis.empty() && c.cluster.postgres.empty())
    return Error{Errc::bad_request,
                 "config: cluster.redis needs cluster.postgres: the nodes of a cluster share one "
                 "store (RocksDB is one node's)"};
  for (size_t i = 0; i < c.cluster.postgres.size(); ++i)
    for (size_t j = i + 1; j < c.cluster.postgres.size(); ++j)
      if (c.cluster.postgres[i] == c.cluster.postgres[j])
        return Error{Errc::bad_request,
                     "config: cluster.postgres lists a server twice: each shard is a server (or "
                     "database) of its own"};
  if (c.cluster.reconnect_min_ms > c.cluster.reconnect_max_ms)
    return Error{Errc::bad_request,
                 "config: cluster.reconnect_min_ms must not exceed cluster.reconnect_max_ms"};
  return c;
}

Result<Config> load_config_file(const std::string& path, Config base) {
  std::ifstream in(path);
  if (!in) return Error{Errc::not_found, fmt::format("config: cannot read {}", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), std::move(base));
}

}  // namespace parley
