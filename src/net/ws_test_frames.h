// Client frames as they come off the wire (masked), for the tests and micro-benchmarks of
// the server's WebSocket layer. Built by hand, not with the encoder under test.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::net::ws {

inline std::string client_frame(uint8_t opcode, std::string_view payload, bool fin = true,
                                uint32_t mask = 0x37fa213d, uint8_t rsv = 0) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | rsv | opcode);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size());
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>(uint64_t{payload.size()} >> (8 * i));
  }
  const char m[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                     static_cast<char>(mask >> 8), static_cast<char>(mask)};
  f.append(m, 4);
  for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ m[i % 4]);
  return f;
}

// The payload of a close frame: the code, then the reason.
inline std::string close_payload(uint16_t code, std::string_view reason = "") {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code);
  p += reason;
  return p;
}

}  // namespace parley::net::ws
