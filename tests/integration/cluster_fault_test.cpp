// Faults under a steady load on a two-node cluster (two Redis servers, the store sharded over
// two PostgreSQL servers the test starts; docs/SCALING.md "Failure behaviour"): a node killed
// and restarted, a Redis server killed and restarted, one PostgreSQL shard stopped for a few
// seconds while the other stays up, a node drained with SIGTERM. Eight senders, one per way of
// placing a sender's account, a receiver's and their chat on the two shards (or n per way
// with PARLEY_FAULT_SENDERS=n), retry with the same client_msg_id, on either node, until
// acknowledged. At the end the devices of both
// members of every chat sync, and the checker asserts: every acknowledged message is there
// exactly once, in seq order, with the body that was acknowledged; nothing was stored that
// was not acknowledged; no send that needs the stopped shard (its chat or its sender's account
// is there) was acknowledged while that shard was down, beyond what it had committed before it
// stopped; sends that do not need it went on being acknowledged meanwhile. make test runs the
// cycle of faults once; PARLEY_FAULT_ROUNDS=n runs it n times (several minutes of load).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/pg_placement.h"
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
using store::pg::Placement;

// Every node lists the two PostgreSQL servers in this order (pg_placement.h).
constexpr Placement kShards{0, 2};
// The shard that is stopped: the test's own second server (the first is the shared one).
constexpr uint32_t kDownShard = 1;
// A pair per placement (or several: PARLEY_FAULT_SENDERS): pair i has its sender's account on
// shard bit 0 of i, its receiver's on bit 1, their direct chat on bit 2 (every combination of
// where a send's rows live).
constexpr int kPlacements = 8;
uint32_t sender_shard(int pair) { return pair & 1; }
uint32_t receiver_shard(int pair) { return (pair >> 1) & 1; }
uint32_t chat_shard(int pair) { return (pair >> 2) & 1; }

struct Ack {
  std::int64_t chat_id = 0;
  std::int64_t seq = 0;
  std::int64_t ts = 0;  // the message's ts: the node's wall clock (ms) before the commit
  std::string body;
  Clock::time_point at;  // when the sender read the acknowledgement
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
        return Ack{int_field(r, "chat_id"), int_field(r, "seq"), int_field(r, "ts"), body,
                   Clock::now()};
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

// A fresh user name whose account lives on `shard`.
std::string user_on(std::string_view prefix, uint32_t shard) {
  for (;;)
    if (auto u = unique_username(prefix); kShards.user_shard(u) == shard) return u;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// PARLEY_FAULT_ROUNDS: how many times the fault cycle runs (1 when unset or not a number
// from 1 to 100).
int fault_rounds() {
  const char* v = std::getenv("PARLEY_FAULT_ROUNDS");
  const int n = v ? std::atoi(v) : 1;
  return n >= 1 && n <= 100 ? n : 1;
}

// PARLEY_FAULT_SENDERS: senders per placement (1 when unset or not a number from 1 to 16).
// Each has one message in flight, so more senders load the cluster harder.
int senders_per_placement() {
  const char* v = std::getenv("PARLEY_FAULT_SENDERS");
  const int n = v ? std::atoi(v) : 1;
  return n >= 1 && n <= 16 ? n : 1;
}

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

TEST(ClusterFaults, NothingAcknowledgedIsLostOrDuplicatedThroughNodeRedisAndPostgresFaults) {
  std::vector<std::unique_ptr<RedisServer>> redis;
  redis.push_back(std::make_unique<RedisServer>());
  redis.push_back(std::make_unique<RedisServer>());
  // The store's two shards: the shared server (shard 0) and one of the test's own (shard 1).
  std::vector<PostgresServer*> pg;
  auto pg2 = std::make_unique<PostgresServer>();
  pg.push_back(&PostgresServer::shared());
  pg.push_back(pg2.get());
  for (auto* server : pg) server->create_database("parley_faults");
  auto config = [&](int node_id) {
    return cluster_node_config(
        node_id, {redis[0]->address(), redis[1]->address()},
        {pg[0]->conninfo("parley_faults"), pg[1]->conninfo("parley_faults")});
  };
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  nodes.push_back(std::make_unique<ServerProcess>(config(1)));
  nodes.push_back(std::make_unique<ServerProcess>(config(2)));
  const std::vector<std::uint16_t> ports{nodes[0]->port(), nodes[1]->port()};

  // Pairs: the sender on one node, its receiver's device on the other; accounts and chats
  // placed as sender_shard/receiver_shard/chat_shard say.
  std::vector<std::unique_ptr<Sender>> senders;
  std::vector<std::string> sender_tokens, receiver_tokens;
  const int pairs = kPlacements * senders_per_placement();
  for (int i = 0; i < pairs; ++i) {
    const auto from = user_on("sender", sender_shard(i));
    std::string to;
    do to = user_on("receiver", receiver_shard(i));
    while (kShards.pair_shard(from, to) != chat_shard(i));
    register_user(ports[0], from);
    register_user(ports[1], to);
    sender_tokens.push_back(login(ports[0], from).token);
    senders.push_back(std::make_unique<Sender>(i, to, sender_tokens.back(), ports));
    receiver_tokens.push_back(login(ports[1], to).token);
  }

  // The fault cycle below runs once in make test (about 17 s of load); PARLEY_FAULT_ROUNDS=n
  // runs it n times in a row (a run of several minutes: docs/SCALING.md).
  const int rounds = fault_rounds();
  std::atomic<bool> stop{false};
  const auto deadline = Clock::now() + 60s + rounds * 60s;
  std::vector<std::thread> threads;
  const auto load_from = Clock::now();
  for (auto& s : senders) threads.emplace_back([&, s = s.get()] { s->run(stop, deadline); });

  // The faults, from this (the main) thread, a few seconds apart.
  auto steady = [] { std::this_thread::sleep_for(2s); };
  // Each time the shard was down: from the moment it has exited to the moment it is started
  // again, on both clocks: steady for when acks arrived, the wall clock for the messages' ts.
  struct Outage {
    Clock::time_point from, to;
    std::int64_t from_ms = 0;
  };
  std::vector<Outage> outages;
  for (int round = 0; round < rounds; ++round) {
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
    // One shard stops (fast shutdown: its sessions are cut, the process exits) for 3 s.
    pg[kDownShard]->stop();
    Outage out{Clock::now(), {}, wall_ms()};
    // The other shard serves: the nodes stay in the load balancer's rotation (200
    // "degraded", the store partial), and /readyz names the server that is down.
    EXPECT_TRUE(readiness_becomes(ports[1], "degraded",
                                  "server " + std::to_string(kDownShard + 1) + " of 2"))
        << "/readyz with one store shard down did not say degraded and name it";
    EXPECT_NE(http_get(ports[1], "/readyz").body.find("\"partial\":true"), std::string::npos);
    std::this_thread::sleep_for(out.from + 3s - Clock::now());
    out.to = Clock::now();
    outages.push_back(out);
    pg[kDownShard]->start();
    steady();
    const auto drained = nodes[0]->stop(30s);
    EXPECT_TRUE(drained.ok()) << "SIGTERM drain: " << drained.describe();
    nodes[0]->restart(ports[0]);
  }
  steady();
  stop = true;
  for (auto& t : threads) t.join();
  const auto load_for = Clock::now() - load_from;

  // The checker.
  int total = 0, retries = 0, synced_late = 0;
  // Acknowledgements received while the shard was down: of sends that do not need it (the
  // load that must go on; `deferred`: their receiver's log entry is on it and waits in the
  // outbox), and of sends that do (only what it committed before it stopped).
  int acked_elsewhere_meanwhile = 0, deferred_meanwhile = 0, acked_in_flight = 0;
  Clock::duration latest_in_flight{};
  // How long sends to the stopped shard's chats stayed refused once it was started again,
  // the longest over the outages (printed: docs/SCALING.md); an outage none followed: max.
  std::vector<Clock::time_point> first_after_restart(outages.size(), Clock::time_point::max());
  // (seq, body) of chat `chat_id` in the update log of the device holding `token`, read with a
  // sync from pts 0 on node `node`; read again for up to 10 s while it holds fewer than
  // `want` (entries a down shard could not take at once reach it by the outbox's replay).
  auto synced = [&](size_t node, const std::string& token, std::int64_t chat_id, size_t want) {
    std::vector<std::pair<std::int64_t, std::string>> got;
    for (auto until = Clock::now() + 10s;; std::this_thread::sleep_for(250ms)) {
      got.clear();
      auto device = connect_authed(ports[node], token);
      for (const auto& u : sync_all(*device, 0)) {
        const auto* m = u.as_object().if_contains("message");
        if (m && m->is_object() && int_field(m->as_object(), "chat_id") == chat_id)
          got.emplace_back(int_field(m->as_object(), "seq"), str_field(m->as_object(), "body"));
      }
      if (got.size() >= want || Clock::now() >= until) return got;
      ++synced_late;
    }
  };
  std::map<uint32_t, int> acked_per_shard;
  for (int i = 0; i < pairs; ++i) {
    const auto acks = senders[i]->acks();
    retries += senders[i]->retries();
    EXPECT_TRUE(senders[i]->failures().empty())
        << "sender " << i << " got a non-retryable error: " << senders[i]->failures().front();
    ASSERT_FALSE(acks.empty()) << "sender " << i << " never got an ack";
    total += static_cast<int>(acks.size());
    const auto chat_id = acks.front().chat_id;
    const auto shard = kShards.chat_shard(static_cast<std::uint64_t>(chat_id));
    EXPECT_EQ(shard, chat_shard(i)) << "pair " << i << ": its chat id carries another bucket";
    acked_per_shard[shard] += static_cast<int>(acks.size());
    // A send writes on its chat's shard (the message) and on its sender's (the sender's log
    // entry, whose pts the ack carries): it needs the stopped shard if either is on it.
    const bool needs_down = shard == kDownShard || sender_shard(i) == kDownShard;
    int meanwhile = 0;
    for (size_t k = 0; k < acks.size(); ++k) {
      const auto& a = acks[k];
      // Acknowledged: seqs 1..n, each once, in sending order (one in flight per sender).
      EXPECT_EQ(a.chat_id, chat_id);
      EXPECT_EQ(a.seq, static_cast<std::int64_t>(k + 1))
          << "sender " << i << ": ack " << k << " (" << a.body << ")";
      const Outage* during = nullptr;
      for (size_t w = 0; w < outages.size(); ++w) {
        if (shard == kDownShard && a.at >= outages[w].to)
          first_after_restart[w] = std::min(first_after_restart[w], a.at);
        if (a.at > outages[w].from && a.at < outages[w].to) during = &outages[w];
      }
      if (!during) continue;
      const auto down_from = during->from;
      const auto down_from_ms = during->from_ms;
      ++meanwhile;
      if (!needs_down) {
        ++acked_elsewhere_meanwhile;
        if (receiver_shard(i) == kDownShard) ++deferred_meanwhile;
        continue;
      }
      // Read while a shard it needs was down. Sound to require, whatever the delays: what it
      // wrote there was committed before the shard stopped. Those writes came after the
      // message's ts (the node stamps each attempt with its wall clock before the store call;
      // a duplicate answers with the stamp of the attempt that committed, whose writes all
      // followed it) and before the ack was read. So a ts after the shard had exited, with
      // the ack read before it was started again, means a write while it was down.
      // (Milliseconds: ts is truncated like down_from_ms, and the true stamp is at or after
      // ts, so ts > down_from_ms means a stamp after the exit.)
      ++acked_in_flight;
      latest_in_flight = std::max(latest_in_flight, a.at - down_from);
      EXPECT_LE(a.ts, down_from_ms)
          << "sender " << i << ": `" << a.body << "` was sent after the shard it needs stopped "
          << "and acknowledged " << ms(a.at - down_from) << " ms into the outage";
      // What the ts cannot tell: a request stamped before the stop, answered during the
      // outage without its writes there having committed. That is the in-flight edge only if
      // the answer comes soon: an operation in flight at the stop ends within moments (the
      // server cuts its sessions, the pool fails what it holds at once, the rest of the work
      // is on the shard that is up), so an ack this long into the outage was not in flight.
      EXPECT_LT(a.at - down_from, 1s)
          << "sender " << i << ": `" << a.body << "` acknowledged " << ms(a.at - down_from)
          << " ms after the shard it needs stopped";
    }
    // A chat on the shard that stayed up, with its sender's account there too, is served
    // throughout, also when its receiver's account is on the stopped shard (that log entry
    // waits in the chat's outbox; the syncs below find it there once the outbox is replayed).
    if (!needs_down) {
      EXPECT_GT(meanwhile, 0) << "pair " << i << ": nothing acknowledged while the other shard "
                              << "was down, though its chat and its sender live on this one";
    }

    // Both members' devices sync from the start, on either node: exactly what was acked.
    for (int member = 0; member < 2; ++member) {
      const auto& token = member == 0 ? sender_tokens[i] : receiver_tokens[i];
      const auto got = synced(static_cast<size_t>(i + member) % 2, token, chat_id, acks.size());
      ASSERT_EQ(got.size(), acks.size())
          << (member == 0 ? "sender " : "receiver ") << i << " synced another count";
      for (size_t k = 0; k < acks.size(); ++k) {
        EXPECT_EQ(got[k].first, acks[k].seq)
            << "pair " << i << ", member " << member << " at " << k;
        EXPECT_EQ(got[k].second, acks[k].body)
            << "pair " << i << ", member " << member << " at " << k;
      }
    }
  }
  // The load went on through the faults (not a test of speed: that each fault met sends).
  EXPECT_GT(total, kPlacements * 20);
  EXPECT_GT(retries, 0) << "no send met a fault";
  EXPECT_GT(acked_elsewhere_meanwhile, 0);
  Clock::duration refused_after{};
  for (size_t w = 0; w < outages.size(); ++w) {
    EXPECT_NE(first_after_restart[w], Clock::time_point::max())
        << "nothing acknowledged on the stopped shard after it started again (outage " << w + 1
        << ")";
    if (first_after_restart[w] != Clock::time_point::max())
      refused_after = std::max(refused_after, first_after_restart[w] - outages[w].to);
  }
  Clock::duration down_for{};
  for (const auto& o : outages) down_for += o.to - o.from;
  std::cout << "[fault run] " << pairs << " senders, " << total << " messages acknowledged ("
            << ms(load_for)
            << " ms of load: " << total * 1000 / std::max<long long>(ms(load_for), 1) << " msg/s; "
            << acked_per_shard[0] << " in chats on shard 1, " << acked_per_shard[1]
            << " on shard 2), " << retries << " attempts retried in " << rounds
            << " fault rounds; while shard " << kDownShard + 1 << " was down (" << outages.size()
            << " times, " << ms(down_for) << " ms in all): " << acked_elsewhere_meanwhile
            << " acks of sends that did not need it (" << deferred_meanwhile
            << " with the receiver's entry left in the outbox), " << acked_in_flight
            << " of sends that did, committed before it stopped (the last " << ms(latest_in_flight)
            << " ms after); first ack of a chat on it at most " << ms(refused_after)
            << " ms after it was started again; " << synced_late << " syncs read again\n";
  nodes.clear();
  pg[0]->drop_database("parley_faults");
}

}  // namespace
}  // namespace parley::test
