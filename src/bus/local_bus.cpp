#include "bus/local_bus.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace parley {

void LocalBusHub::attach(NodeId node, Bus::Handler handler) {
  std::lock_guard lock(mu_);
  endpoints_[node] = std::make_shared<Endpoint>(std::move(handler));
}

void LocalBusHub::detach(NodeId node) {
  std::shared_ptr<Endpoint> endpoint;
  {
    std::lock_guard lock(mu_);
    if (auto it = endpoints_.find(node); it != endpoints_.end()) {
      endpoint = std::move(it->second);
      endpoints_.erase(it);
    }
    for (auto it = chats_.begin(); it != chats_.end();) {
      it->second.erase(node);
      it = it->second.empty() ? chats_.erase(it) : std::next(it);
    }
  }
  if (!endpoint) return;
  // Senders took the endpoint before it left the map: each either sees it detached, or is
  // counted in `running` (both sides sequentially consistent), which this waits out.
  endpoint->attached = false;
  std::unique_lock lock(endpoint->mu);
  endpoint->ended.wait(lock, [&] { return endpoint->running == 0; });
}

void LocalBusHub::set_cut_off(NodeId node, bool cut) {
  std::lock_guard lock(mu_);
  if (cut)
    cut_off_.insert(node);
  else
    cut_off_.erase(node);
}

bool LocalBusHub::cut(NodeId from, NodeId to) const {
  return !cut_off_.empty() && (cut_off_.count(from) || cut_off_.count(to));
}

void LocalBusHub::deliver(NodeId from, const std::shared_ptr<Endpoint>& endpoint, NodeId to,
                          const Envelope& env) {
  if (!endpoint) {
    ++lost_;
    return;
  }
  ++endpoint->running;
  if (!endpoint->attached) {
    ++lost_;
  } else if (!options_.encode) {
    endpoint->handler(env);
  } else if (auto decoded = decode_envelope(encode_envelope(env))) {
    endpoint->handler(decoded.value());
  } else {
    spdlog::error("bus: node {} cannot decode an envelope from {}: {}", to, from,
                  decoded.error().message);
    ++lost_;
  }
  if (--endpoint->running == 0 && !endpoint->attached) {
    std::lock_guard lock(endpoint->mu);
    endpoint->ended.notify_all();
  }
}

void LocalBusHub::send(NodeId from, NodeId to, const Envelope& env) {
  std::shared_ptr<Endpoint> endpoint;
  {
    std::lock_guard lock(mu_);
    if (auto it = endpoints_.find(to); it != endpoints_.end() && !cut(from, to))
      endpoint = it->second;
  }
  deliver(from, endpoint, to, env);
}

void LocalBusHub::send_chat(NodeId from, uint64_t chat_id, const Envelope& env) {
  std::vector<std::pair<NodeId, std::shared_ptr<Endpoint>>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = chats_.find(chat_id);
    if (it == chats_.end()) return;
    for (const auto& [node, count] : it->second) {
      auto e = endpoints_.find(node);
      targets.emplace_back(node, e != endpoints_.end() && !cut(from, node) ? e->second : nullptr);
    }
  }
  for (const auto& [node, endpoint] : targets) deliver(from, endpoint, node, env);
}

void LocalBusHub::send_all(NodeId from, const Envelope& env) {
  std::vector<std::pair<NodeId, std::shared_ptr<Endpoint>>> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [node, endpoint] : endpoints_)
      targets.emplace_back(node, cut(from, node) ? nullptr : endpoint);
  }
  for (const auto& [node, endpoint] : targets) deliver(from, endpoint, node, env);
}

void LocalBusHub::subscribe_chat(NodeId node, uint64_t chat_id, int delta) {
  std::lock_guard lock(mu_);
  auto& nodes = chats_[chat_id];
  auto& count = nodes[node];
  if (delta > 0) {
    ++count;
  } else if (count > 0 && --count == 0) {
    nodes.erase(node);
    if (nodes.empty()) chats_.erase(chat_id);
  }
}

LocalBus::~LocalBus() { stop(); }

void LocalBus::stop() {
  if (started_) hub_->detach(self_);
  started_ = false;
}

void LocalBus::start(NodeId self, Handler handler) {
  self_ = self;
  started_ = true;
  hub_->attach(self, std::move(handler));
}

void LocalBus::publish(NodeId node, Envelope env) {
  env.from = self_;
  hub_->send(self_, node, env);
}

void LocalBus::publish_chat(uint64_t chat_id, Envelope env) {
  env.from = self_;
  hub_->send_chat(self_, chat_id, env);
}

void LocalBus::publish_all(Envelope env) {
  env.from = self_;
  hub_->send_all(self_, env);
}

void LocalBus::subscribe_chat(uint64_t chat_id, Subscribed subscribed) {
  hub_->subscribe_chat(self_, chat_id, +1);
  if (subscribed) subscribed(ok_status());
}

void LocalBus::unsubscribe_chat(uint64_t chat_id) { hub_->subscribe_chat(self_, chat_id, -1); }

}  // namespace parley
