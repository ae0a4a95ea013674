#include "parley/update_sequencer.h"

#include <gtest/gtest.h>

namespace parley {
namespace {

Update Msg(int64_t pts, int64_t chat_id = 1, int64_t seq = 0) {
  Update u;
  u.pts = pts;
  Message m;
  m.chat_id = chat_id;
  m.seq = seq ? seq : pts;
  m.message_id = std::to_string(pts);
  m.sender = "alice";
  m.to = "bob";
  m.body = "m" + std::to_string(pts);
  u.message = m;
  return u;
}

std::vector<int64_t> Pts(const std::vector<Update>& updates) {
  std::vector<int64_t> out;
  for (const Update& u : updates) out.push_back(u.pts);
  return out;
}

SyncResult Page(std::vector<Update> updates, int64_t pts, bool has_more = false) {
  SyncResult r;
  r.updates = std::move(updates);
  r.pts = pts;
  r.has_more = has_more;
  return r;
}

using V = std::vector<int64_t>;

TEST(UpdateSequencerTest, AppliesNextIgnoresSeen) {
  UpdateSequencer s(40);
  EXPECT_FALSE(s.NeedsSync());
  EXPECT_EQ(Pts(s.OnPush(Msg(41))), V{41});
  EXPECT_EQ(s.cursor(), 41);
  EXPECT_TRUE(s.OnPush(Msg(41)).empty());  // duplicate
  EXPECT_TRUE(s.OnPush(Msg(3)).empty());   // old
  EXPECT_EQ(s.cursor(), 41);
  EXPECT_FALSE(s.NeedsSync());
}

TEST(UpdateSequencerTest, GapTriggersSyncAndHeldPushDrainsAfterIt) {
  UpdateSequencer s(40);
  EXPECT_TRUE(s.OnPush(Msg(43)).empty());  // 41, 42 missing
  EXPECT_EQ(s.cursor(), 40);
  EXPECT_TRUE(s.NeedsSync());
  EXPECT_EQ(s.BeginSync(), 40);
  EXPECT_FALSE(s.NeedsSync());  // in flight
  auto applied = s.OnSyncResult(Page({Msg(41), Msg(42)}, 42));
  EXPECT_EQ(Pts(applied), (V{41, 42, 43}));  // 43 came from the held push
  EXPECT_EQ(s.cursor(), 43);
  EXPECT_FALSE(s.NeedsSync());
  EXPECT_EQ(s.pending(), 0u);
}

TEST(UpdateSequencerTest, PushesDuringSyncAreAppliedByTheSameRule) {
  UpdateSequencer s(40);
  s.NotePts(45);
  ASSERT_TRUE(s.NeedsSync());
  EXPECT_EQ(s.BeginSync(), 40);
  EXPECT_EQ(Pts(s.OnPush(Msg(41))), V{41});  // next in line: applied at once
  EXPECT_TRUE(s.OnPush(Msg(46)).empty());    // beyond the gap: held
  // The page overlaps what the push delivered and stops early.
  auto applied = s.OnSyncResult(Page({Msg(41), Msg(42), Msg(43)}, 43, true));
  EXPECT_EQ(Pts(applied), (V{42, 43}));
  EXPECT_TRUE(s.NeedsSync());  // has_more
  EXPECT_EQ(s.BeginSync(), 43);
  applied = s.OnSyncResult(Page({Msg(44), Msg(45), Msg(46)}, 46));
  EXPECT_EQ(Pts(applied), (V{44, 45, 46}));
  EXPECT_FALSE(s.NeedsSync());
}

TEST(UpdateSequencerTest, PagesUntilHasMoreIsFalse) {
  UpdateSequencer s(0);
  s.NotePts(5);
  std::vector<int64_t> all;
  for (int page = 0; s.NeedsSync() && page < 10; ++page) {
    int64_t from = *s.BeginSync();
    std::vector<Update> ups;
    for (int64_t p = from + 1; p <= std::min<int64_t>(from + 2, 5); ++p) ups.push_back(Msg(p));
    int64_t to = ups.empty() ? from : ups.back().pts;
    for (const Update& u : s.OnSyncResult(Page(ups, to, to < 5))) all.push_back(u.pts);
  }
  EXPECT_EQ(all, (V{1, 2, 3, 4, 5}));
  EXPECT_EQ(s.cursor(), 5);
}

TEST(UpdateSequencerTest, NewDeviceStartsWithSnapshotAndDeduplicates) {
  UpdateSequencer s;
  EXPECT_EQ(s.cursor(), std::nullopt);
  EXPECT_TRUE(s.NeedsSync());
  EXPECT_TRUE(s.OnPush(Msg(43, 12, 5)).empty());  // held until we know where we are
  EXPECT_EQ(s.BeginSync(), std::nullopt);
  SyncResult snap;
  snap.snapshot = true;
  snap.pts = 42;
  SnapshotChat chat;
  chat.chat_id = 12;
  chat.messages = {*Msg(40, 12, 3).message, *Msg(41, 12, 4).message, *Msg(42, 12, 5).message};
  snap.chats = {chat};
  // The snapshot already shows seq 5, although the update log has it at pts 43.
  auto applied = s.OnSyncResult(snap);
  ASSERT_EQ(Pts(applied), V{43});
  EXPECT_FALSE(applied[0].message);  // advances the cursor, not shown twice
  EXPECT_EQ(s.cursor(), 43);
  // A later message in the same chat is shown.
  auto next = s.OnPush(Msg(44, 12, 6));
  ASSERT_EQ(Pts(next), V{44});
  EXPECT_TRUE(next[0].message);
}

TEST(UpdateSequencerTest, EmptySnapshotForFreshUser) {
  UpdateSequencer s;
  s.BeginSync();
  SyncResult snap;
  snap.snapshot = true;
  snap.pts = 0;
  EXPECT_TRUE(s.OnSyncResult(snap).empty());
  EXPECT_EQ(s.cursor(), 0);
  EXPECT_FALSE(s.NeedsSync());
  EXPECT_EQ(Pts(s.OnPush(Msg(1))), V{1});
}

TEST(UpdateSequencerTest, LimitedSnapshotForOldCursorJumpsForward) {
  UpdateSequencer s(10);
  s.NotePts(500000);
  s.BeginSync();
  SyncResult snap;
  snap.snapshot = true;
  snap.limited = true;
  snap.pts = 500000;
  EXPECT_TRUE(s.OnSyncResult(snap).empty());
  EXPECT_EQ(s.cursor(), 500000);
  EXPECT_FALSE(s.NeedsSync());
}

TEST(UpdateSequencerTest, CursorAheadOfServerIsDropped) {
  UpdateSequencer s(100);
  EXPECT_FALSE(s.OnAuth(100));
  EXPECT_FALSE(s.NeedsSync());
  EXPECT_FALSE(s.OnAuth(120));
  EXPECT_TRUE(s.NeedsSync());
  UpdateSequencer t(100);
  EXPECT_TRUE(t.OnAuth(7));  // server data was reset
  EXPECT_EQ(t.cursor(), std::nullopt);
  EXPECT_EQ(t.BeginSync(), std::nullopt);  // snapshot
}

TEST(UpdateSequencerTest, AbortedSyncCanBeRetried) {
  UpdateSequencer s(1);
  s.NotePts(3);
  s.BeginSync();
  EXPECT_FALSE(s.NeedsSync());
  s.OnSyncAborted();
  EXPECT_TRUE(s.NeedsSync());
  EXPECT_EQ(s.BeginSync(), 1);
}

TEST(UpdateSequencerTest, NonMessageUpdatesAdvanceTheCursor) {
  UpdateSequencer s(0);
  Update receipt;
  receipt.pts = 1;
  receipt.kind = "receipt";
  auto applied = s.OnPush(receipt);
  ASSERT_EQ(Pts(applied), V{1});
  EXPECT_FALSE(applied[0].message);
  EXPECT_EQ(s.cursor(), 1);
}

Update Rcpt(int64_t pts, const std::string& kind = "read", int64_t chat_id = 1, int64_t seq = 1) {
  Update u;
  u.pts = pts;
  u.kind = kind;
  u.receipt = Receipt{chat_id, "bob", kind, seq, 0};
  return u;
}

TEST(UpdateSequencerTest, ReceiptsFollowThePtsRulesLikeMessages) {
  UpdateSequencer s(40);
  auto applied = s.OnPush(Rcpt(41));
  ASSERT_EQ(Pts(applied), V{41});
  EXPECT_TRUE(applied[0].receipt);
  EXPECT_FALSE(applied[0].message);
  EXPECT_TRUE(s.OnPush(Rcpt(41)).empty());  // duplicate
  // A receipt beyond a gap is held until a sync fills it, then applied in order.
  EXPECT_TRUE(s.OnPush(Rcpt(44, "delivered")).empty());
  EXPECT_TRUE(s.NeedsSync());
  EXPECT_EQ(s.BeginSync(), 41);
  Update unknown;
  unknown.pts = 43;
  unknown.kind = "reaction";
  applied = s.OnSyncResult(Page({Msg(42), unknown}, 43));
  ASSERT_EQ(Pts(applied), (V{42, 43, 44}));
  EXPECT_TRUE(applied[0].message);
  EXPECT_FALSE(applied[1].message);
  EXPECT_FALSE(applied[1].receipt);
  ASSERT_TRUE(applied[2].receipt);
  EXPECT_EQ(applied[2].receipt->kind, "delivered");
  EXPECT_EQ(s.cursor(), 44);
  EXPECT_FALSE(s.NeedsSync());
}

TEST(UpdateSequencerTest, ReceiptsAfterSnapshotAreNotDropped) {
  UpdateSequencer s;
  s.BeginSync();
  SyncResult snap;
  snap.snapshot = true;
  snap.pts = 10;
  SnapshotChat chat;
  chat.chat_id = 12;
  chat.messages = {*Msg(9, 12, 5).message};
  snap.chats = {chat};
  EXPECT_TRUE(s.OnSyncResult(snap).empty());
  // A receipt about a seq the snapshot showed is still reported (only messages are deduped).
  auto applied = s.OnPush(Rcpt(11, "read", 12, 5));
  ASSERT_EQ(Pts(applied), V{11});
  EXPECT_TRUE(applied[0].receipt);
}

TEST(UpdateSequencerTest, OutOfOrderPushesAreReordered) {
  UpdateSequencer s(0);
  EXPECT_TRUE(s.OnPush(Msg(3)).empty());
  EXPECT_TRUE(s.OnPush(Msg(2)).empty());
  EXPECT_EQ(Pts(s.OnPush(Msg(1))), (V{1, 2, 3}));
  EXPECT_FALSE(s.NeedsSync());
}

TEST(UpdateSequencerTest, PendingIsBounded) {
  UpdateSequencer s(0);
  for (int64_t p = 2; p < static_cast<int64_t>(UpdateSequencer::kMaxPending) + 100; ++p) {
    s.OnPush(Msg(p));
  }
  EXPECT_EQ(s.pending(), UpdateSequencer::kMaxPending);
  EXPECT_TRUE(s.NeedsSync());
}

TEST(UpdateSequencerTest, IgnoresInvalidPts) {
  UpdateSequencer s(0);
  EXPECT_TRUE(s.OnPush(Msg(0)).empty());
  EXPECT_TRUE(s.OnPush(Msg(-5)).empty());
  EXPECT_FALSE(s.NeedsSync());
}

}  // namespace
}  // namespace parley
