#include "core/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace parley::core {

void Router::by_node(
    std::vector<std::string> users,
    std::function<void(std::vector<std::pair<NodeId, std::vector<size_t>>>)> done) {
  registry_.locate(
      std::move(users), [done = std::move(done)](Result<std::vector<UserLocation>> found) {
        std::vector<std::pair<NodeId, std::vector<size_t>>> nodes;  // a handful: a vector is enough
        if (!found) {
          // Nothing is lost: the devices see the gap in their pts and sync from the store.
          spdlog::warn("router: registry: {}", found.error().message);
          return done(std::move(nodes));
        }
        const auto& located = found.value();
        for (size_t i = 0; i < located.size(); ++i) {
          for (const auto& d : located[i].devices) {
            auto it = std::find_if(nodes.begin(), nodes.end(),
                                   [&](const auto& n) { return n.first == d.node; });
            if (it == nodes.end())
              it = nodes.insert(nodes.end(), std::make_pair(d.node, std::vector<size_t>{}));
            if (it->second.empty() || it->second.back() != i) it->second.push_back(i);
          }
        }
        done(std::move(nodes));
      });
}

void Router::deliver(Envelope::Payload kind, std::string payload, std::vector<Recipient> recipients,
                     uint64_t except_conn) {
  if (recipients.empty()) return;
  std::vector<std::string> users;
  users.reserve(recipients.size());
  for (const auto& r : recipients) users.push_back(r.user);
  by_node(std::move(users),
          [this, kind, payload = std::move(payload), recipients = std::move(recipients),
           except_conn](std::vector<std::pair<NodeId, std::vector<size_t>>> nodes) {
            for (auto& [node, which] : nodes) {
              Envelope env;
              env.kind = Envelope::Kind::deliver;
              env.except = SessionRef{self_, except_conn};
              env.payload_kind = kind;
              env.payload = payload;
              env.recipients.reserve(which.size());
              for (size_t i : which) env.recipients.push_back(recipients[i]);
              bus_.publish(node, std::move(env));
            }
          });
}

void Router::close_device(const std::string& user, const std::string& device_id, uint16_t code) {
  registry_.locate({user}, [this, user, device_id, code](Result<std::vector<UserLocation>> found) {
    if (!found) return spdlog::warn("router: registry: {}", found.error().message);
    std::vector<NodeId> nodes;
    for (const auto& d : found->at(0).devices)
      if (d.device_id == device_id && std::find(nodes.begin(), nodes.end(), d.node) == nodes.end())
        nodes.push_back(d.node);
    // The device may also have just connected somewhere the registry does not show yet:
    // this node is always told (its sessions are checked again when the token is used).
    if (std::find(nodes.begin(), nodes.end(), self_) == nodes.end()) nodes.push_back(self_);
    for (NodeId node : nodes) {
      Envelope env;
      env.kind = Envelope::Kind::close_device;
      env.user = user;
      env.device_id = device_id;
      env.close_code = code;
      bus_.publish(node, std::move(env));
    }
  });
}

void Router::broadcast(uint64_t chat_id, std::string frame, uint64_t except_conn, uint64_t seq) {
  Envelope env;
  env.kind = Envelope::Kind::broadcast;
  env.chat_id = chat_id;
  env.seq = seq;
  env.payload = std::move(frame);
  env.except = SessionRef{self_, except_conn};
  bus_.publish_chat(chat_id, std::move(env));
}

void Router::subscribe(const std::string& user, uint64_t chat_id, bool on) {
  by_node({user},
          [this, user, chat_id, on](std::vector<std::pair<NodeId, std::vector<size_t>>> nodes) {
            for (const auto& [node, which] : nodes) {
              Envelope env;
              env.kind = on ? Envelope::Kind::subscribe : Envelope::Kind::unsubscribe;
              env.user = user;
              env.chat_id = chat_id;
              bus_.publish(node, std::move(env));
            }
          });
}

void Router::connected_devices(std::vector<std::string> users,
                               std::function<void(std::vector<UserLocation>)> done) {
  const size_t n = users.size();
  registry_.locate(std::move(users),
                   [n, done = std::move(done)](Result<std::vector<UserLocation>> found) {
                     if (found) return done(std::move(found.value()));
                     // Unknown: count nobody as reached, so that pushes go out (a device that was
                     // in fact online drops them when it syncs).
                     spdlog::warn("router: registry: {}", found.error().message);
                     done(std::vector<UserLocation>(n));
                   });
}

}  // namespace parley::core
