// Runs the Bus conformance suite against LocalBus endpoints on one LocalBusHub: as they
// are in production (envelopes handed over as they are), and through the codec (as they
// would cross processes), which is how the multi-node tests run them.
#include "bus/local_bus.h"

#include <map>

#include "bus/bus_conformance.h"

namespace parley::bus_test {
namespace {

class LocalCluster final : public BusCluster {
 public:
  explicit LocalCluster(bool encode)
      : hub_(std::make_shared<LocalBusHub>(LocalBusHub::Options{encode})) {}
  Bus& endpoint(NodeId node) override {
    auto& bus = buses_[node];
    if (!bus) bus = std::make_unique<LocalBus>(hub_);
    return *bus;
  }
  void stop(NodeId node) override { buses_.erase(node); }

 private:
  std::shared_ptr<LocalBusHub> hub_;
  std::map<NodeId, std::unique_ptr<LocalBus>> buses_;
};

INSTANTIATE_TEST_SUITE_P(Local, BusConformance, ::testing::Values(BusClusterMaker([] {
                           return std::make_unique<LocalCluster>(false);
                         })));
INSTANTIATE_TEST_SUITE_P(LocalEncoded, BusConformance, ::testing::Values(BusClusterMaker([] {
                           return std::make_unique<LocalCluster>(true);
                         })));

// A node cut off from the others loses what is sent to it and what it sends, and comes back.
TEST(LocalBusHub, CutOffNodesLoseEnvelopesUntilTheyReturn) {
  auto hub = std::make_shared<LocalBusHub>();
  LocalBus one(hub), two(hub);
  Inbox a, b;
  one.start(1, a.handler());
  two.start(2, b.handler());
  hub->set_cut_off(2, true);
  one.publish(2, delivery(1));
  two.publish(1, delivery(2));
  EXPECT_EQ(hub->lost(), 2u);
  hub->set_cut_off(2, false);
  one.publish(2, delivery(3));
  ASSERT_TRUE(b.wait(1));
  EXPECT_EQ(b.got()[0].recipients[0].pts, 3u);
  EXPECT_EQ(a.settle(std::chrono::milliseconds(0)), 0u);
}

}  // namespace
}  // namespace parley::bus_test
