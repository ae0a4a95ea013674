// Faults under a steady load on a two-node cluster (two Redis servers, one PostgreSQL of the
// test's own; docs/SCALING.md "Failure behaviour"): a node killed and restarted, a Redis
// server killed and restarted, PostgreSQL stopped for a few seconds, a node drained with
// SIGTERM. Senders retry with the same client_msg_id, on either node, until acknowledged.
// At the end every receiver's device syncs, and the checker asserts: every acknowledged
// message is there exactly once, in seq order, with the body that was acknowledged; nothing
// was stored that was not acknowledged; no acknowledgement arrived while PostgreSQL was down.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/cluster_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kPairs = 8;

struct Ack {
  std::int64_t chat_id = 0;
  std::int64_t seq = 0;
  std::string body;
  Clock::time_point at;
};

// One sender: sends numbered messages to its receiver, one in flight, retrying each one with
// its client_msg_id (on the same node, or on the other once its connection broke) until the
// server acknowledges it. Runs on its own thread; never starts servers.
class Sender {
 public:
  Sender(int index, std::string to, std::string token, std::vector<std::uint16_t> ports)
      : index_(index), to_(std::move(to)), token_(std::move(token)), ports_(std::move(ports)) {}

  void run(const std::atomic<bool>& stop, Clock::time_point deadline) {
    for (int k = 0; !stop.load() && Clock::now() < deadline; ++k) {
      const std::string cmid = "f" + std::to_string(index_) + "-" + std::to_string(k);
      const std::string body = "message " + std::to_string(k) + " of " + std::to_string(index_);
      // Once started, a message is retried until acknowledged, also after `stop`.
      while (Clock::now() < deadline) {
        if (auto ack = attempt(body, cmid)) {
          std::lock_guard lock(mu_);
          acks_.push_back(*ack);
          break;
        }
        std::this_thread::sleep_for(50ms);
      }
    }
  }

  std::vector<Ack> acks() const {
    std::lock_guard lock(mu_);
    return acks_;
  }
  int retries() const { return retries_.load(); }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  std::optional<Ack> attempt(const std::string& body, const std::string& cmid) {
    try {
      if (!client_ || client_->closed()) {
        client_.reset();
        node_ = (node_ + 1) % ports_.size();  // the other node: its own may be down
        client_ = connect_authed(ports_[node_], token_);
      }
      auto f = client_->request(send_frame(to_, body, cmid), 5s);
      if (is_ok(f)) {
        const auto& r = obj_field(f, "result");
        return Ack{int_field(r, "chat_id"), int_field(r, "seq"), body, Clock::now()};
      }
      ++retries_;
      const auto* retryable = f.if_contains("retryable");
      if (!(retryable && retryable->is_bool() && retryable->as_bool())) {
        std::lock_guard lock(mu_);
        failures_.push_back(json::serialize(f));
      }
    } catch (const std::exception&) {
      ++retries_;
      client_.reset();  // a node went away, or no answer in time: reconnect
    }
    return std::nullopt;
  }

  const int index_;
  const std::string to_;
  const std::string token_;
  const std::vector<std::uint16_t> ports_;
  size_t node_ = static_cast<size_t>(index_);
  std::unique_ptr<WsClient> client_;
  mutable std::mutex mu_;
  std::vector<Ack> acks_;
  std::vector<std::string> failures_;
  std::atomic<int> retries_{0};
};

// Polls /readyz until its status is `status` (and its body holds `mention`), for 5 s.
bool readiness_becomes(std::uint16_t port, const std::string& status, const std::string& mention) {
  for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(50ms)) {
    auto r = http_get(port, "/readyz");
    if (r.body.find("\"status\":\"" + status + "\"") != std::string::npos &&
        r.body.find(mention) != std::string::npos)
      return true;
  }
  return false;
}

TEST(ClusterFaults, NothingAcknowledgedIsLostOrDuplicatedThroughNodeRedisAndPostgresFaults) {
  std::vector<std::unique_ptr<RedisServer>> redis;
  redis.push_back(std::make_unique<RedisServer>());
  redis.push_back(std::make_unique<RedisServer>());
  auto& pg = PostgresServer::shared();
  pg.create_database("parley_faults");
  auto config = [&](int node_id) {
    return cluster_node_config(node_id, {redis[0]->address(), redis[1]->address()},
                               {pg.conninfo("parley_faults")});
  };
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  nodes.push_back(std::make_unique<ServerProcess>(config(1)));
  nodes.push_back(std::make_unique<ServerProcess>(config(2)));
  const std::vector<std::uint16_t> ports{nodes[0]->port(), nodes[1]->port()};

  // Pairs: the sender on one node, its receiver's device on the other.
  std::vector<std::unique_ptr<Sender>> senders;
  std::vector<std::string> receivers, receiver_tokens;
  for (int i = 0; i < kPairs; ++i) {
    const auto from = unique_username("sender");
    const auto to = unique_username("receiver");
    register_user(ports[0], from);
    register_user(ports[1], to);
    senders.push_back(std::make_unique<Sender>(i, to, login(ports[0], from).token, ports));
    receivers.push_back(to);
    receiver_tokens.push_back(login(ports[1], to).token);
  }

  std::atomic<bool> stop{false};
  const auto deadline = Clock::now() + 120s;
  std::vector<std::thread> threads;
  for (auto& s : senders) threads.emplace_back([&, s = s.get()] { s->run(stop, deadline); });

  // The faults, from this (the main) thread, a few seconds apart.
  auto steady = [] { std::this_thread::sleep_for(2s); };
  steady();
  nodes[1]->kill();
  std::this_thread::sleep_for(1s);
  nodes[1]->restart(ports[1]);
  steady();
  redis[0]->kill();
  EXPECT_TRUE(readiness_becomes(ports[0], "degraded", redis[0]->address()))
      << "/readyz did not name the Redis server that is down";
  redis[0]->start();
  steady();
  pg.stop();
  const auto pg_down = Clock::now();
  EXPECT_TRUE(readiness_becomes(ports[1], "unavailable", "")) << "/readyz with the store down";
  std::this_thread::sleep_for(pg_down + 3s - Clock::now());
  const auto pg_up = Clock::now();
  pg.start();
  steady();
  const auto drained = nodes[0]->stop(30s);
  EXPECT_TRUE(drained.ok()) << "SIGTERM drain: " << drained.describe();
  nodes[0]->restart(ports[0]);
  steady();
  stop = true;
  for (auto& t : threads) t.join();

  // The checker.
  int total = 0, retries = 0;
  // How long sends stayed refused once PostgreSQL was back (printed: docs/SCALING.md).
  auto first_after_pg = Clock::time_point::max();
  for (const auto& s : senders)
    for (const auto& a : s->acks())
      if (a.at >= pg_up) first_after_pg = std::min(first_after_pg, a.at);
  for (int i = 0; i < kPairs; ++i) {
    const auto acks = senders[i]->acks();
    retries += senders[i]->retries();
    EXPECT_TRUE(senders[i]->failures().empty())
        << "sender " << i << " got a non-retryable error: " << senders[i]->failures().front();
    ASSERT_FALSE(acks.empty()) << "sender " << i << " never got an ack";
    total += static_cast<int>(acks.size());
    const auto chat_id = acks.front().chat_id;
    // Acknowledged: seqs 1..n, each once, in sending order (one in flight per sender).
    for (size_t k = 0; k < acks.size(); ++k) {
      EXPECT_EQ(acks[k].chat_id, chat_id);
      EXPECT_EQ(acks[k].seq, static_cast<std::int64_t>(k + 1))
          << "sender " << i << ": ack " << k << " (" << acks[k].body << ")";
      // Grace for an ack already on its way when the server stopped.
      EXPECT_FALSE(acks[k].at > pg_down + 500ms && acks[k].at < pg_up)
          << "acknowledged while PostgreSQL was down: " << acks[k].body;
    }
    // The receiver's device syncs from the start, on either node: exactly what was acked.
    auto device = connect_authed(ports[i % 2], receiver_tokens[i]);
    std::vector<std::pair<std::int64_t, std::string>> synced;
    for (const auto& u : sync_all(*device, 0)) {
      const auto* m = u.as_object().if_contains("message");
      if (m && m->is_object() && int_field(m->as_object(), "chat_id") == chat_id)
        synced.emplace_back(int_field(m->as_object(), "seq"), str_field(m->as_object(), "body"));
    }
    ASSERT_EQ(synced.size(), acks.size()) << "receiver " << i << " synced another count";
    for (size_t k = 0; k < acks.size(); ++k) {
      EXPECT_EQ(synced[k].first, acks[k].seq) << "receiver " << i << " at " << k;
      EXPECT_EQ(synced[k].second, acks[k].body) << "receiver " << i << " at " << k;
    }
  }
  // The load went on through the faults (not a test of speed: that each fault met sends).
  EXPECT_GT(total, kPairs * 20);
  EXPECT_GT(retries, 0) << "no send met a fault";
  std::cout << "[fault run] " << total << " messages acknowledged, " << retries
            << " attempts retried; first ack "
            << std::chrono::duration_cast<std::chrono::milliseconds>(first_after_pg - pg_up).count()
            << " ms after PostgreSQL started again\n";
  nodes.clear();
  pg.drop_database("parley_faults");
}

}  // namespace
}  // namespace parley::test
