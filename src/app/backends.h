// The backends of a node, one per seam (DESIGN.md §5), made from the configuration: the only
// place that names a backend. Nodes of one test process may share them (one store, one
// registry, one presence, and Bus endpoints on one LocalBusHub): that is how the in-process
// cluster tests run several nodes.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "common/config.h"
#include "common/health.h"
#include "media/media_store.h"
#include "presence/presence.h"
#include "redis/redis_client.h"
#include "registry/registry.h"
#include "store/store.h"

namespace parley::app {

struct Backends {
  std::shared_ptr<store::Store> store;
  std::shared_ptr<Registry> registry;
  std::shared_ptr<Bus> bus;  // this node's endpoint
  std::shared_ptr<presence::Presence> presence;
  std::shared_ptr<media::MediaStore> media;  // null when media.enabled is false
  // The Redis servers the registry, bus and presence are on (null when they live in the
  // process): a node writes its sessions there again when one of them comes back.
  std::shared_ptr<redis::RedisShards> redis;

  // Each backend's health, by seam name, for /readyz.
  std::vector<std::pair<std::string, Health>> health() const;
};

// One per seam, from the configuration: PostgreSQL and Redis when [cluster] lists servers.
Result<std::shared_ptr<store::Store>> open_store(const Config& config);
// The Redis servers of cluster.redis, shared by the Registry, Bus and Presence; null when
// there are none (one node: they live in the process).
Result<std::shared_ptr<redis::RedisShards>> open_redis(const Config& config);
std::shared_ptr<Registry> open_registry(const Config& config,
                                        std::shared_ptr<redis::RedisShards> redis);
std::shared_ptr<Bus> open_bus(const Config& config, std::shared_ptr<redis::RedisShards> redis);
std::shared_ptr<presence::Presence> open_presence(const Config& config,
                                                  std::shared_ptr<redis::RedisShards> redis);
Result<std::shared_ptr<media::MediaStore>> open_media_store(const Config& config);
// All of them. Refuses a configuration whose backends cannot work together (node ids).
Result<Backends> open_backends(const Config& config);

}  // namespace parley::app
