#include "parley/chat_sequencer.h"

#include <gtest/gtest.h>

namespace parley {
namespace {

Message M(int64_t chat, int64_t seq) {
  Message m;
  m.chat_id = chat;
  m.seq = seq;
  m.message_id = std::to_string(chat * 1000 + seq);
  m.sender = "bob";
  m.body = "s" + std::to_string(seq);
  return m;
}

std::vector<int64_t> Seqs(const std::vector<Message>& ms) {
  std::vector<int64_t> out;
  for (const Message& m : ms) out.push_back(m.seq);
  return out;
}

HistoryPage Page(int64_t chat, std::vector<int64_t> seqs, bool has_more = false) {
  HistoryPage p;
  p.chat_id = chat;
  for (int64_t s : seqs) p.messages.push_back(M(chat, s));
  p.has_more = has_more;
  return p;
}

using V = std::vector<int64_t>;

TEST(ChatSequencerTest, FirstMessageStartsTracking) {
  ChatSequencer s;
  EXPECT_EQ(Seqs(s.OnMessage(M(31, 57))), V{57});
  EXPECT_TRUE(s.tracking(31));
  EXPECT_EQ(s.seq(31), 57);
  EXPECT_EQ(Seqs(s.OnMessage(M(31, 58))), V{58});
  EXPECT_TRUE(s.OnMessage(M(31, 58)).empty());  // duplicate
  EXPECT_TRUE(s.TakeFetches().empty());
}

TEST(ChatSequencerTest, GapIsFetchedAfterTheLastSeq) {
  ChatSequencer s;
  s.Track(31, 10);
  EXPECT_TRUE(s.OnMessage(M(31, 13)).empty());
  auto fetches = s.TakeFetches();
  ASSERT_EQ(fetches.size(), 1u);
  EXPECT_EQ(fetches[0].chat_id, 31);
  EXPECT_EQ(fetches[0].after_seq, 10);
  EXPECT_TRUE(s.TakeFetches().empty());         // one in flight per chat
  EXPECT_TRUE(s.OnMessage(M(31, 14)).empty());  // held meanwhile
  EXPECT_EQ(Seqs(s.OnFetched(31, Page(31, {11, 12, 13}))), (V{11, 12, 13, 14}));
  EXPECT_EQ(s.seq(31), 14);
  EXPECT_TRUE(s.TakeFetches().empty());
}

TEST(ChatSequencerTest, PagesWhileHasMore) {
  ChatSequencer s;
  s.Track(31, 0);
  s.OnMessage(M(31, 5));
  auto f = s.TakeFetches();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(Seqs(s.OnFetched(31, Page(31, {1, 2}, true))), (V{1, 2}));
  f = s.TakeFetches();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].after_seq, 2);
  EXPECT_EQ(Seqs(s.OnFetched(31, Page(31, {3, 4, 5}, false))), (V{3, 4, 5}));
  EXPECT_TRUE(s.TakeFetches().empty());
}

TEST(ChatSequencerTest, ReconnectFetchesEveryTrackedChat) {
  ChatSequencer s;
  s.Track(31, 3);
  s.Track(32, 7);
  s.OnReconnect();
  auto f = s.TakeFetches();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].after_seq, 3);
  EXPECT_EQ(f[1].after_seq, 7);
  EXPECT_TRUE(s.OnFetched(31, Page(31, {})).empty());
  EXPECT_TRUE(s.TakeFetches().empty() || s.TakeFetches().size() == 0);
}

TEST(ChatSequencerTest, TrackAheadOfLocalMeansMissing) {
  ChatSequencer s;
  s.Track(31, 3);
  EXPECT_TRUE(s.TakeFetches().empty());
  s.Track(31, 2);  // older: nothing to do
  EXPECT_TRUE(s.TakeFetches().empty());
  s.Track(31, 5);  // the server is further: fetch
  auto f = s.TakeFetches();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].after_seq, 3);
}

TEST(ChatSequencerTest, PageMayStartPastTheGapForANewMember) {
  ChatSequencer s;
  s.Track(31, 0);
  s.OnMessage(M(31, 50));  // gap 1..49: we joined at 48
  s.TakeFetches();
  EXPECT_EQ(Seqs(s.OnFetched(31, Page(31, {48, 49}))), (V{48, 49, 50}));
}

TEST(ChatSequencerTest, FailedFetchIsRetriedAndNoProgressStops) {
  ChatSequencer s;
  s.Track(31, 1);
  s.OnMessage(M(31, 4));
  ASSERT_EQ(s.TakeFetches().size(), 1u);
  s.OnFetchFailed(31);
  ASSERT_EQ(s.TakeFetches().size(), 1u);
  // The server has nothing new although 4 was pushed: do not loop.
  EXPECT_TRUE(s.OnFetched(31, Page(31, {})).empty());
  EXPECT_TRUE(s.TakeFetches().empty());
}

TEST(ChatSequencerTest, ForgetStopsTracking) {
  ChatSequencer s;
  s.Track(31, 1);
  s.Forget(31);
  EXPECT_FALSE(s.tracking(31));
  s.OnReconnect();
  EXPECT_TRUE(s.TakeFetches().empty());
  EXPECT_TRUE(s.OnFetched(31, Page(31, {2})).empty());
}

TEST(ChatSequencerTest, IgnoresInvalid) {
  ChatSequencer s;
  EXPECT_TRUE(s.OnMessage(M(0, 1)).empty());
  EXPECT_TRUE(s.OnMessage(M(31, 0)).empty());
  EXPECT_FALSE(s.tracking(31));
}

}  // namespace
}  // namespace parley
