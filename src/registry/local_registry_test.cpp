// Runs the Registry conformance suite against LocalRegistry.
#include "registry/local_registry.h"

#include "registry/registry_conformance.h"

namespace parley::registry_test {
namespace {

INSTANTIATE_TEST_SUITE_P(Local, RegistryConformance,
                         ::testing::Values(RegistryMaker([](std::chrono::milliseconds ttl,
                                                            Clock clock) {
                           return std::make_unique<LocalRegistry>(ttl, std::move(clock));
                         })));

}  // namespace
}  // namespace parley::registry_test
