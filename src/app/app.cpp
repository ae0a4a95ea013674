#include "app/app.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

#include "app/backends.h"
#include "app/node.h"

namespace parley::app {

int run(const Config& config) {
  // hiredis writes to its socket with send(2) without MSG_NOSIGNAL: a Redis server that went
  // away between two commands (restarted, killed) would end the process with SIGPIPE at the
  // next write. Ignored, the write fails with EPIPE and the client reconnects, as for any
  // other lost connection. (Asio and libpq keep SIGPIPE away from their own sockets.)
  std::signal(SIGPIPE, SIG_IGN);
  auto backends = open_backends(config);
  if (!backends) {
    spdlog::error("{}", backends.error().message);
    return backends.error().code == Errc::bad_request ? 2 : 1;
  }
  std::shared_ptr<store::Store> store = backends->store;
  auto node = Node::start(config, std::move(backends.value()));
  if (!node) {
    spdlog::error("{}", node.error().message);
    store->close();
    return node.error().code == Errc::bad_request ? 2 : 1;
  }
  spdlog::info("parleyd node {}, data in {}, durability {}", config.server.node_id,
               config.server.data_dir,
               config.store.durability == Durability::fsync   ? "fsync"
               : config.store.durability == Durability::flush ? "flush"
                                                              : "none");
  // The one line on stdout: scripts and tests read the bound port from it.
  std::printf("listening on %s:%u\n", node.value()->host().c_str(), node.value()->port());
  std::fflush(stdout);

  boost::asio::io_context signals_context;
  boost::asio::signal_set signals(signals_context, SIGTERM, SIGINT);
  signals.async_wait(
      [&](boost::system::error_code, int sig) { spdlog::info("signal {}: draining", sig); });
  signals_context.run();
  node.value()->stop();
  // Commits everything still queued, then closes the database. Before the node goes: a
  // commit that completes now (a PostgreSQL worker's backlog) posts its answer to the
  // node's stopped I/O contexts, which must still exist.
  store->close();
  node.value().reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace parley::app
