// Source addresses for outgoing connections. One source address gives about 28,000
// connections to one server port (the ephemeral port range); 127.0.0.0/8 is all loopback,
// so connections spread over 127.0.0.1, 127.0.0.2, ... and move on to the next address
// when one runs out of ports (EADDRNOTAVAIL).
#pragma once

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstdint>

namespace parley::bench {

class SourcePool {
 public:
  // `target` decides the family: IPv6 has only ::1.
  SourcePool(const boost::asio::ip::address& target, unsigned width);

  // The address for connection `index` and its slot number.
  boost::asio::ip::address pick(uint64_t index, unsigned* slot) const;
  // `slot` ran out of ports: move the window past it. False if nothing is left.
  bool exhausted(unsigned slot);

 private:
  static constexpr unsigned kMaxSlots = 254;  // 127.0.0.1 .. 127.0.0.254
  bool v6_;
  unsigned width_;
  std::atomic<unsigned> base_{0};
};

}  // namespace parley::bench
