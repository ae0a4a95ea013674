// PushWorker end to end: the real RocksStore (temporary directory) holds users, devices,
// targets, messages and the push queue; the webhook provider sends to tests/push/receiver.js.
#include "push/push_worker.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "common/clock.h"
#include "push/test_receiver.h"
#include "push/webhook_provider.h"
#include "store/rocksdb/rocks_store.h"

namespace parley::push {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using store::PushProvider;
using test::num;
using test::obj;
using test::Receiver;
using test::str;

template <class T, class Call>
Result<T> wait_for(Call&& call) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  call([p](Result<T> r) { p->set_value(std::move(r)); });
  return f.get();
}

json::object parse_object(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return v.is_object() ? v.get_object() : json::object();
}

json::object response(int status, json::object headers = {}, int delay_ms = 0) {
  json::object r{{"status", status}};
  if (!headers.empty()) r["headers"] = std::move(headers);
  if (delay_ms) r["delay_ms"] = delay_ms;
  return r;
}

class PushWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PARLEY_REQUIRE_RECEIVER();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("parley-push-worker-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    auto s = store::rocks::RocksStore::open(dir_.string(), StoreConfig{Durability::none, 1024},
                                            SyncConfig{});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s.value());

    config_.webhook_url = Receiver::instance().http_url("/hook");
    config_.webhook_secret = "s3cret";
    config_.poll_ms = 20;
    config_.concurrency = 2;
    config_.timeout_ms = 2000;
    config_.lease_s = 30;
    config_.backoff_base_ms = 50;
    config_.backoff_max_ms = 200;
    config_.max_attempts = 4;

    for (const char* u : {"alice", "bob"}) {
      ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                    store_->create_user(store::UserRecord{u, "", 1}, cb);
                  }).ok());
    }
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                  store_->create_device(
                      store::DeviceRecord{"bob", "phone", "phone", "hash-bob-phone", 1, false}, 0,
                      cb);
                }).ok());
    set_target(PushProvider::webhook);
  }

  void TearDown() override {
    worker_.reset();
    if (store_) store_->close();
    store_.reset();
    fs::remove_all(dir_);
  }

  void set_target(PushProvider provider) {
    auto st = wait_for<Unit>([&](auto cb) {
      store_->set_push_target(
          store::PushTarget{"bob", "phone", provider, "tok-phone", "com.example.chat", 1}, cb);
    });
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  // Alice sends bob `n` text messages and each one enqueues a push (due at once unless a
  // collapse window is given). The chat id.
  store::ChatId send(int n, int64_t collapse_ms = 0, const std::string& text = "hi") {
    store::ChatId chat = 0;
    for (int i = 0; i < n; ++i) {
      store::AppendRequest req;
      req.sender = "alice";
      req.to_user = "bob";
      req.body = text + " " + std::to_string(i + 1);
      req.client_msg_id = "c-" + std::to_string(++msg_counter_);
      req.ts = now_ms();
      req.message_id = 1000 + msg_counter_;
      auto r = wait_for<store::AppendResult>(
          [&](auto cb) { store_->append_message(std::move(req), cb); });
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (!r) return 0;
      chat = r->message.chat_id;
      enqueue(chat, r->message.seq, now_ms() + collapse_ms);
    }
    return chat;
  }

  void enqueue(store::ChatId chat, uint64_t seq, int64_t due_at) {
    std::vector<store::PushEnqueue> items{
        store::PushEnqueue{"bob", {}, chat, seq, "alice", due_at}};
    auto q =
        wait_for<uint32_t>([&](auto cb) { store_->enqueue_push(std::move(items), now_ms(), cb); });
    EXPECT_TRUE(q.ok()) << q.error().message;
  }

  void start_worker(std::map<PushProvider, std::unique_ptr<Provider>> providers = {}) {
    if (providers.empty()) {
      auto hook = WebhookProvider::create(config_);
      ASSERT_TRUE(hook.ok());
      providers.emplace(PushProvider::webhook, std::move(hook.value()));
    }
    worker_ = std::make_unique<PushWorker>(*store_, std::move(providers), config_);
    worker_->start();
  }

  store::PushQueueStats queue() {
    auto r = wait_for<store::PushQueueStats>([&](auto cb) { store_->push_queue_stats(cb); });
    EXPECT_TRUE(r.ok());
    return r.ok() ? r.value() : store::PushQueueStats{};
  }

  // Waits until `pred` holds (true) or `timeout` passes (false).
  template <class Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  // Until the worker has ended `n` jobs one way or another.
  bool finished(uint64_t n) {
    return eventually([&] {
      const auto s = worker_->stats();
      return s.sent + s.failed + s.tokens_dropped >= n && s.in_flight == 0;
    });
  }

  json::array hooks() { return Receiver::instance().requests("http"); }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  PushConfig config_;
  std::unique_ptr<PushWorker> worker_;
  int msg_counter_ = 0;
};

TEST_F(PushWorkerTest, OneNotificationPerChatBurstWithCountAndBadge) {
  const store::ChatId chat = send(3, 300);  // three messages inside the collapse window
  start_worker();
  ASSERT_TRUE(finished(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // and nothing more comes
  auto reqs = hooks();
  ASSERT_EQ(reqs.size(), 1u);
  const json::object body = parse_object(str(reqs[0], "body"));
  EXPECT_EQ(str(body, "user"), "bob");
  EXPECT_EQ(str(body, "device_id"), "phone");
  EXPECT_EQ(str(body, "token"), "tok-phone");
  EXPECT_EQ(num(body, "chat_id"), static_cast<int64_t>(chat));
  EXPECT_EQ(num(body, "count"), 3);
  EXPECT_EQ(num(body, "badge"), 3);  // bob's unread messages
  EXPECT_EQ(str(body, "sender"), "alice");
  EXPECT_EQ(num(body, "seq"), 3);
  EXPECT_FALSE(body.contains("preview"));  // previews are off by default

  const auto s = worker_->stats();
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.retried, 0u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(queue().depth, 0u);
}

TEST_F(PushWorkerTest, PreviewOfTheLatestMessageWhenEnabled) {
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->set_push_settings("bob", 0, true, cb); }).ok());
  send(2, 0, "see you at");
  start_worker();
  ASSERT_TRUE(finished(1));
  auto reqs = hooks();
  ASSERT_GE(reqs.size(), 1u);
  const json::object body = parse_object(str(reqs.back(), "body"));
  EXPECT_EQ(str(body, "preview"), "see you at 2");

  // A photo with a caption: a label, not the descriptor.
  const std::string id(64, 'a');
  store::MediaRecord rec;
  rec.id = id;
  rec.mime = "image/jpeg";
  rec.kind = "image";
  rec.size = 10;
  rec.uploaded_at = now_ms();
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->put_media(rec, "alice", cb); }).ok());
  store::AppendRequest req;
  req.sender = "alice";
  req.to_user = "bob";
  req.kind = store::MessageKind::media;
  req.body =
      R"({"id":")" + id + R"(","type":"image/jpeg","kind":"image","size":10,"caption":"our cat"})";
  req.client_msg_id = "photo-1";
  req.ts = now_ms();
  req.message_id = 5000;
  req.media_ids = {id};
  auto m = wait_for<store::AppendResult>([&](auto cb) { store_->append_message(req, cb); });
  ASSERT_TRUE(m.ok()) << m.error().message;
  Receiver::instance().reset();
  enqueue(m->message.chat_id, m->message.seq, now_ms());
  ASSERT_TRUE(finished(2));
  reqs = hooks();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(str(parse_object(str(reqs[0], "body")), "preview"), "[photo] our cat");
}

TEST_F(PushWorkerTest, RetriesOn500ThenSucceeds) {
  Receiver::instance().script("http /hook", json::array{response(500), response(500)});
  send(1);
  start_worker();
  ASSERT_TRUE(finished(1));
  EXPECT_EQ(hooks().size(), 3u);
  const auto s = worker_->stats();
  EXPECT_EQ(s.retried, 2u);
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.failed, 0u);
  const auto q = queue();
  EXPECT_EQ(q.depth, 0u);
  EXPECT_EQ(q.dead_letters, 0u);
}

TEST_F(PushWorkerTest, GivesUpAfterMaxAttemptsWithADeadLetter) {
  config_.max_attempts = 3;
  json::array failures;
  for (int i = 0; i < 6; ++i) failures.push_back(response(503));
  Receiver::instance().script("http /hook", failures);
  send(1);
  start_worker();
  ASSERT_TRUE(finished(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(hooks().size(), 3u);
  const auto s = worker_->stats();
  EXPECT_EQ(s.retried, 2u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.sent, 0u);
  const auto q = queue();
  EXPECT_EQ(q.depth, 0u);
  EXPECT_EQ(q.dead_letters, 1u);
}

TEST_F(PushWorkerTest, HonoursRetryAfter) {
  Receiver::instance().script("http /hook",
                              json::array{response(429, {{"Retry-After", "1"}}), response(200)});
  send(1);
  start_worker();
  ASSERT_TRUE(finished(1));
  auto reqs = hooks();
  ASSERT_EQ(reqs.size(), 2u);
  // Backoff alone would retry within backoff_max_ms (200 ms); Retry-After says 1 s.
  EXPECT_GE(num(reqs[1], "t") - num(reqs[0], "t"), 1000);
  EXPECT_EQ(worker_->stats().retried, 1u);
}

TEST_F(PushWorkerTest, RemovesTheTargetWhenTheTokenIsGone) {
  Receiver::instance().script("http /hook", json::array{response(410)});
  send(1);
  start_worker();
  ASSERT_TRUE(finished(1));
  EXPECT_EQ(worker_->stats().tokens_dropped, 1u);
  auto targets =
      wait_for<std::vector<store::PushTarget>>([&](auto cb) { store_->push_targets("bob", cb); });
  ASSERT_TRUE(targets.ok());
  EXPECT_TRUE(targets->empty());
  EXPECT_EQ(queue().depth, 0u);
  // Later messages have nowhere to go: nothing is queued, nothing sent.
  send(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(hooks().size(), 1u);
  EXPECT_EQ(queue().depth, 0u);
}

TEST_F(PushWorkerTest, DeadLetterForAProviderThatIsNotConfigured) {
  set_target(PushProvider::apns);
  send(1);
  start_worker();  // webhook only
  ASSERT_TRUE(finished(1));
  EXPECT_EQ(worker_->stats().failed, 1u);
  EXPECT_TRUE(hooks().empty());
  const auto q = queue();
  EXPECT_EQ(q.depth, 0u);
  EXPECT_EQ(q.dead_letters, 1u);
}

TEST_F(PushWorkerTest, StopWaitsForTheSendInFlight) {
  Receiver::instance().script("http /hook", json::array{response(200, {}, 500)});
  send(1);
  start_worker();
  ASSERT_TRUE(eventually([&] { return worker_->stats().in_flight == 1; }));
  worker_->stop();  // returns once the answer came and the job is finished
  const auto s = worker_->stats();
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(queue().depth, 0u);
}

TEST_F(PushWorkerTest, SendsManyChatsInParallelUpToConcurrency) {
  // Ten chats (bob with ten senders), each answer slow: two at a time (concurrency 2).
  for (int i = 0; i < 10; ++i) {
    const std::string peer = "peer" + std::to_string(i);
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                  store_->create_user(store::UserRecord{peer, "", 1}, cb);
                }).ok());
    store::AppendRequest req;
    req.sender = peer;
    req.to_user = "bob";
    req.body = "hello";
    req.client_msg_id = "m";
    req.ts = now_ms();
    req.message_id = 7000 + i;
    auto r = wait_for<store::AppendResult>([&](auto cb) { store_->append_message(req, cb); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    enqueue(r->message.chat_id, r->message.seq, now_ms());
  }
  json::array slow;
  for (int i = 0; i < 10; ++i) slow.push_back(response(200, {}, 150));
  Receiver::instance().script("http /hook", slow);
  const auto started = std::chrono::steady_clock::now();
  start_worker();
  uint64_t max_in_flight = 0;
  ASSERT_TRUE(eventually([&] {
    const auto s = worker_->stats();
    max_in_flight = std::max(max_in_flight, s.in_flight);
    return s.sent == 10;
  }));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LE(max_in_flight, 2u);
  EXPECT_GE(took, std::chrono::milliseconds(700));  // 10 x 150 ms, two at a time
  EXPECT_EQ(hooks().size(), 10u);
  EXPECT_EQ(queue().depth, 0u);
}

}  // namespace
}  // namespace parley::push
