// parley-bench: load generator for parleyd (issue 3, docs/BENCHMARKS.md).
//   parley-bench SCENARIO --url ws://127.0.0.1:PORT --jwt-secret S [options] [--json]
// --url may be given several times (or as a comma list): connections, direct and group then
// spread their connections over the nodes (docs/BENCHMARKS.md, the cluster section).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "options.h"
#include "scenarios.h"

using namespace parley::bench;

int main(int argc, char** argv) {
  CLI::App app{"parley-bench: load generator for parleyd (loopback only)"};
  app.require_subcommand(1);

  CommonOptions common;
  ConnectionsOptions conn_o;
  DirectOptions direct_o;
  SyncOptions sync_o;
  GroupOptions group_o;
  PresenceOptions presence_o;

  auto* conn =
      app.add_subcommand("connections", "N authenticated idle connections with heartbeats");
  add_common_options(*conn, common);
  conn->add_option("--count", conn_o.count, "connections to open");
  conn->add_option("--hold", conn_o.hold_s, "seconds to hold them open");
  conn->add_option("--server-pid", conn_o.server_pids,
                   "server pid, for its memory per connection; with several --url, one per URL "
                   "in the same order (repeat it)");
  conn->add_option("--heartbeat", conn_o.heartbeat_s, "seconds between pings per connection");
  conn->add_option("--users", conn_o.users,
                   "connections are devices of this many users (0: one user each)");
  conn->add_option("--processes", conn_o.processes,
                   "forked processes sharing --count, for more connections than one process's "
                   "descriptor limit allows")
      ->check(CLI::Range(1, 64));

  auto* direct = app.add_subcommand("direct", "P sender/receiver pairs at an aggregate rate");
  add_common_options(*direct, common);
  direct->add_option("--pairs", direct_o.pairs, "sender/receiver pairs");
  direct->add_option("--rate", direct_o.rate, "aggregate messages/s (0: as fast as acks allow)");
  direct->add_option("--duration", direct_o.duration_s, "seconds of sending");
  direct->add_option("--size", direct_o.size, "body bytes (at least the stamp, ~24)");
  direct->add_option("--window", direct_o.window, "sends in flight per sender");
  direct
      ->add_option("--batch", direct_o.batch,
                   "most sends per WebSocket message, one per line (1: one each)")
      ->check(CLI::Range(1, 1000));
  direct->add_option("--warmup", direct_o.warmup_s, "seconds not counted in latency");
  direct->add_option("--drain", direct_o.drain_s, "seconds to wait for the last deliveries");

  auto* sync = app.add_subcommand("sync", "N devices offline while K messages arrive, then sync");
  add_common_options(*sync, common);
  sync->add_option("--devices", sync_o.devices, "devices");
  sync->add_option("--missed", sync_o.missed, "messages each device misses");
  sync->add_option("--devices-per-user", sync_o.devices_per_user, "devices of one user");
  sync->add_option("--senders", sync_o.senders, "sender connections during the fill");
  sync->add_option("--window", sync_o.window, "sends in flight per sender during the fill");
  sync->add_option("--page", sync_o.page, "sync page size (server max: limits.max_sync_page)");
  sync->add_option("--size", sync_o.size, "body bytes");

  auto* group = app.add_subcommand("group", "G groups of M members at an aggregate rate");
  add_common_options(*group, common);
  group->add_option("--groups", group_o.groups, "groups");
  group->add_option("--members", group_o.members, "members per group");
  group->add_option("--rate", group_o.rate,
                    "aggregate messages/s (0: as fast as the window allows)");
  group->add_option("--duration", group_o.duration_s, "seconds of sending");
  group->add_option("--size", group_o.size, "body bytes");
  group->add_option("--senders", group_o.senders, "sending members per group");
  group->add_option("--window", group_o.window,
                    "messages per group sent but not yet delivered to every member");
  group->add_option("--warmup", group_o.warmup_s, "seconds not counted in latency");
  group->add_option("--drain", group_o.drain_s, "seconds to wait for the last deliveries");

  auto* presence = app.add_subcommand(
      "presence", "N users watching K contacts each, churning; presence pushes/s, server CPU");
  add_common_options(*presence, common);
  presence->add_option("--users", presence_o.users, "users, one connection each");
  presence->add_option("--contacts", presence_o.contacts,
                       "contacts each user subscribes to; each user is watched by as many");
  presence->add_option("--churn", presence_o.churn,
                       "users per second (aggregate) that disconnect and reconnect (0: none)");
  presence->add_option("--duration", presence_o.duration_s, "seconds of churn");
  presence->add_option("--pause-min-ms", presence_o.pause_min_ms,
                       "a churned user reconnects after at least this pause");
  presence->add_option("--pause-max-ms", presence_o.pause_max_ms, "... and at most this one");
  presence->add_flag("--mass", presence_o.mass,
                     "then all users disconnect and reconnect at once (after the churn, if any)");
  presence->add_option("--mass-pause-ms", presence_o.mass_pause_ms,
                       "--mass: every user is offline this long, then all reconnect at once");
  presence->add_option("--batch-ms", presence_o.batch_ms,
                       "the server's presence.batch_ms (settle time and push bound)");
  presence->add_flag("--batch-check", presence_o.batch_check,
                     "fail if a connection got more pushes than one per batch window");
  presence->add_option("--server-pid", presence_o.server_pid, "server pid, for its CPU and RSS");
  presence->add_option("--seed", presence_o.seed, "seed of the contact offsets");

  CLI11_PARSE(app, argc, argv);

  if (auto err = validate(common); !err.empty()) {
    std::fprintf(stderr, "parley-bench: %s\n", err.c_str());
    return 2;
  }
  if ((*sync || *presence) && common.nodes() > 1) {
    std::fprintf(stderr,
                 "parley-bench: several --url are supported by connections, direct and group "
                 "only\n");
    return 2;
  }
  if (*conn) return run_connections(common, conn_o);
  if (*direct) return run_direct(common, direct_o);
  if (*sync) return run_sync(common, sync_o);
  if (*presence) return run_presence(common, presence_o);
  return run_group(common, group_o);
}
