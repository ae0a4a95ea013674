// The message body carries what the receiver needs to measure and check a delivery:
// "<send_ns> <k> <padding>", send_ns on the sender's steady clock (same process, same
// clock as the receiver), k the sender's 1-based counter on that chat.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::bench {

struct BodyStamp {
  uint64_t send_ns = 0;
  uint64_t k = 0;
};

// Appends a JSON string (with quotes) holding the body, padded with 'x' to `size` bytes.
inline void append_body(std::string& out, uint64_t send_ns, uint64_t k, size_t size) {
  char tmp[48];
  auto* p = std::to_chars(tmp, tmp + 20, send_ns).ptr;
  *p++ = ' ';
  p = std::to_chars(p, p + 20, k).ptr;
  size_t head = static_cast<size_t>(p - tmp);
  out += '"';
  out.append(tmp, head);
  if (size > head + 1) {
    out += ' ';
    out.append(size - head - 1, 'x');
  }
  out += '"';
}

inline bool parse_body(std::string_view body, BodyStamp& stamp) {
  const char* end = body.data() + body.size();
  auto r = std::from_chars(body.data(), end, stamp.send_ns);
  if (r.ec != std::errc{} || r.ptr == end || *r.ptr != ' ') return false;
  r = std::from_chars(r.ptr + 1, end, stamp.k);
  return r.ec == std::errc{};
}

}  // namespace parley::bench
