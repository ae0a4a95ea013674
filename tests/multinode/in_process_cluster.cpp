#include "multinode/in_process_cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include "presence/local_presence.h"
#include "registry/local_registry.h"

namespace parley::test {

InProcessCluster::InProcessCluster(int nodes, std::function<void(Config&)> tweak,
                                   StoreWrapper wrap_store) {
  static std::atomic<int> n{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("parley-cluster-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);

  Config base;
  base.server.listen = "127.0.0.1:0";
  base.server.threads = 2;
  base.server.data_dir = dir_.string();
  base.auth.argon2_opslimit = 1;
  base.auth.argon2_memlimit_kib = 8192;
  base.store.durability = Durability::flush;
  if (tweak) tweak(base);

  auto store = app::open_store(base);
  if (!store) throw std::runtime_error(store.error().message);
  auto media = app::open_media_store(base);
  if (!media) throw std::runtime_error(media.error().message);
  bus_ = std::make_shared<LocalBusHub>(LocalBusHub::Options{true});
  shared_.store = std::move(store.value());
  if (wrap_store) shared_.store = wrap_store(std::move(shared_.store));
  shared_.media = std::move(media.value());
  shared_.registry = std::make_shared<LocalRegistry>(std::chrono::seconds(base.presence.ttl_s));
  shared_.presence =
      std::make_shared<presence::LocalPresence>(std::chrono::seconds(base.presence.ttl_s));

  base_ = base;
  for (int i = 0; i < nodes; ++i) {
    Config c = base;
    c.server.node_id = static_cast<NodeId>(i + 1);
    // Each node is an installation of its own (its node-instance name; the store and media
    // were opened above, from the shared directory).
    c.server.data_dir = (dir_ / ("node-" + std::to_string(i + 1))).string();
    app::Backends b = shared_;
    b.bus = std::make_shared<LocalBus>(bus_);
    auto node = app::Node::start(c, std::move(b));
    if (!node)
      throw std::runtime_error("node " + std::to_string(i + 1) + ": " + node.error().message);
    nodes_.push_back(std::move(node.value()));
  }
}

void InProcessCluster::stop(int i) { nodes_.at(i)->stop(); }

Result<std::unique_ptr<app::Node>> InProcessCluster::start_node(NodeId id) {
  static std::atomic<int> extra{0};
  Config c = base_;
  c.server.node_id = id;
  c.server.data_dir = (dir_ / ("extra-" + std::to_string(++extra))).string();
  app::Backends b = shared_;
  b.bus = std::make_shared<LocalBus>(bus_);
  return app::Node::start(c, std::move(b));
}

InProcessCluster::~InProcessCluster() {
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) it->reset();
  if (shared_.store) shared_.store->close();
  shared_ = {};
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace parley::test
