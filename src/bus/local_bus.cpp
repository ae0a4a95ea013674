#include "bus/local_bus.h"

namespace parley {

void LocalBus::publish(NodeId node, Envelope env) {
  if (node == self_ && handler_) handler_(env);
}

void LocalBus::publish_all(Envelope env) {
  if (handler_) handler_(env);
}

void LocalBus::subscribe(NodeId self, Handler handler) {
  self_ = self;
  handler_ = std::move(handler);
}

}  // namespace parley
