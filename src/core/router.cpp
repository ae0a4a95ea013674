#include "core/router.h"

namespace parley::core {

void Router::deliver(const std::string& user, std::shared_ptr<const std::string> frame,
                     uint64_t except_conn) {
  for (NodeId node : registry_.nodes_of(user)) {
    Envelope env;
    env.kind = Envelope::Kind::deliver;
    env.user = user;
    env.except_conn = except_conn;
    env.frame = frame;
    bus_.publish(node, std::move(env));
  }
}

void Router::close_device(const std::string& user, const std::string& device_id, uint16_t code) {
  for (NodeId node : registry_.nodes_of(user)) {
    Envelope env;
    env.kind = Envelope::Kind::close_device;
    env.user = user;
    env.device_id = device_id;
    env.close_code = code;
    bus_.publish(node, std::move(env));
  }
}

void Router::broadcast(uint64_t chat_id, std::shared_ptr<const std::string> frame,
                       uint64_t except_conn) {
  Envelope env;
  env.kind = Envelope::Kind::broadcast;
  env.chat_id = chat_id;
  env.frame = std::move(frame);
  env.except_conn = except_conn;
  bus_.publish_all(std::move(env));
}

void Router::subscribe(const std::string& user, uint64_t chat_id, bool on) {
  for (NodeId node : registry_.nodes_of(user)) {
    Envelope env;
    env.kind = on ? Envelope::Kind::subscribe : Envelope::Kind::unsubscribe;
    env.user = user;
    env.chat_id = chat_id;
    bus_.publish(node, std::move(env));
  }
}

}  // namespace parley::core
