// Runs the Presence conformance suite against LocalPresence, and what is LocalPresence's own.
#include "presence/local_presence.h"

#include "presence/presence_conformance.h"

namespace parley::presence_test {
namespace {

using presence::LocalPresence;
using namespace std::chrono_literals;

INSTANTIATE_TEST_SUITE_P(Local, PresenceConformance,
                         ::testing::Values(PresenceMaker([](std::chrono::milliseconds ttl) {
                           return std::make_unique<LocalPresence>(ttl);
                         })));

TEST(LocalPresence, CompletesInline) {
  LocalPresence p(90s);
  bool touched = false, dropped = false, expired = false, answered = false;
  p.touch({{"bob", "n1:1"}}, 1000, [&](auto r) { touched = r.ok() && r->size() == 1; });
  p.status({"bob"}, [&](auto r) { answered = r.ok() && r->at(0).online; });
  p.drop("bob", "n1:1", 2000, [&](auto r) { dropped = r.ok() && r->size() == 1; });
  p.expire(3000, [&](auto r) { expired = r.ok() && r->empty(); });
  EXPECT_TRUE(touched && answered && dropped && expired);
  p.touch({{"bob", "n1:2"}}, 4000, nullptr);  // fire and forget
  p.drop("bob", "n1:2", 5000, nullptr);
  p.expire(6000, nullptr);
}

TEST(LocalPresence, ForgetsOfflineUsersAtTheNextExpire) {
  LocalPresence p(90s);
  p.touch({{"alice", "n1:1"}, {"bob", "n1:2"}}, 1000, nullptr);
  p.drop("bob", "n1:2", 2000, nullptr);
  p.drop("nobody-here", "n1:3", 2000, nullptr);  // no entry made
  EXPECT_EQ(p.tracked_users(), 2u);              // bob's last_seen is still there for status()
  p.status({"bob"}, [](auto r) { EXPECT_EQ(r->at(0).last_seen, 2000); });
  p.expire(3000, nullptr);
  EXPECT_EQ(p.tracked_users(), 1u);                                     // alice
  p.status({"bob"}, [](auto r) { EXPECT_EQ(r->at(0).last_seen, 0); });  // the Store has it
  p.drop("alice", "n1:1", 4000, nullptr);
  p.expire(5000, nullptr);
  EXPECT_EQ(p.tracked_users(), 0u);
}

}  // namespace
}  // namespace parley::presence_test
