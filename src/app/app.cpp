#include "app/app.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "auth/account_service.h"
#include "bus/local_bus.h"
#include "common/clock.h"
#include "core/chat_service.h"
#include "core/router.h"
#include "core/typing_service.h"
#include "http/api_routes.h"
#include "http/media_routes.h"
#include "media/fs_media_store.h"
#include "media/s3_media_store.h"
#include "media_inspect/thumbnail.h"
#include "media_service/media_service.h"
#include "net/server.h"
#include "presence/local_presence.h"
#include "presence/presence_hub.h"
#include "push/providers.h"
#include "push/push_worker.h"
#include "registry/local_registry.h"
#include "session/chat_session.h"
#include "session/session_hub.h"
#include "store/rocksdb/rocks_store.h"

namespace parley::app {
namespace {

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return Error{Errc::bad_request, fmt::format("listen must be HOST:PORT, got {}", listen)};
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return Error{Errc::bad_request, fmt::format("bad port in {}", listen)};
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

// The configured MediaStore backend (docs/MEDIA.md).
Result<std::unique_ptr<media::MediaStore>> open_media_store(const Config& config) {
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
    return std::unique_ptr<media::MediaStore>(std::move(opened.value()));
  }
  auto opened = media::FsMediaStore::open(root.string());
  if (!opened) return opened.error();
  return std::unique_ptr<media::MediaStore>(std::move(opened.value()));
}

}  // namespace

int run(const Config& config) {
  auto hp = split_host_port(config.server.listen);
  if (!hp) {
    spdlog::error("{}", hp.error().message);
    return 2;
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(std::filesystem::path(config.server.data_dir) / "db", fs_ec);
  if (fs_ec) {
    spdlog::error("cannot create data directory {}: {}", config.server.data_dir, fs_ec.message());
    return 1;
  }

  // Backends (single node): RocksDB store, in-process registry and bus.
  auto opened = store::rocks::RocksStore::open(
      (std::filesystem::path(config.server.data_dir) / "db").string(), config.store, config.sync);
  if (!opened) {
    spdlog::error("{}", opened.error().message);
    return 1;
  }
  std::unique_ptr<store::Store> store = std::move(opened.value());
  LocalRegistry registry;
  LocalBus bus;
  const NodeId node = config.server.node_id;

  auto jwt = auth::JwtVerifier::create(config.auth.jwt_hs256_secret,
                                       config.auth.jwt_rs256_public_key_file);
  if (!jwt) {
    spdlog::error("{}", jwt.error().message);
    return 2;
  }
  auth::AccountService accounts(*store, config.auth, std::move(jwt.value()));
  SnowflakeGenerator ids(node);
  core::Router router(registry, bus);
  core::ChatService chats(*store, router, ids, config);
  // Node-wide timers (typing expiry, presence batches) run on the main thread.
  boost::asio::io_context control;
  core::TypingService typing(*store, router, config.typing);
  chats.set_on_sent([&typing](const store::Message& m) { typing.message_sent(m); });
  typing.start(control.get_executor());
  session::SessionHub hub;
  bus.subscribe(node, [&hub](const Envelope& env) { hub.handle(env); });

  // Presence: an in-process TTL map; subscriptions and batches in the hub; who may see whom
  // and the durable last_seen come from the store.
  presence::LocalPresence presence(std::chrono::seconds(config.presence.ttl_s));
  presence::HubHooks hooks;
  store::Store& st = *store;
  hooks.visible = [&st](const std::string& watcher, const std::string& target,
                        std::function<void(bool)> cb) {
    st.get_settings(target, [&st, watcher, target, cb](Result<store::UserSettings> s) {
      if (!s) return cb(false);  // no such user: hidden, like someone who hides
      switch (s->presence) {
        case store::PresenceVisibility::everyone:
          return cb(true);
        case store::PresenceVisibility::nobody:
          return cb(false);
        case store::PresenceVisibility::contacts:
          return st.shares_chat(watcher, target,
                                [cb](Result<bool> shared) { cb(shared.ok() && shared.value()); });
      }
    });
  };
  hooks.last_seen = [&st](const std::string& user, std::function<void(int64_t)> cb) {
    st.get_settings(user, [cb](Result<store::UserSettings> s) { cb(s ? s->last_seen : 0); });
  };
  presence::PresenceHub presence_hub(
      presence,
      presence::HubOptions{std::chrono::milliseconds(config.presence.batch_ms),
                           config.presence.max_subscriptions},
      hooks, control.get_executor());
  presence.set_on_change([&presence_hub, &st](const presence::Status& s) {
    presence_hub.on_change(s);
    if (!s.online) st.set_last_seen(s.user, s.last_seen, [](Status) {});
  });
  // Both re-check visibility with store reads: off the store's commit thread, which calls them.
  chats.set_on_visibility_changed([&presence_hub, &control](const std::string& user) {
    boost::asio::post(control, [&presence_hub, user] { presence_hub.visibility_changed(user); });
  });
  chats.set_on_relations_changed([&presence_hub, &control](std::vector<std::string> users) {
    boost::asio::post(control, [&presence_hub, users = std::move(users)] {
      presence_hub.relations_changed(users);
    });
  });
  presence_hub.start();
  // Live sessions refresh their presence a few times per TTL; sessions that were not
  // refreshed (a Presence shared by nodes: a node that died) expire.
  boost::asio::steady_timer presence_refresh(control);
  const auto refresh_every = std::chrono::milliseconds(config.presence.ttl_s * 1000 / 3);
  std::function<void()> refresh = [&] {
    presence_refresh.expires_after(refresh_every);
    presence_refresh.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      int64_t now = now_ms();
      hub.for_each([&](const std::string& user, uint64_t conn) {
        presence.touch(user, fmt::format("{}:{}", node, conn), now);
      });
      presence.expire(now);
      refresh();
    });
  };
  refresh();

  // Media: objects behind the MediaStore seam; uploads, downloads and housekeeping in the
  // media service, on its own thread pool.
  std::unique_ptr<media::MediaStore> objects;
  std::unique_ptr<media_service::MediaService> media;
  std::unique_ptr<http::MediaRoutes> media_routes;
  boost::asio::steady_timer media_sweep(control);
  std::function<void()> sweep;
  if (config.media.enabled) {
    auto opened_media = open_media_store(config);
    if (!opened_media) {
      spdlog::error("media: {}", opened_media.error().message);
      return 1;
    }
    if (auto vips = media_inspect::init_image_library(); !vips)
      spdlog::warn("media: no thumbnails: {}", vips.error().message);
    objects = std::move(opened_media.value());
    if (config.media.url_signing_key.empty())
      spdlog::warn("media: no media.url_signing_key set: signed URLs last until a restart");
    media = std::make_unique<media_service::MediaService>(*store, *objects, config.media);
    media_routes = std::make_unique<http::MediaRoutes>(accounts, *media);
    sweep = [&] {
      media_sweep.expires_after(std::chrono::seconds(config.media.sweep_interval_s));
      media_sweep.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        // The next pass is scheduled once this one is over, so passes never overlap.
        media->sweep([&](media_service::SweepStats) { boost::asio::post(control, sweep); });
      });
    };
    sweep();
  }

  // Push: queue jobs for offline devices when a provider is configured (docs/PUSH.md).
  const bool push_on = config.push.enabled && (!config.push.webhook_url.empty() ||
                                               !config.push.fcm_service_account_file.empty() ||
                                               !config.push.apns_key_file.empty());
  std::unique_ptr<core::PushNotifier> push_notifier;
  std::unique_ptr<push::PushWorker> push_worker;
  if (push_on) {
    auto providers = push::make_providers(config.push);
    if (!providers) {
      spdlog::error("push: {}", providers.error().message);
      return 2;
    }
    push_worker =
        std::make_unique<push::PushWorker>(*store, std::move(providers.value()), config.push);
    push_worker->start();
    push_notifier = std::make_unique<core::PushNotifier>(
        *store, config.push, [&hub](const std::string& user) { return hub.devices(user); });
    chats.set_push_notifier(push_notifier.get());
  }

  proto::ParseLimits limits{config.limits.max_message_bytes, config.limits.max_sync_page,
                            config.limits.max_history_page,  config.limits.max_chats_page,
                            config.groups.max_name_bytes,    1000};
  session::SessionService sessions(session::SessionDeps{config, limits, hub, registry, node,
                                                        accounts, chats, typing, presence,
                                                        presence_hub, push_notifier.get()});
  // The web client (docs/WEB.md), read once from server.web_root.
  std::unique_ptr<http::StaticFiles> web;
  if (!config.server.web_root.empty()) {
    auto loaded = http::StaticFiles::load(
        config.server.web_root, {config.server.web_max_bytes, config.server.web_max_files});
    if (!loaded) {
      spdlog::error("web client: {}", loaded.error().message);
      return 2;
    }
    web = std::move(loaded.value());
    spdlog::info("web client: {} files from {}", web->size(), config.server.web_root);
  }
  http::ApiRoutes routes(accounts, router, media.get(), media_routes.get(), web.get());

  net::ServerOptions opts;
  opts.host = hp->first;
  opts.port = hp->second;
  opts.threads = config.server.threads ? config.server.threads
                                       : std::max(1u, std::thread::hardware_concurrency());
  opts.max_connections = config.limits.max_connections;
  opts.http.body_limit = config.limits.http_body_bytes;
  opts.http.timeout_s = config.ws.handshake_timeout_s;
  opts.ws = net::WsOptions{config.ws.max_frame_bytes,        config.ws.max_send_queue_bytes,
                           config.ws.max_answer_queue_bytes, config.ws.idle_timeout_s,
                           config.ws.handshake_timeout_s,    config.ws.max_batch_bytes};
  net::Server server(opts, routes, sessions);
  auto port = server.listen();
  if (!port) {
    spdlog::error("{}", port.error().message);
    return 1;
  }
  server.start();
  routes.set_ready(true);
  spdlog::info("parleyd {} threads, data in {}, durability {}", opts.threads,
               config.server.data_dir,
               config.store.durability == Durability::fsync   ? "fsync"
               : config.store.durability == Durability::flush ? "flush"
                                                              : "none");
  // The one line on stdout: scripts and tests read the bound port from it.
  std::printf("listening on %s:%u\n", opts.host.c_str(), port.value());
  std::fflush(stdout);

  boost::asio::signal_set signals(control, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code, int sig) {
    spdlog::info("signal {}: draining", sig);
    control.stop();
  });
  control.run();
  typing.stop();
  presence_hub.stop();
  presence_refresh.cancel();
  media_sweep.cancel();

  // Drain: refuse new work, close every WebSocket with 1001, finish queued writes.
  routes.set_draining();
  server.stop_accepting();
  server.close_connections(session::kCloseGoingAway, "server shutting down",
                           std::chrono::seconds(5));
  server.stop();
  accounts.stop();
  if (push_worker) push_worker->stop();
  if (media) media->stop();
  store->close();
  spdlog::info("stopped");
  return 0;
}

}  // namespace parley::app
