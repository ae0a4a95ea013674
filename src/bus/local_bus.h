// Bus for a single node: publish calls this node's handler directly.
#pragma once

#include "bus/bus.h"

namespace parley {

class LocalBus final : public Bus {
 public:
  void publish(NodeId node, Envelope env) override;
  void publish_all(Envelope env) override;
  void subscribe(NodeId self, Handler handler) override;

 private:
  NodeId self_ = 0;
  Handler handler_;
};

}  // namespace parley
