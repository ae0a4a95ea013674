#include "app/backends.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "bus/local_bus.h"
#include "bus/redis_bus.h"
#include "media/fs_media_store.h"
#include "media/s3_media_store.h"
#include "presence/local_presence.h"
#include "presence/redis_presence.h"
#include "redis/redis_client.h"
#include "registry/local_registry.h"
#include "registry/redis_registry.h"
#include "store/postgres/pg_sharded_store.h"
#include "store/postgres/pg_store.h"
#include "store/rocksdb/rocks_store.h"

namespace parley::app {

std::vector<std::pair<std::string, Health>> Backends::health() const {
  std::vector<std::pair<std::string, Health>> out;
  if (store) out.emplace_back("store", store->health());
  if (registry) out.emplace_back("registry", registry->health());
  if (bus) out.emplace_back("bus", bus->health());
  if (presence) out.emplace_back("presence", presence->health());
  return out;
}

Result<std::shared_ptr<store::Store>> open_store(const Config& config) {
  if (!config.cluster.postgres.empty()) {
    store::pg::PgConfig pg;
    pg.pool_size = config.cluster.postgres_pool;
    pg.max_batch = config.cluster.postgres_batch;
    pg.max_queue = config.cluster.postgres_queue;
    pg.connect_timeout_s = std::max<uint32_t>(1, (config.cluster.connect_timeout_ms + 999) / 1000);
    pg.statement_timeout_ms = config.cluster.command_timeout_ms;
    pg.reconnect_min_ms = config.cluster.reconnect_min_ms;
    pg.reconnect_max_ms = config.cluster.reconnect_max_ms;
    if (config.cluster.postgres.size() == 1) {
      pg.conninfo = config.cluster.postgres.front();
      auto opened = store::pg::PgStore::open(pg, config.sync);
      if (!opened) return Error{opened.error().code, "postgresql: " + opened.error().message};
      return std::shared_ptr<store::Store>(std::move(opened.value()));
    }
    // Several servers: the store's rows are sharded over them, in the order listed.
    std::vector<store::pg::PgConfig> servers;
    for (const auto& conninfo : config.cluster.postgres) {
      servers.push_back(pg);
      servers.back().conninfo = conninfo;
    }
    auto opened = store::pg::ShardedPgStore::open(std::move(servers), config.sync);
    if (!opened) return Error{opened.error().code, "postgresql: " + opened.error().message};
    return std::shared_ptr<store::Store>(std::move(opened.value()));
  }
  const auto dir = std::filesystem::path(config.server.data_dir) / "db";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Error{Errc::internal, fmt::format("cannot create data directory {}: {}",
                                             config.server.data_dir, ec.message())};
  auto opened = store::rocks::RocksStore::open(dir.string(), config.store, config.sync);
  if (!opened) return opened.error();
  return std::shared_ptr<store::Store>(std::move(opened.value()));
}

Result<std::shared_ptr<redis::RedisShards>> open_redis(const Config& config) {
  if (config.cluster.redis.empty()) return std::shared_ptr<redis::RedisShards>();
  redis::RedisOptions options;
  options.connect_timeout = std::chrono::milliseconds(config.cluster.connect_timeout_ms);
  options.command_timeout = std::chrono::milliseconds(config.cluster.command_timeout_ms);
  options.reconnect_min = std::chrono::milliseconds(config.cluster.reconnect_min_ms);
  options.reconnect_max = std::chrono::milliseconds(config.cluster.reconnect_max_ms);
  auto shards = redis::RedisShards::open(config.cluster.redis, options);
  if (!shards) return Error{shards.error().code, "redis: " + shards.error().message};
  return shards;
}

std::shared_ptr<Registry> open_registry(const Config& config,
                                        std::shared_ptr<redis::RedisShards> redis) {
  const std::chrono::seconds ttl(config.presence.ttl_s);
  if (redis) return std::make_shared<RedisRegistry>(std::move(redis), ttl);
  return std::make_shared<LocalRegistry>(ttl);
}

std::shared_ptr<Bus> open_bus(const Config&, std::shared_ptr<redis::RedisShards> redis) {
  if (redis) return std::make_shared<RedisBus>(std::move(redis));
  return std::make_shared<LocalBus>();
}

std::shared_ptr<presence::Presence> open_presence(const Config& config,
                                                  std::shared_ptr<redis::RedisShards> redis) {
  const std::chrono::seconds ttl(config.presence.ttl_s);
  if (redis) return std::make_shared<presence::RedisPresence>(std::move(redis), ttl);
  return std::make_shared<presence::LocalPresence>(ttl);
}

Result<std::shared_ptr<media::MediaStore>> open_media_store(const Config& config) {
  if (!config.media.enabled) return std::shared_ptr<media::MediaStore>();
  const auto root = std::filesystem::path(config.server.data_dir) / "media";
  if (config.media.backend == "s3") {
    media::S3Config s3;
    s3.endpoint = config.media.s3_endpoint;
    s3.region = config.media.s3_region;
    s3.bucket = config.media.s3_bucket;
    s3.access_key = config.media.s3_access_key;
    s3.secret_key = config.media.s3_secret_key;
    s3.path_style = config.media.s3_path_style;
    s3.prefix = config.media.s3_prefix;
    s3.spool_dir = (root / "tmp").string();
    auto opened = media::S3MediaStore::open(std::move(s3));
    if (!opened) return opened.error();
    return std::shared_ptr<media::MediaStore>(std::move(opened.value()));
  }
  auto opened = media::FsMediaStore::open(root.string());
  if (!opened) return opened.error();
  return std::shared_ptr<media::MediaStore>(std::move(opened.value()));
}

Result<Backends> open_backends(const Config& config) {
  if (config.server.node_id > kMaxNodeId)
    return Error{Errc::bad_request, fmt::format("server.node_id must be 0 to {}", kMaxNodeId)};
  Backends b;
  auto store = open_store(config);
  if (!store) return store.error();
  b.store = std::move(store.value());
  auto redis = open_redis(config);
  if (!redis) return redis.error();
  // Servers that are down at start are not fatal: the clients reconnect by themselves, and
  // /readyz says what is missing meanwhile.
  if (redis.value() &&
      !redis.value()->wait_ready(std::chrono::milliseconds(config.cluster.connect_timeout_ms)))
    spdlog::warn("redis: not every server answers yet: {}", redis.value()->health().detail);
  b.redis = redis.value();
  b.registry = open_registry(config, redis.value());
  b.bus = open_bus(config, redis.value());
  b.presence = open_presence(config, redis.value());
  auto media = open_media_store(config);
  if (!media) return Error{media.error().code, "media: " + media.error().message};
  b.media = std::move(media.value());
  return b;
}

}  // namespace parley::app
