#include "app/node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "app/node_identity.h"
#include "auth/account_service.h"
#include "common/clock.h"
#include "common/ids.h"
#include "core/chat_service.h"
#include "core/push_notifier.h"
#include "core/router.h"
#include "core/typing_service.h"
#include "http/api_routes.h"
#include "http/media_routes.h"
#include "http/static_files.h"
#include "media_inspect/thumbnail.h"
#include "media_service/media_service.h"
#include "net/server.h"
#include "presence/presence_hub.h"
#include "presence/presence_reporter.h"
#include "push/providers.h"
#include "push/push_worker.h"
#include "registry/node_ledger.h"
#include "session/chat_session.h"
#include "session/session_hub.h"

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

// Who may see whom, and the durable last_seen, come from the store.
presence::HubHooks presence_hooks(store::Store& st) {
  presence::HubHooks hooks;
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
  return hooks;
}

}  // namespace

// Declared in the order they are built: they are destroyed the other way round.
struct Node::Parts {
  Parts(const Config& c, Backends b) : config(c), backends(std::move(b)), ids(c.server.node_id) {}

  const Config config;  // components keep references into it
  Backends backends;
  SnowflakeGenerator ids;
  // The node's sessions attach and detach through it, so that it can write them again.
  std::unique_ptr<NodeLedger> ledger;
  // Node-wide timers (typing expiry, presence batches and refresh, media sweeps) run here.
  boost::asio::io_context control;
  std::unique_ptr<auth::AccountService> accounts;
  std::unique_ptr<core::Router> router;
  std::unique_ptr<core::ChatService> chats;
  std::unique_ptr<core::TypingService> typing;
  std::unique_ptr<session::SessionHub> hub;
  std::unique_ptr<presence::PresenceHub> presence_hub;
  std::unique_ptr<presence::PresenceReporter> presence_reporter;
  std::unique_ptr<boost::asio::steady_timer> refresh_timer;
  std::function<void()> refresh;
  // A Redis server back after a loss: the refresh's writes at once (write_again_soon).
  redis::RedisShards::Subscription redis_reconnected;
  std::unique_ptr<boost::asio::steady_timer> write_again_timer;
  std::atomic<bool> write_again_due{false};
  std::chrono::steady_clock::time_point written_again;  // the last such pass (control thread)
  std::unique_ptr<media_service::MediaService> media;
  std::unique_ptr<http::MediaRoutes> media_routes;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer;
  std::function<void()> sweep;
  std::unique_ptr<push::PushWorker> push_worker;
  std::unique_ptr<core::PushNotifier> push_notifier;
  std::unique_ptr<session::SessionService> sessions;
  std::unique_ptr<http::StaticFiles> web;
  std::unique_ptr<http::ApiRoutes> routes;
  std::unique_ptr<net::Server> server;
  std::string host;
  uint16_t port = 0;
  std::thread control_thread;
  bool stopped = false;

  std::string instance;  // this installation's name, under which it holds its node id

  Status build();
  Status claim_node_id();
  void write_sessions(bool expire);
  void write_again_soon(size_t shard);
  void stop();
};

// Servers that come back together (reconnected within this much of each other) cause one
// write_sessions(), and such passes are this far apart at least: a server whose connection
// keeps being taken down (overloaded: its commands time out) is not sent a whole refresh at
// every reconnect.
constexpr std::chrono::milliseconds kWriteAgainDelay{200};
constexpr std::chrono::milliseconds kWriteAgainInterval{1000};

// On the control thread: the node's live sessions touched in the Presence (one batched call),
// then, with `expire`, the sessions nobody touched within the TTL expired; its registry
// entries reasserted (what a Redis server lost, restarted empty, or never got, an attach
// while it was down, is written again; what is stale goes); its node id claim renewed.
void Node::Parts::write_sessions(bool expire) {
  const NodeId node = config.server.node_id;
  const int64_t now = now_ms();
  std::vector<presence::SessionTouch> live;
  hub->for_each([&](const std::string& user, const std::string&, uint64_t conn) {
    live.push_back(presence::SessionTouch{user, fmt::format("{}:{}", node, conn)});
  });
  presence_reporter->touch(std::move(live), now);
  if (expire) presence_reporter->expire(now);
  ledger->reassert([](Status s) {
    if (!s) spdlog::warn("registry reassert: {}", s.error().message);
  });
  backends.registry->claim_node(node, instance, [node](Status s) {
    // Another installation took the id while this node could not renew it (the registry
    // was unreachable past the TTL): two nodes now mint colliding message ids.
    if (!s) spdlog::error("server.node_id {}: {}", node, s.error().message);
  });
}

// On the Redis loop thread (never blocked): a server's connection is made again after a loss.
// It may have restarted empty, forgetting this node's registry entries, presence and claim
// there: they are written again now rather than at the next refresh, up to a third of the TTL
// later. The whole node's, not only that server's: a reassert of 10,000 sessions takes about
// 0.1 s. Reconnects while one is due join it.
void Node::Parts::write_again_soon(size_t shard) {
  spdlog::info("redis {} is back: writing this node's sessions there again",
               backends.redis->at(shard).address());
  if (write_again_due.exchange(true)) return;
  boost::asio::post(control, [this] {
    write_again_timer->expires_at(std::max(std::chrono::steady_clock::now() + kWriteAgainDelay,
                                           written_again + kWriteAgainInterval));
    write_again_timer->async_wait([this](boost::system::error_code ec) {
      write_again_due = false;  // a server back from now on causes another pass
      if (ec) return;
      written_again = std::chrono::steady_clock::now();
      write_sessions(false);
    });
  });
}

// Message ids embed the node id (common/ids.h): two running nodes with one id would mint the
// same ids. The node takes its id in the Registry for its installation and renews it with
// the sessions' refresh; a second installation with the same id is refused until the first
// one stops or its claim expires.
Status Node::Parts::claim_node_id() {
  const NodeId node = config.server.node_id;
  if (node == 0 && backends.registry->spans_processes())
    return Error{Errc::bad_request,
                 "server.node_id must be set (1 to 1023, unique per node) when nodes share a "
                 "registry"};
  auto name = node_instance(config.server.data_dir);
  if (!name) return name.error();
  auto claimed = std::make_shared<std::promise<Status>>();
  auto result = claimed->get_future();
  backends.registry->claim_node(node, name.value(),
                                [claimed](Status s) { claimed->set_value(std::move(s)); });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return Error{Errc::unavailable, "the registry did not answer the node id claim"};
  Status s = result.get();
  if (!s)
    return Error{s.error().code, fmt::format("server.node_id {}: {}", node, s.error().message)};
  instance = std::move(name.value());
  return ok_status();
}

Status Node::Parts::build() {
  auto hp = split_host_port(config.server.listen);
  if (!hp) return hp.error();
  const NodeId node = config.server.node_id;
  store::Store& st = *backends.store;
  if (Status claimed = claim_node_id(); !claimed) return claimed;
  ledger = std::make_unique<NodeLedger>(*backends.registry, node);

  auto jwt = auth::JwtVerifier::create(config.auth.jwt_hs256_secret,
                                       config.auth.jwt_rs256_public_key_file);
  if (!jwt) return Error{Errc::bad_request, jwt.error().message};
  accounts = std::make_unique<auth::AccountService>(st, config.auth, std::move(jwt.value()));
  router = std::make_unique<core::Router>(*backends.registry, *backends.bus, node);
  chats = std::make_unique<core::ChatService>(st, *router, ids, config);
  typing = std::make_unique<core::TypingService>(st, *router, config.typing);
  chats->set_on_sent([t = typing.get()](const store::Message& m) { t->message_sent(m); });
  typing->start(control.get_executor());
  hub = std::make_unique<session::SessionHub>(node, backends.bus.get());
  // Large groups' broadcasts in seq order per chat, on the control thread (one hand-off per
  // message, shared by all of the node's subscribers).
  hub->order_chats(
      control.get_executor(),
      session::StreamOptions{std::chrono::milliseconds(config.sync.gap_hold_ms),
                             config.sync.gap_retries, config.sync.max_held_updates},
      [c = chats.get()](const std::string& user, uint64_t chat, uint64_t after, uint32_t limit,
                        std::function<void(Result<session::CatchUpPage>)> done) {
        c->chat_frames(user, chat, after, limit, std::move(done));
      },
      [c = chats.get()](const std::string& user, uint64_t chat,
                        std::function<void(Result<uint64_t>)> done) {
        c->chat_position(user, chat, std::move(done));
      });

  // Presence: the state in the Presence backend; subscriptions and batches in this node's
  // hub. The backend returns each transition to the call that caused it: this node reports
  // those its calls caused, to its own hub, to every other node on the Bus, and writes an
  // offline transition's last_seen (once in the cluster, by the node that caused it).
  presence_hub = std::make_unique<presence::PresenceHub>(
      *backends.presence,
      presence::HubOptions{std::chrono::milliseconds(config.presence.batch_ms),
                           config.presence.max_subscriptions},
      presence_hooks(st), control.get_executor());
  presence_reporter = std::make_unique<presence::PresenceReporter>(
      *backends.presence, [this, &st](const std::vector<presence::Transition>& changes) {
        for (const auto& t : changes) {
          presence_hub->on_change(t.status(), t.version);
          if (!t.online) st.set_last_seen(t.user, t.last_seen, [](Status) {});
          Envelope env;
          env.kind = Envelope::Kind::presence;
          env.user = t.user;
          env.online = t.online;
          env.last_seen = t.last_seen;
          env.version = t.version;  // transitions from several nodes arrive in any order
          backends.bus->publish_all(std::move(env));
        }
      });
  // Other nodes' transitions; this node's own come back too (publish_all) and were applied.
  hub->set_on_presence([ph = presence_hub.get(), node](const Envelope& env) {
    if (env.from == node) return;
    ph->on_change(presence::Status{env.user, env.online, env.last_seen, false}, env.version);
  });
  backends.bus->start(node, [h = hub.get()](const Envelope& env) { h->handle(env); });
  // Both re-check visibility with store reads: off the store's commit thread, which calls them.
  chats->set_on_visibility_changed([this](const std::string& user) {
    boost::asio::post(control, [this, user] { presence_hub->visibility_changed(user); });
  });
  chats->set_on_relations_changed([this](std::vector<std::string> users) {
    boost::asio::post(control,
                      [this, users = std::move(users)] { presence_hub->relations_changed(users); });
  });
  presence_hub->start();
  // Live sessions refresh their presence (one batched touch) and their registry entries a
  // few times per TTL; sessions that were not refreshed (a node that died) expire. Every
  // node expires: each expired user is returned to one of them, which reports it. The
  // registry entries are reasserted, not just renewed: what a Redis server lost (restarted
  // empty) or never got (an attach while it was down) is written again, what is stale goes.
  // A Redis server whose connection is made again gets the same writes at once.
  refresh_timer = std::make_unique<boost::asio::steady_timer>(control);
  refresh = [this] {
    refresh_timer->expires_after(std::chrono::milliseconds(config.presence.ttl_s * 1000 / 3));
    refresh_timer->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      write_sessions(true);
      refresh();
    });
  };
  refresh();
  if (backends.redis) {
    write_again_timer = std::make_unique<boost::asio::steady_timer>(control);
    redis_reconnected =
        backends.redis->on_reconnected([this](size_t shard) { write_again_soon(shard); });
  }

  // Media: objects behind the MediaStore seam; uploads, downloads and housekeeping in the
  // media service, on its own thread pool.
  if (backends.media) {
    if (auto vips = media_inspect::init_image_library(); !vips)
      spdlog::warn("media: no thumbnails: {}", vips.error().message);
    if (config.media.url_signing_key.empty())
      spdlog::warn("media: no media.url_signing_key set: signed URLs last until a restart");
    media = std::make_unique<media_service::MediaService>(st, *backends.media, config.media);
    media_routes = std::make_unique<http::MediaRoutes>(*accounts, *media);
    sweep_timer = std::make_unique<boost::asio::steady_timer>(control);
    sweep = [this] {
      sweep_timer->expires_after(std::chrono::seconds(config.media.sweep_interval_s));
      sweep_timer->async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        // The next pass is scheduled once this one is over, so passes never overlap.
        media->sweep([this](media_service::SweepStats) { boost::asio::post(control, sweep); });
      });
    };
    sweep();
  }

  // Push: queue jobs for offline devices when a provider is configured (docs/PUSH.md).
  const bool push_on = config.push.enabled && (!config.push.webhook_url.empty() ||
                                               !config.push.fcm_service_account_file.empty() ||
                                               !config.push.apns_key_file.empty());
  if (push_on) {
    auto providers = push::make_providers(config.push);
    if (!providers) return Error{Errc::bad_request, "push: " + providers.error().message};
    push_worker = std::make_unique<push::PushWorker>(st, std::move(providers.value()), config.push);
    push_worker->start();
    push_notifier = std::make_unique<core::PushNotifier>(st, config.push, *router);
    chats->set_push_notifier(push_notifier.get());
  }

  proto::ParseLimits limits{config.limits.max_message_bytes, config.limits.max_sync_page,
                            config.limits.max_history_page,  config.limits.max_chats_page,
                            config.groups.max_name_bytes,    1000};
  sessions = std::make_unique<session::SessionService>(
      session::SessionDeps{config, limits, *hub, *ledger, node, *accounts, *chats, *typing,
                           *presence_reporter, *presence_hub, push_notifier.get()});
  // The web client (docs/WEB.md), read once from server.web_root.
  if (!config.server.web_root.empty()) {
    auto loaded = http::StaticFiles::load(
        config.server.web_root, {config.server.web_max_bytes, config.server.web_max_files});
    if (!loaded) return Error{Errc::bad_request, "web client: " + loaded.error().message};
    web = std::move(loaded.value());
    spdlog::info("web client: {} files from {}", web->size(), config.server.web_root);
  }
  routes = std::make_unique<http::ApiRoutes>(*accounts, *router, media.get(), media_routes.get(),
                                             web.get());
  routes->set_health([this] { return backends.health(); });

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
  server = std::make_unique<net::Server>(opts, *routes, *sessions);
  auto listening = server->listen();
  if (!listening) return Error{Errc::unavailable, listening.error().message};
  port = listening.value();
  host = opts.host;
  server->start();
  routes->set_ready(true);
  control_thread = std::thread([this] {
    auto work = boost::asio::make_work_guard(control);
    control.run();
  });
  spdlog::info("node {}: {} threads, listening on {}:{}", node, opts.threads, opts.host, port);
  return ok_status();
}

void Node::Parts::stop() {
  if (stopped) return;
  stopped = true;
  // Nothing is posted to the control thread for a Redis server that comes back from now on.
  redis_reconnected.reset();
  // Timers first (they post work to the components), on their own thread.
  if (control_thread.joinable()) {
    std::promise<void> done;
    boost::asio::post(control, [this, &done] {
      if (typing) typing->stop();
      if (presence_hub) presence_hub->stop();
      if (refresh_timer) refresh_timer->cancel();
      if (write_again_timer) write_again_timer->cancel();
      if (sweep_timer) sweep_timer->cancel();
      done.set_value();
    });
    done.get_future().wait();
    control.stop();
    control_thread.join();
  } else {
    if (typing) typing->stop();
    if (presence_hub) presence_hub->stop();
  }
  // Drain: refuse new work, close every WebSocket with 1001, finish queued writes.
  if (routes) routes->set_draining();
  if (server) {
    server->stop_accepting();
    server->close_connections(session::kCloseGoingAway, "server shutting down",
                              std::chrono::seconds(5));
    server->stop();
  }
  // The hub goes before the bus (members are destroyed the other way round): nothing may
  // reach it from now on.
  if (backends.bus) backends.bus->stop();
  if (accounts) accounts->stop();
  if (push_worker) push_worker->stop();
  if (media) media->stop();
  // The sessions' drops are reported; from now on nothing is.
  if (presence_reporter) presence_reporter->stop();
  // This node's sessions are gone: other nodes stop sending it their envelopes.
  // (Through the ledger: after the detaches of the sessions just closed.) And its id is free
  // for the next start. Both are waited for (a restart right after a drain finds its id
  // free), at most a few seconds: a registry that does not answer lets the entries and the
  // claim expire by their TTL.
  auto cleared = std::make_shared<std::promise<void>>();
  auto released = std::make_shared<std::promise<void>>();
  if (ledger)
    ledger->clear_node(config.server.node_id, [cleared](Status) { cleared->set_value(); });
  else
    cleared->set_value();
  if (!instance.empty())
    backends.registry->release_node(config.server.node_id, instance,
                                    [released](Status) { released->set_value(); });
  else
    released->set_value();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  cleared->get_future().wait_until(until);
  released->get_future().wait_until(until);
}

Result<std::unique_ptr<Node>> Node::start(const Config& config, Backends backends) {
  std::unique_ptr<Node> node(new Node());
  node->parts_ = std::make_unique<Parts>(config, std::move(backends));
  if (Status built = node->parts_->build(); !built) {
    node->parts_->stop();
    return built.error();
  }
  return node;
}

Node::~Node() {
  stop();
  // Redis answers still on their way (registry lookups of the last commits' deliveries, made
  // while the store closed) would run their callbacks in the components destroyed next: the
  // connections are closed first, which completes those callbacks now, with `unavailable`,
  // while everything is still there.
  if (parts_ && parts_->backends.redis) parts_->backends.redis->close();
}

uint16_t Node::port() const { return parts_->port; }
const std::string& Node::host() const { return parts_->host; }
NodeId Node::id() const { return parts_->config.server.node_id; }
void Node::stop() {
  if (parts_) parts_->stop();
}

}  // namespace parley::app
