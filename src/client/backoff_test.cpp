#include "parley/backoff.h"

#include <gtest/gtest.h>

namespace parley {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, GrowsExponentiallyWithoutJitter) {
  BackoffPolicy p{milliseconds(100), milliseconds(1000), 2.0, 0.0};
  EXPECT_EQ(BackoffDelay(p, 0, 0.9), milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 1, 0.9), milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 2, 0.9), milliseconds(400));
  EXPECT_EQ(BackoffDelay(p, 3, 0.9), milliseconds(800));
  EXPECT_EQ(BackoffDelay(p, 4, 0.9), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(p, 100000, 0.9), milliseconds(1000));  // no overflow
}

TEST(BackoffTest, JitterStaysWithinBounds) {
  BackoffPolicy p{milliseconds(100), milliseconds(1000), 2.0, 0.5};
  EXPECT_EQ(BackoffDelay(p, 3, 0.0), milliseconds(800));
  EXPECT_EQ(BackoffDelay(p, 3, 1.0), milliseconds(400));
  EXPECT_EQ(BackoffDelay(p, 0, 0.0), milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 0, 1.0), milliseconds(50));  // the first retry is jittered too
  BackoffPolicy full{milliseconds(100), milliseconds(1000), 2.0, 1.0};
  EXPECT_EQ(BackoffDelay(full, 5, 1.0), milliseconds(1));  // never below 1 ms
  EXPECT_EQ(BackoffDelay(full, 5, 0.5), milliseconds(500));
}

TEST(BackoffTest, NonsensePolicyIsTamed) {
  BackoffPolicy p{milliseconds(0), milliseconds(-5), 0.5, 7.0};
  auto d = BackoffDelay(p, 3, 0.5);
  EXPECT_GE(d, milliseconds(1));
  EXPECT_LE(d, milliseconds(1));
}

TEST(BackoffTest, StatefulSequenceIsBoundedAndResets) {
  BackoffPolicy p{milliseconds(250), milliseconds(30000), 2.0, 0.5};
  Backoff b(p, 42);
  milliseconds previous_upper(0);
  for (int i = 0; i < 20; ++i) {
    milliseconds d = b.Next();
    milliseconds upper = BackoffDelay(p, i, 0.0);
    EXPECT_GE(d, p.min / 2);
    EXPECT_LE(d, p.max);
    EXPECT_LE(d, upper);
    EXPECT_GE(d, BackoffDelay(p, i, 1.0));
    EXPECT_GE(upper, previous_upper);
    previous_upper = upper;
  }
  EXPECT_EQ(b.attempt(), 20);
  b.Reset();
  EXPECT_EQ(b.attempt(), 0);
  EXPECT_LE(b.Next(), p.min);
}

TEST(BackoffTest, JitterSpreadsClients) {
  BackoffPolicy p{milliseconds(1000), milliseconds(60000), 2.0, 0.5};
  Backoff a(p, 1);
  Backoff b(p, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace parley
