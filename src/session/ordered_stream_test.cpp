// OrderedStream: pushes and answers leave in pts order whatever order they arrive in; gaps
// are held, then read through the catch-up, then given up (session/ordered_stream.h).
#include "session/ordered_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <map>
#include <mutex>

namespace parley::session {
namespace {

using namespace std::chrono_literals;

class FakeTransport final : public net::Transport {
 public:
  explicit FakeTransport(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  using net::Transport::send;
  void send(std::shared_ptr<const std::string> frame, net::FrameKind kind) override {
    std::lock_guard lock(mu_);
    sent_.push_back((kind == net::FrameKind::answer ? "answer:" : "") + *frame);
  }
  void close(uint16_t, std::string) override {}
  void set_batching(bool) override {}
  uint64_t id() const override { return 7; }
  boost::asio::any_io_executor executor() const override { return ex_; }
  std::vector<std::string> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  boost::asio::any_io_executor ex_;
  std::mutex mu_;
  std::vector<std::string> sent_;
};

std::shared_ptr<const std::string> frame(const std::string& s) {
  return std::make_shared<const std::string>(s);
}

// Catch-up reads as the store would answer them; each read waits until the test answers it.
struct FakeLog {
  struct Read {
    uint64_t after = 0;
    uint32_t limit = 0;
    std::function<void(Result<CatchUpPage>)> done;
  };
  std::deque<Read> reads;
  auto fn() {
    return [this](const std::string&, uint64_t after, uint32_t limit,
                  std::function<void(Result<CatchUpPage>)> done) {
      reads.push_back(Read{after, limit, std::move(done)});
    };
  }
  // Answers the oldest read with the updates `from`..`to` ("u<pts>").
  void answer(uint64_t from, uint64_t to, bool limited = false) {
    ASSERT_FALSE(reads.empty());
    auto read = std::move(reads.front());
    reads.pop_front();
    CatchUpPage page;
    page.limited = limited;
    for (uint64_t p = from; p <= to && p - from < read.limit; ++p)
      page.updates.push_back(PtsFrame{p, frame("u" + std::to_string(p)), ""});
    read.done(std::move(page));
  }
  // Answers the oldest read with the updates `from`..`to`, those in `own` being the reading
  // device's user's own sends (pts -> client_msg_id).
  void answer_own(uint64_t from, uint64_t to, const std::map<uint64_t, std::string>& own) {
    ASSERT_FALSE(reads.empty());
    auto read = std::move(reads.front());
    reads.pop_front();
    CatchUpPage page;
    for (uint64_t p = from; p <= to && p - from < read.limit; ++p) {
      auto it = own.find(p);
      page.updates.push_back(
          PtsFrame{p, frame("u" + std::to_string(p)), it == own.end() ? "" : it->second});
    }
    read.done(std::move(page));
  }
  void fail() {
    auto read = std::move(reads.front());
    reads.pop_front();
    read.done(Error{Errc::unavailable, "store down"});
  }
};

class DeviceStreamTest : public ::testing::Test {
 protected:
  std::shared_ptr<OrderedStream> make(StreamOptions options = {10ms, 2, 100}) {
    transport_ = std::make_shared<FakeTransport>(ioc_.get_executor());
    return OrderedStream::for_device(transport_, "alice", options, log_.fn());
  }
  void run() {
    ioc_.restart();
    ioc_.poll();
  }
  // Runs the loop until `pred` holds (timers included), at most a few seconds.
  template <class Pred>
  void run_until(Pred pred) {
    for (int i = 0; i < 500 && !pred(); ++i) {
      ioc_.restart();
      ioc_.run_for(10ms);
    }
    ASSERT_TRUE(pred());
  }
  std::vector<std::string> sent() { return transport_->sent(); }

  boost::asio::io_context ioc_;
  std::shared_ptr<FakeTransport> transport_;
  FakeLog log_;
};

using Sent = std::vector<std::string>;

TEST_F(DeviceStreamTest, UpdatesInOrderGoOutAtOnce) {
  auto s = make();
  s->start(5, frame("auth"));
  s->push(6, frame("u6"));
  s->push(7, frame("u7"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u6", "u7"}));
  EXPECT_EQ(s->next_pts_for_test(), 8u);
}

TEST_F(DeviceStreamTest, PushesBeforeTheAuthAnswerWaitForItAndThoseItCoversAreDropped) {
  auto s = make();
  s->push(7, frame("u7"));
  s->push(5, frame("u5"));  // in the sync the device does after auth
  s->push(6, frame("u6"));
  run();
  EXPECT_TRUE(sent().empty());
  s->start(5, frame("auth"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u6", "u7"}));
}

TEST_F(DeviceStreamTest, UpdatesOutOfOrderAreReorderedWithoutReadingTheStore) {
  auto s = make();
  s->start(0, frame("auth"));
  s->push(3, frame("u3"));
  s->push(2, frame("u2"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth"}));
  s->push(1, frame("u1"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u1", "u2", "u3"}));
  EXPECT_TRUE(log_.reads.empty());
}

TEST_F(DeviceStreamTest, AGapStillOpenAfterTheHoldIsReadFromTheStoreAndTheLatePushDropped) {
  auto s = make();
  s->start(0, frame("auth"));
  s->push(2, frame("u2"));
  s->push(3, frame("u3"));
  run_until([&] { return !log_.reads.empty(); });
  EXPECT_EQ(log_.reads.front().after, 0u);
  EXPECT_EQ(log_.reads.front().limit, 1u);  // just the gap
  log_.answer(1, 1);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u1", "u2", "u3"}));
  s->push(1, frame("late u1"));  // its commit completed after all: the device has it
  run();
  EXPECT_EQ(sent().size(), 4u);
}

TEST_F(DeviceStreamTest, AnAnswerWaitsForTheUpdatesBeforeItAndIsNeverDropped) {
  auto s = make();
  s->start(0, frame("auth"));
  s->answer(2, frame("sent 2"));
  s->answer(0, frame("no pts"));  // not in the log: at once
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:no pts"}));
  s->push(1, frame("u1"));
  s->push(3, frame("u3"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:no pts", "u1", "answer:sent 2", "u3"}));
  s->answer(2, frame("duplicate of 2"));  // an idempotent retry: its pts is passed
  run();
  EXPECT_EQ(sent().back(), "answer:duplicate of 2");
}

// The device's own send, committed but not answered yet, sits in a gap: the catch-up stops
// before it (the answer carries that pts: PROTOCOL.md §3.3, the sending connection does not
// get its message pushed) and reads no more until the answer comes. An answer that is an
// error lets the next catch-up push the update (it may have been stored).
TEST_F(DeviceStreamTest, ACatchUpLeavesTheDevicesOwnSendToItsAnswer) {
  auto s = make();
  s->start(0, frame("auth"));
  s->await_answer("c1");
  s->await_answer("c2");
  s->answer(2, frame("sent 2"), "c2");  // answered before c1, whose pts is 1
  s->push(3, frame("u3"));
  run_until([&] { return !log_.reads.empty(); });
  log_.answer_own(1, 1, {{1, "c1"}});
  for (int i = 0; i < 5; ++i) {  // several holds: no push of u1, no other read
    ioc_.restart();
    ioc_.run_for(10ms);
  }
  EXPECT_EQ(sent(), (Sent{"answer:auth"}));
  EXPECT_TRUE(log_.reads.empty());
  s->answer(1, frame("sent 1"), "c1");
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:sent 1", "answer:sent 2", "u3"}));

  // The same gap, answered with an error: the update, stored after all, is pushed.
  s->await_answer("c4");
  s->push(5, frame("u5"));
  run_until([&] { return !log_.reads.empty(); });
  log_.answer_own(4, 4, {{4, "c4"}});
  run();
  EXPECT_EQ(sent().size(), 4u);
  s->answer(0, frame("error of c4"), "c4");
  run_until([&] { return !log_.reads.empty(); });
  log_.answer_own(4, 4, {{4, "c4"}});
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:sent 1", "answer:sent 2", "u3",
                          "answer:error of c4", "u4", "u5"}));

  // A catch-up is under way for the gap 6..8 when the answer of pts 7 comes (it waits
  // behind the gap); the read then brings the sent message at 7: the answer takes its
  // place, the message is not pushed.
  s->await_answer("c7");
  s->push(9, frame("u9"));
  run_until([&] { return !log_.reads.empty(); });
  EXPECT_EQ(log_.reads.front().limit, 3u);
  s->answer(7, frame("sent 7"), "c7");
  run();
  log_.answer_own(6, 8, {{7, "c7"}});
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:sent 1", "answer:sent 2", "u3",
                          "answer:error of c4", "u4", "u5", "u6", "answer:sent 7", "u8", "u9"}));
}

TEST_F(DeviceStreamTest, AnAnswerBeforeTheAuthAnswerStillGoesOut) {
  auto s = make();
  s->answer(4, frame("sent 4"));  // committed before the position was read
  s->push(4, frame("u4 for another device"));
  run();
  s->start(4, frame("auth"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "answer:sent 4"}));
}

TEST_F(DeviceStreamTest, AGapThatNeverBecomesReadableIsGivenUpAfterTheRetries) {
  auto s = make({5ms, 2, 100});
  s->start(0, frame("auth"));
  s->push(2, frame("u2"));
  for (int attempt = 0; attempt < 3; ++attempt) {
    run_until([&] { return !log_.reads.empty(); });
    log_.answer(1, 0);  // nothing readable yet
    run();
  }
  // Retries exhausted: the held push goes, the client sees the jump and syncs.
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u2"}));
  EXPECT_EQ(s->next_pts_for_test(), 3u);
  s->push(1, frame("u1"));
  run();
  EXPECT_EQ(sent().size(), 2u);
}

TEST_F(DeviceStreamTest, AFailedReadIsRetried) {
  auto s = make();
  s->start(0, frame("auth"));
  s->push(2, frame("u2"));
  run_until([&] { return !log_.reads.empty(); });
  log_.fail();
  run_until([&] { return !log_.reads.empty(); });
  log_.answer(1, 1);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u1", "u2"}));
}

TEST_F(DeviceStreamTest, ALogThatNoLongerHoldsTheGapGivesUpAtOnce) {
  auto s = make();
  s->start(0, frame("auth"));
  s->push(9, frame("u9"));
  run_until([&] { return !log_.reads.empty(); });
  log_.answer(1, 0, /*limited=*/true);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u9"}));
}

TEST_F(DeviceStreamTest, TooManyHeldUpdatesReadTheGapWithoutWaiting) {
  auto s = make({std::chrono::hours(1), 2, 3});
  s->start(0, frame("auth"));
  for (uint64_t p = 2; p <= 5; ++p) s->push(p, frame("u" + std::to_string(p)));
  run();
  ASSERT_EQ(log_.reads.size(), 1u);  // no hour-long wait
  log_.answer(1, 1);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u1", "u2", "u3", "u4", "u5"}));
}

TEST_F(DeviceStreamTest, WithoutAKnownPositionTheFirstUpdateSetsIt) {
  auto s = make();
  s->start(std::nullopt, frame("auth"));
  s->push(41, frame("u41"));
  s->push(43, frame("u43"));
  s->push(42, frame("u42"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u41", "u42", "u43"}));
}

TEST_F(DeviceStreamTest, AStoppedStreamSendsNothingAndReadsNothing) {
  auto s = make();
  s->start(0, frame("auth"));
  s->push(2, frame("u2"));
  s->stop();
  run();
  ioc_.restart();
  ioc_.run_for(50ms);
  s->push(1, frame("u1"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth"}));
  EXPECT_TRUE(log_.reads.empty());
}

TEST_F(DeviceStreamTest, ExpectedUpdatesAreReadAtOnceWithoutALaterPush) {
  auto s = make({std::chrono::hours(1), 2, 100});  // no hold could explain a read
  s->start(5, frame("auth"));
  s->expect(5);  // at the position: nothing missing
  run();
  EXPECT_TRUE(log_.reads.empty());
  s->expect(7);
  run();
  ASSERT_EQ(log_.reads.size(), 1u);
  EXPECT_EQ(log_.reads.front().after, 5u);
  EXPECT_EQ(log_.reads.front().limit, 2u);
  s->push(8, frame("u8"));  // live while the read is out: held behind it
  run();
  log_.answer(6, 7);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u6", "u7", "u8"}));
  s->expect(6);  // lower: nothing
  s->push(7, frame("late u7"));
  run();
  EXPECT_EQ(sent().size(), 4u);
  EXPECT_TRUE(log_.reads.empty());
}

TEST_F(DeviceStreamTest, AnExpectationBeforeTheStartIsReadOnceThePositionIsKnown) {
  auto s = make({std::chrono::hours(1), 2, 100});
  s->expect(9);
  run();
  EXPECT_TRUE(log_.reads.empty());
  s->start(7, frame("auth"));
  run();
  ASSERT_EQ(log_.reads.size(), 1u);
  EXPECT_EQ(log_.reads.front().after, 7u);
  log_.answer(8, 9);
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u8", "u9"}));
}

TEST_F(DeviceStreamTest, AnExpectationThatCannotBeReadIsRetriedThenGivenUp) {
  auto s = make({5ms, 2, 100});
  s->start(0, frame("auth"));
  s->expect(2);
  for (int attempt = 0; attempt < 3; ++attempt) {
    run_until([&] { return !log_.reads.empty(); });
    log_.fail();
    run();
  }
  EXPECT_EQ(s->next_pts_for_test(), 3u);  // given up: the client syncs when it sees a jump
  s->push(3, frame("u3"));
  run();
  EXPECT_EQ(sent(), (Sent{"answer:auth", "u3"}));
}

TEST_F(DeviceStreamTest, AChatStreamOrdersBySeqAndHandsEachFramesTagToItsSink) {
  std::vector<std::pair<std::string, uint64_t>> out;
  auto s = std::make_shared<OrderedStream>(
      ioc_.get_executor(), "chat 31", StreamOptions{10ms, 2, 100},
      [&](uint64_t after, uint32_t limit, std::function<void(Result<CatchUpPage>)> done) {
        log_.reads.push_back(FakeLog::Read{after, limit, std::move(done)});
      },
      [&](std::shared_ptr<const std::string> frame, net::FrameKind, uint64_t tag) {
        out.emplace_back(*frame, tag);
      });
  s->start(10, nullptr);           // the chat's seq when the node subscribed; nothing to send first
  s->push(12, frame("m12"), 7);    // 7: the sending connection, which must not get it
  s->push(0, frame("typing"), 3);  // no seq: at once
  s->push(11, frame("m11"), 0);
  run();
  using Out = std::vector<std::pair<std::string, uint64_t>>;
  EXPECT_EQ(out, (Out{{"typing", 3}, {"m11", 0}, {"m12", 7}}));
}

}  // namespace
}  // namespace parley::session
