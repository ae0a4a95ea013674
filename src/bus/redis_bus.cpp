#include "bus/redis_bus.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <set>

namespace parley {

struct RedisBus::Receiver {
  std::mutex mu;    // held while the handler runs
  Handler handler;  // empty: not started, or stopped
  std::atomic<uint64_t> undecodable{0};
  EnvelopeLimits limits;
  std::string chat_prefix;
  // The chat channels subscribed to now: what arrives on another one (an unsubscribe that
  // Redis has not processed yet) is dropped, so nothing arrives after unsubscribe_chat().
  std::mutex chats_mu;
  std::set<std::string> chats;

  void receive(const std::string& channel, const std::string& payload) {
    if (channel.starts_with(chat_prefix)) {
      std::lock_guard lock(chats_mu);
      if (!chats.contains(channel)) return;
    }
    auto env = decode_envelope(payload, limits);
    if (!env) {
      if (undecodable.fetch_add(1) == 0)
        spdlog::warn("bus: dropped an envelope on {} that does not decode: {}", channel,
                     env.error().message);
      return;
    }
    std::lock_guard lock(mu);
    if (handler) handler(env.value());
  }
};

RedisBus::RedisBus(std::shared_ptr<redis::RedisShards> shards, Options options)
    : shards_(std::move(shards)),
      options_(std::move(options)),
      receiver_(std::make_shared<Receiver>()) {
  receiver_->limits = options_.limits;
  receiver_->chat_prefix = options_.prefix + "chat:";
}

void RedisBus::stop() {
  // The receiver holds mu while the handler runs: this waits for a call in progress.
  std::lock_guard lock(receiver_->mu);
  receiver_->handler = nullptr;
}

RedisBus::~RedisBus() {
  stop();
  if (!started_) return;
  shards_->for_key(std::to_string(self_)).unsubscribe({node_channel(self_)});
  for (size_t s = 0; s < shards_->size(); ++s)
    shards_->at(s).unsubscribe({options_.prefix + "all"});
  std::lock_guard lock(chats_mu_);
  for (const auto& [chat, count] : chats_)
    shards_->for_key(std::to_string(chat)).unsubscribe({chat_channel(chat)});
  chats_.clear();
}

std::string RedisBus::node_channel(NodeId node) const {
  return options_.prefix + "node:" + std::to_string(node);
}

std::string RedisBus::chat_channel(uint64_t chat_id) const {
  return options_.prefix + "chat:" + std::to_string(chat_id);
}

uint64_t RedisBus::undecodable() const { return receiver_->undecodable.load(); }

struct RedisBus::Waiter {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;
  std::string failures;

  // The completion of one more subscribe.
  static redis::RedisClient::StatusCallback expect(const std::shared_ptr<Waiter>& w) {
    {
      std::lock_guard lock(w->mu);
      ++w->left;
    }
    return [w](Status s) {
      std::lock_guard lock(w->mu);
      if (!s) w->failures += (w->failures.empty() ? "" : "; ") + s.error().message;
      --w->left;
      w->cv.notify_all();
    };
  }
};

void RedisBus::await(Waiter& w) const {
  if (shards_->at(0).on_loop_thread()) return;  // the confirmations need this thread
  std::unique_lock lock(w.mu);
  if (!w.cv.wait_for(lock, options_.subscribe_wait, [&] { return w.left == 0; }))
    spdlog::warn("bus: subscriptions not confirmed within {} ms (they apply when Redis answers)",
                 options_.subscribe_wait.count());
  else if (!w.failures.empty())
    spdlog::warn("bus: not subscribed yet (Redis down; subscribed when it is back): {}",
                 w.failures);
}

void RedisBus::start(NodeId self, Handler handler) {
  self_ = self;
  started_ = true;
  {
    std::lock_guard lock(receiver_->mu);
    receiver_->handler = std::move(handler);
  }
  for (size_t s = 0; s < shards_->size(); ++s)
    shards_->at(s).set_message_handler([receiver = receiver_](const std::string& channel,
                                                              const std::string&,
                                                              const std::string& payload) {
      receiver->receive(channel, payload);
    });
  auto w = std::make_shared<Waiter>();
  shards_->for_key(std::to_string(self)).subscribe({node_channel(self)}, Waiter::expect(w));
  for (size_t s = 0; s < shards_->size(); ++s)
    shards_->at(s).subscribe({options_.prefix + "all"}, Waiter::expect(w));
  await(*w);
}

void RedisBus::send(redis::RedisClient& client, std::string channel, Envelope& env) {
  env.from = self_;
  // Lost when Redis is down (bus.h): the clients heal from the Store.
  client.command({"PUBLISH", std::move(channel), encode_envelope(env)},
                 [](Result<redis::Reply>) {});
}

void RedisBus::publish(NodeId node, Envelope env) {
  send(shards_->for_key(std::to_string(node)), node_channel(node), env);
}

void RedisBus::publish_chat(uint64_t chat_id, Envelope env) {
  send(shards_->for_key(std::to_string(chat_id)), chat_channel(chat_id), env);
}

void RedisBus::publish_all(Envelope env) {
  send(shards_->for_key(std::to_string(self_)), options_.prefix + "all", env);
}

void RedisBus::subscribe_chat(uint64_t chat_id, Subscribed subscribed) {
  // Under the lock: subscribes and unsubscribes reach the client in the counts' order.
  std::lock_guard lock(chats_mu_);
  if (++chats_[chat_id] == 1) {
    std::lock_guard chats_lock(receiver_->chats_mu);
    receiver_->chats.insert(chat_channel(chat_id));
  } else if (!subscribed) {
    return;
  }
  // Subscribed already: the client sends nothing and confirms once the SUBSCRIBE it sent for
  // the channel (which may still be unanswered) is confirmed.
  redis::RedisClient::StatusCallback done;
  if (subscribed)
    done = [chat_id, subscribed = std::move(subscribed)](Status s) {
      if (!s)
        spdlog::warn("bus: chat {} not subscribed yet (subscribed when Redis is back): {}", chat_id,
                     s.error().message);
      subscribed(std::move(s));
    };
  shards_->for_key(std::to_string(chat_id)).subscribe({chat_channel(chat_id)}, std::move(done));
}

void RedisBus::unsubscribe_chat(uint64_t chat_id) {
  std::lock_guard lock(chats_mu_);
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return;
  if (--it->second > 0) return;
  chats_.erase(it);
  {
    std::lock_guard chats_lock(receiver_->chats_mu);
    receiver_->chats.erase(chat_channel(chat_id));
  }
  shards_->for_key(std::to_string(chat_id)).unsubscribe({chat_channel(chat_id)});
}

}  // namespace parley
